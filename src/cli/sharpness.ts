/**
 * `twinscope sharpness DIR[@STEP]`: the sharpness of a run's training loss at one checkpoint
 * (docs/methods.md §12.2): top-k Hessian eigenvalues (Lanczos or power iteration on exact
 * Hessian-vector products), Hutchinson's trace with its standard error, the optimizer's stability
 * threshold and, for Adam/AdamW, the preconditioned sharpness from the checkpoint's optimizer slots.
 */
import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import type { CliIo } from './io.js';
import { parsePositiveInt, UsageError } from './io.js';

interface SharpnessCliOptions {
  examples?: number;
  top: number;
  probes: number;
  method: 'lanczos' | 'power';
  steps?: number;
  json?: boolean;
}

/** `DIR` or `DIR@STEP`: an existing folder named with an `@` is taken as it is. */
function parseTarget(target: string): { dir: string; step?: number } {
  const at = target.lastIndexOf('@');
  if (existsSync(target) || at < 0) return { dir: target };
  const step = target.slice(at + 1);
  if (!/^\d+$/.test(step)) {
    throw new UsageError(`${target}: expected DIR or DIR@STEP with STEP a checkpoint step (got '${step}')`);
  }
  return { dir: target.slice(0, at), step: Number(step) };
}

export function registerSharpnessCommand(program: Command, io: CliIo): void {
  program
    .command('sharpness')
    .description(
      "sharpness of a run's training loss at one checkpoint: top Hessian eigenvalues, Hutchinson trace, stability threshold (Adam: preconditioned sharpness)",
    )
    .argument(
      '<run>',
      'run directory, optionally with @STEP (a checkpoint step; default: the last checkpoint)',
    )
    .option(
      '--examples <n>',
      'use the first N examples of the train split (default: all of it)',
      parsePositiveInt,
    )
    .option('--top <k>', 'number of top eigenvalues, largest first', parsePositiveInt, 1)
    .option('--probes <p>', "Rademacher probes of Hutchinson's trace estimate", parsePositiveInt, 100)
    .addOption(
      new Option('--method <method>', 'eigenvalue method (power finds one eigenvalue)')
        .choices(['lanczos', 'power'])
        .default('lanczos'),
    )
    .option(
      '--steps <s>',
      'most Hessian-vector products per eigenproblem (default: 50 for lanczos, 100 for power)',
      parsePositiveInt,
    )
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nJSON: { "run", "step", "epoch", "examples", "method", "eigenvalues" (largest first), "residuals",\n' +
        '"converged", "trace": { "mean", "stderr", "probes" }, "lr", "threshold", "thresholdOf"\n' +
        '("sharpness" for SGD, "preconditioned" for Adam/AdamW), "preconditioned" (λ_max(P⁻¹H); null for SGD) }.\n' +
        'Exit code 2 for a folder that is not a run directory, a step without a checkpoint, or a bad option.\n' +
        '\nExamples:\n  twinscope sharpness runs/moons --json\n' +
        '  twinscope sharpness runs/moons@500 --examples 1000 --top 3 --probes 50\n',
    )
    .action(async (target: string, options: SharpnessCliOptions) => {
      const { dir, step } = parseTarget(target);
      if (options.method === 'power' && options.top > 1) {
        throw new UsageError(
          `--top: power iteration finds one eigenvalue (got ${options.top}); use --method lanczos`,
        );
      }
      if (options.method === 'lanczos' && options.steps !== undefined && options.steps < options.top) {
        throw new UsageError(
          `--steps: Lanczos needs at least --top ${options.top} steps (got ${options.steps})`,
        );
      }
      const result = await sharpnessAtCheckpoint(dir, step, options);
      if (options.json) {
        io.stdout(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const fmt = (v: number | null) => (v === null ? '—' : String(Number(v.toPrecision(6))));
      const lines = [
        `${dir} at step ${result.step} (epoch ${fmt(result.epoch)}), ${result.examples} training examples, ${result.method}`,
        `eigenvalues     ${result.eigenvalues.map(fmt).join(', ')}${result.converged ? '' : ' (not converged)'}`,
        `trace           ${fmt(result.trace.mean)} ± ${fmt(result.trace.stderr)} (${result.trace.probes} probes)`,
      ];
      if (result.preconditioned !== null) lines.push(`preconditioned  ${fmt(result.preconditioned)}`);
      const bounds = result.thresholdOf === 'sharpness' ? 'top eigenvalue' : 'preconditioned sharpness';
      lines.push(`threshold       ${fmt(result.threshold)} (bounds the ${bounds}; lr ${result.lr})`);
      io.stdout(`${lines.join('\n')}\n`);
    });
}

/** The JSON `twinscope sharpness` prints. */
interface CheckpointSharpness {
  readonly run: string;
  readonly step: number;
  readonly epoch: number;
  readonly examples: number;
  readonly method: 'lanczos' | 'power';
  readonly eigenvalues: number[];
  readonly residuals: number[];
  readonly converged: boolean;
  readonly trace: { readonly mean: number; readonly stderr: number; readonly probes: number };
  readonly lr: number;
  readonly threshold: number | null;
  readonly thresholdOf: 'sharpness' | 'preconditioned';
  readonly preconditioned: number | null;
}

async function sharpnessAtCheckpoint(
  dir: string,
  step: number | undefined,
  options: SharpnessCliOptions,
): Promise<CheckpointSharpness> {
  const { readRunJson, runContextParts, createEngine } = await import('../train/run.js');
  const { findRunCheckpoint, missingCheckpoint } = await import('../train/run-files.js');
  const { planRun } = await import('../spec/run-plan.js');
  const { measureSharpness, trainSubset } = await import('../measure/diagnostics.js');
  const run = readRunJson(dir);
  const { cp, steps } = findRunCheckpoint(dir, run.layout, step);
  if (!cp) throw new UsageError(missingCheckpoint(dir, step, steps));
  const { spec } = run;
  const { data, model } = runContextParts(spec);
  const plan = planRun(spec, data.train.n);
  const lrStep = Math.min(cp.step, plan.totalSteps - 1);
  const lr = plan.lr(lrStep, Math.floor(lrStep / plan.stepsPerEpoch));
  const engine = await createEngine(spec, model);
  try {
    const set = trainSubset(data.train, options.examples);
    const m = await measureSharpness(engine, set, cp, spec.optimizer, lr, {
      topK: options.top,
      method: options.method,
      probes: options.probes,
      ...(options.steps !== undefined && { steps: options.steps }),
    });
    return {
      run: dir,
      step: cp.step,
      epoch: cp.epoch,
      examples: m.examples,
      method: m.method,
      eigenvalues: m.eigenvalues,
      residuals: m.residuals,
      converged: m.converged,
      trace: m.trace ?? { mean: Number.NaN, stderr: Number.NaN, probes: 0 },
      lr,
      threshold: m.threshold,
      thresholdOf: m.thresholdOf,
      preconditioned: m.preconditioned,
    };
  } finally {
    await engine.dispose();
  }
}
