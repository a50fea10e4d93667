/**
 * `twinscope train SPEC.json --out DIR`: train one run into a run directory, resuming it if it was
 * interrupted and skipping it if it is complete. A run that diverges (non-finite loss or parameters)
 * ends with status `diverged` and exit code 1; a re-run does not retrain it.
 */
import type { Command } from 'commander';
import type { CliIo } from './io.js';
import { asUsageError } from './io.js';

export function registerTrainCommand(program: Command, io: CliIo): void {
  program
    .command('train')
    .description(
      'train one run spec into a run directory (resumes an interrupted run; a finished run is not retrained)',
    )
    .argument('<spec>', 'run spec JSON file')
    .requiredOption('--out <dir>', 'run directory to write (run.json, checkpoints.arrow, metrics.arrow)')
    .option('--no-progress', 'no progress bar')
    .addHelpText('after', '\nExample:\n  twinscope train pipelines/moons-adam.json --out runs/moons-adam\n')
    .action(async (specPath: string, options: { out: string; progress: boolean }) => {
      const { loadRunSpec } = await import('../spec/run-spec.js');
      const spec = asUsageError(() => loadRunSpec(specPath));
      const { trainRun, formatDivergence } = await import('../train/run.js');
      const { trainingProbe } = await import('../measure/diagnostics.js');
      const { createProgressBar } = await import('./progress.js');
      const bar = options.progress ? createProgressBar(io) : undefined;
      let result: Awaited<ReturnType<typeof trainRun>>;
      try {
        result = await trainRun(spec, options.out, {
          probe: trainingProbe,
          onStart: ({ mode, fromStep, totalSteps }) => {
            if (mode === 'complete')
              io.stderr(`${options.out}: already complete (${totalSteps} steps); nothing to do\n`);
            else if (mode === 'diverged')
              io.stderr(`${options.out}: diverged earlier; not retrained (it would diverge again)\n`);
            else if (mode === 'resume')
              io.stderr(`${options.out}: resuming at step ${fromStep} of ${totalSteps}\n`);
            if (mode === 'fresh' || mode === 'resume') bar?.start(totalSteps, fromStep);
          },
          onProgress: (p) => bar?.update(p.step, p.loss),
        });
      } finally {
        bar?.stop();
      }
      if (result.diverged) {
        throw new Error(
          `${options.out}: diverged ${formatDivergence(result.diverged)}; run.json status 'diverged'`,
        );
      }
      const f = result.final;
      const acc = f?.testAcc == null ? '' : `, test accuracy ${(100 * f.testAcc).toFixed(2)}%`;
      io.stdout(
        `${options.out}: ${result.totalSteps} steps, test loss ${f?.testLoss?.toPrecision(4)}${acc}\n`,
      );
    });
}
