/**
 * `twinscope run STUDY.json --out DIR`: train and measure a twin study (see src/study/), resuming
 * whatever an earlier, interrupted run of the same command left, with one progress display for the
 * whole study. Runs that diverge are results, not failures: they are listed (`diverged …`) and do not
 * change the exit code.
 */
import type { Command } from 'commander';
import type { StudyBreakdown } from '../results/study-files.js';
import type { Breakdown } from '../study/breakdown.js';
import type { QueueRunOptions } from '../study/run-study.js';
import { asUsageError, type CliIo, parsePositiveInt, UsageError } from './io.js';

/** The options of `run`. */
interface RunOptions {
  readonly out: string;
  readonly workers?: number;
  readonly progress: boolean;
  readonly report: boolean;
  readonly queue?: string;
  readonly detach?: boolean;
}

/** The queue of --queue (a bad URL is a usage error), or undefined for the local pool. */
async function queueOption(options: RunOptions): Promise<QueueRunOptions | undefined> {
  if (!options.queue) return undefined;
  const { parseQueueUrl } = await import('../exec/queue.js');
  return { target: parseQueueUrl(options.queue), ...(options.detach && { detach: true }) };
}

/** After --detach: what was done and how to collect. */
function printDetached(path: string, options: RunOptions, io: CliIo): void {
  io.stdout(
    `enqueued: the workers (twinscope worker --queue …) run the jobs; see twinscope status ${options.out} --queue …
` +
      `collect the results with the same command without --detach: twinscope run ${path} --out ${options.out} --queue …
`,
  );
}

export function registerRunCommand(program: Command, io: CliIo): void {
  program
    .command('run')
    .description(
      'run a twin study (train parents, twins and baselines, measure every pair, write results and plots) or a sweep (train a grid of runs, embed all trajectories); re-run to resume',
    )
    .argument('<study>', 'study or sweep spec JSON file (see pipelines/); a sweep has a "sweep" key')
    .requiredOption('--out <dir>', 'study directory to write')
    .option('--workers <n>', 'worker processes (default: cores / threadsPerWorker)', parsePositiveInt)
    .option('--no-progress', 'no progress bar')
    .option('--no-report', 'do not write the HTML report and its figures (DIR/report/) at the end')
    .option(
      '--queue <url>',
      'run the jobs through a Redis queue (redis://[:password@]host:port[/db]) on `twinscope worker`s instead of the local pool',
    )
    .option(
      '--detach',
      'with --queue: return once the jobs are enqueued; the same command later collects the results',
    )
    .addHelpText(
      'after',
      '\nAt the end it draws every figure and writes DIR/report/index.html (see twinscope report), and prints its path last.\n' +
        '\nExamples:\n  twinscope run pipelines/butterfly-moons.json --out studies/butterfly-moons\n' +
        '  twinscope run pipelines/butterfly-mnist.json --out studies/mnist --workers 2\n' +
        '  twinscope run pipelines/butterfly-moons.json --out studies/butterfly-moons --no-progress --no-report\n' +
        '  twinscope run pipelines/hyper-ribbon-mnist.json --out studies/hyper-ribbon   # a sweep + InPCA\n' +
        '  twinscope run pipelines/butterfly-moons.json --out /shared/moons --queue redis://:secret@10.0.0.5:6379\n' +
        '\nWith --queue the jobs go to `twinscope worker --queue URL` processes on any machine that sees DIR at the\n' +
        'same path (see docs/distributed.md); this command waits with the same progress display and writes the\n' +
        'results and report as a local run does.\n',
    )
    .action(async (path: string, options: RunOptions) => {
      await runSpec(path, options, io);
    });
}

/**
 * What `twinscope run` does with a study or sweep spec: run it, print its lines, write the report,
 * and store and print the time breakdown (stderr; `table: false` prints none). Resolves to the
 * breakdown (undefined when detached); throws as the command fails (failed jobs, σ = 0 control).
 * `twinscope bench study` calls it too.
 */
export async function runSpec(
  path: string,
  options: RunOptions & { readonly table?: boolean },
  io: CliIo,
): Promise<StudyBreakdown | undefined> {
  const workers = options.workers;
  if (options.detach && !options.queue) throw new UsageError('--detach needs --queue');
  const queue = await queueOption(options);
  const { isSweepJson } = await import('../study/sweep-spec.js');
  const { readSpecJson } = await import('../spec/spec-file.js');
  const { Breakdown } = await import('../study/breakdown.js');
  const breakdown = new Breakdown();
  // After the report (timed as the phase `report`): status.json gets the whole breakdown, stderr its table.
  const finish = async () => {
    const times = breakdown.toJson();
    const { updateStatusBreakdown } = await import('../results/study-files.js');
    updateStatusBreakdown(options.out, times);
    if (options.table !== false) {
      const { formatBreakdown } = await import('./breakdown-lines.js');
      for (const line of formatBreakdown(times)) io.stderr(`${line}\n`);
    }
    return times;
  };
  const report = async () => {
    const { join } = await import('node:path');
    const { reportStudy } = await import('./report.js');
    await breakdown.clock.timeWriting('report', [join(options.out, 'report')], () =>
      reportStudy(options.out, io),
    );
  };
  if (isSweepJson(asUsageError(() => readSpecJson(path)))) {
    const sweep = await runSweepCommand(path, options.out, workers, options, queue, io, breakdown, report);
    if (sweep.detached) return undefined;
    const times = await finish();
    if (sweep.failure) throw sweep.failure;
    return times;
  }
  const { loadStudySpec } = await import('../study/spec.js');
  const study = asUsageError(() => loadStudySpec(path));
  const { runStudy, ControlError } = await import('../study/run-study.js');
  const { createStudyProgress } = await import('./progress.js');
  const progress = createStudyProgress(io, options.progress);
  let result: Awaited<ReturnType<typeof runStudy>>;
  try {
    result = await runStudy(
      study,
      options.out,
      {
        onRound: (r) => progress.round(r.label, r.runSteps, r.jobs, r.workers),
        onSteps: (n) => progress.steps(n),
        onJob: (id, outcome, message) => progress.job(id, outcome, message),
        ...(options.progress && { onLog: (m: string) => io.stderr(`  ${m}\n`) }),
      },
      { ...(workers !== undefined && { workers }), ...(queue && { queue }), breakdown },
    );
  } finally {
    progress.stop();
  }
  if (result.detached) {
    printDetached(path, options, io);
    return undefined;
  }
  const { join } = await import('node:path');
  const { cumulativeExplained } = await import('../results/embedding.js');
  io.stdout(`${study.name}: ${result.plan.twins.length} pairs, ${result.rows.length} result rows\n`);
  io.stdout(`results  ${join(options.out, 'results.arrow')}\n`);
  printDiverged(result.diverged, io);
  for (const e of result.embeddings) {
    if (!e.embedding) continue;
    const k = Math.min(2, e.embedding.components);
    const share = cumulativeExplained(e.embedding)[k - 1] ?? 0;
    const what = e.embedding.method === 'pca' ? 'variance' : 'stress';
    io.stdout(
      `embedding s${e.seed}: ${e.runs.length} runs, ${e.embedding.points.length} checkpoints, ` +
        `${e.embedding.method} top ${k}: ${(100 * share).toFixed(1)}% ${what} (${join(e.dir, 'embedding.json')})\n`,
    );
  }
  // The report also covers a failed study (it marks what failed), so it is written before the
  // failure is raised; a report error is raised after the study's own failure, if any.
  let reportError: unknown;
  if (options.report) {
    try {
      await report();
    } catch (e) {
      reportError = e;
    }
  }
  const times = await finish();
  if (result.failed.length > 0 || result.blocked.length > 0) {
    const lines = result.failed.map((f) => `  ${f.id}: ${f.message}`);
    if (result.blocked.length > 0)
      lines.push(`  ${result.blocked.length} job(s) not run (a dependency failed)`);
    throw new Error(`${result.failed.length} job(s) failed:\n${lines.join('\n')}\nre-run to retry`);
  }
  if (result.controlFailures.length > 0) throw new ControlError(result.controlFailures);
  if (reportError !== undefined) throw reportError;
  return times;
}

/**
 * A sweep (`"sweep"` key): train every grid point, measure each run (a `measure` block), embed all
 * trajectories; print the explained stress and the rank correlations of sharpness with sensitivity;
 * write the report (`report`, timed into `breakdown`). A failed job is returned as `failure`, for
 * the caller to raise once the breakdown is stored.
 */
async function runSweepCommand(
  path: string,
  out: string,
  workers: number | undefined,
  options: RunOptions,
  queue: QueueRunOptions | undefined,
  io: CliIo,
  breakdown: Breakdown,
  report: () => Promise<void>,
): Promise<{ detached: boolean; failure?: Error }> {
  const showProgress = options.progress;
  const { loadSweepSpec } = await import('../study/sweep-spec.js');
  const { runSweep } = await import('../study/run-sweep.js');
  const { formatEmbedding, formatGroups } = await import('./embedding-lines.js');
  const sweep = asUsageError(() => loadSweepSpec(path));
  const { createStudyProgress } = await import('./progress.js');
  const progress = createStudyProgress(io, showProgress);
  let result: Awaited<ReturnType<typeof runSweep>>;
  try {
    result = await runSweep(
      sweep,
      out,
      {
        onRound: (r) => progress.round(r.label, r.runSteps, r.jobs, r.workers),
        onSteps: (n) => progress.steps(n),
        onJob: (id, outcome, message) => progress.job(id, outcome, message),
        ...(showProgress && { onLog: (m: string) => io.stderr(`  ${m}\n`) }),
      },
      { ...(workers !== undefined && { workers }), ...(queue && { queue }), breakdown },
    );
  } finally {
    progress.stop();
  }
  if (result.detached) {
    printDetached(path, options, io);
    return { detached: true };
  }
  const { join } = await import('node:path');
  const e = result.embedding;
  const embedded = e ? e.points.length : result.groups.reduce((n, g) => n + g.embedding.points.length, 0);
  const groups = result.groups.length > 0 ? ` in ${result.groups.length} groups` : '';
  io.stdout(
    `${sweep.name}: ${result.runDirs.length} runs (${result.trained} trained now), ` +
      `${embedded} checkpoints embedded with ${sweep.embed.method}${groups}\n`,
  );
  printDiverged(result.diverged, io);
  if (e) {
    for (const line of formatEmbedding(e)) io.stdout(`${line}\n`);
    io.stdout(`embedding ${join(out, 'embedding.json')}\n`);
  }
  for (const line of formatGroups(result.groups)) io.stdout(`${line}\n`);
  if (result.groups.length > 0) io.stdout(`groups    ${join(out, 'groups.json')}\n`);
  if (sweep.measure) {
    const runs = new Set(result.rows.map((r) => r.runA)).size;
    io.stdout(
      `measured ${runs} run(s) (${result.measured} now): ${result.rows.length} result rows\n` +
        `results   ${join(out, 'results.arrow')}\n`,
    );
    // The claim of seed 000, tested: does sharpness predict sensitivity? Printed whatever it is.
    const { geometryCorrelations } = await import('../report/geometry-plots.js');
    for (const c of geometryCorrelations(result.rows, sweep.measure.sensitivity?.correlateAt)) {
      const rho = Number.isFinite(c.rho) ? c.rho.toFixed(3) : 'undefined';
      const p = Number.isFinite(c.pValue) ? `, p = ${c.pValue === 0 ? '0' : c.pValue.toPrecision(2)}` : '';
      io.stdout(`spearman  ${c.sharpness} vs ${c.sensitivity}: ρ = ${rho} (${c.n} runs${p})\n`);
    }
  }
  // As for studies, the report (which marks failed runs) is written before a failure is raised.
  if (options.report) await report();
  if (result.failed.length > 0) {
    const lines = result.failed.map((f) => `  ${f.id}: ${f.message}`);
    // Raised by the caller once the breakdown is stored.
    const failure = new Error(`${result.failed.length} job(s) failed:\n${lines.join('\n')}\nre-run to retry`);
    return { detached: false, failure };
  }
  return { detached: false };
}

/** One line naming the runs that diverged (status.json's `diverged`), if any. */
function printDiverged(diverged: readonly { run: string; step: number }[], io: CliIo): void {
  if (diverged.length === 0) return;
  const runs = diverged.map((d) => `${d.run} at step ${d.step}`).join(', ');
  io.stdout(`diverged ${diverged.length} run(s) (results, not failures; see status.json): ${runs}\n`);
}
