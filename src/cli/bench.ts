/**
 * `twinscope bench …`: benchmarks that print JSON.
 *
 *   twinscope bench train [--json] [--threads N] [--steps N] [--engines ort,tfjs,torch] [--models mlp,cnn,resnet] [--lockstep-runs 1,8,32]
 *   twinscope bench measure [--json] [--threads N] [--quick]
 *   twinscope bench surface [--threads N] [--quick] [--hidden W,W] [--points N] [--examples N] [--sample N]
 *   twinscope bench study SPEC [--workers N] [--no-report]
 *   twinscope bench lockstep [--model mlp|cnn] [--runs 1,8,32] [--threads N] [--steps N]
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { BenchEngine, BenchModel } from '../bench/train-bench.js';
import { registerBenchLockstepCommand } from './bench-lockstep.js';
import { type CliIo, parsePositiveInt } from './io.js';

const ENGINES: readonly BenchEngine[] = ['ort', 'tfjs', 'torch'];
const MODELS: readonly BenchModel[] = ['mlp', 'cnn', 'resnet'];

interface TrainOptions {
  json?: boolean;
  threads: number;
  steps?: number;
  engines: BenchEngine[];
  models: BenchModel[];
  lockstepRuns: number[];
}

export function registerBenchCommand(program: Command, io: CliIo): void {
  const bench = program.command('bench').description('benchmarks (print JSON with --json)');

  bench
    .command('train')
    .description(
      'time one SGD training step (MLP 784-256-256-10 batch 128, MLP 2-64-64-2 batch 32, CNN 16-32 with ' +
        'BatchNorm and ResNet-8 on 1x28x28 images batch 128) per engine, with GFLOP/s against the GEMM ' +
        'peak, and separate vs lock-step training of R runs (ORT)',
    )
    .option('--json', 'print the result as JSON on stdout (progress goes to stderr)')
    .option('--threads <n>', 'intra-op threads for every engine', parsePositiveInt, 1)
    .option(
      '--steps <n>',
      'time exactly n steps per case (default: as many as fit in 1 s, at least 10)',
      parsePositiveInt,
    )
    .addOption(
      new Option('--engines <list>', `comma-separated engines out of ${ENGINES.join(',')}`)
        .argParser(parseEngines)
        .default([...ENGINES], ENGINES.join(',')),
    )
    .addOption(
      new Option(
        '--models <list>',
        `comma-separated model families out of ${MODELS.join(',')} (tfjs's cpu backend takes ~40 s per CNN ` +
          'step and ~7 min per ResNet step: --engines ort,torch or --models mlp skips them)',
      )
        .argParser(parseModels)
        .default([...MODELS], MODELS.join(',')),
    )
    .addOption(
      new Option(
        '--lockstep-runs <list>',
        'run counts R of the ORT lock-step comparison (MLP 2-64-64-2 batch 32, R separate calls per ' +
          "step vs one lock-step call); 'none' skips it",
      )
        .argParser(parseRunCounts)
        .default([1, 8, 32], '1,8,32'),
    )
    .action(async (options: TrainOptions) => {
      const { runTrainBenchmark } = await import('../bench/train-bench.js');
      const { formatTrainBench } = await import('../bench/train-bench-format.js');
      const result = await runTrainBenchmark({
        threads: options.threads,
        steps: options.steps,
        engines: options.engines,
        models: options.models,
        lockstepRuns: options.lockstepRuns,
        log: (message) => io.stderr(`${message}\n`),
      });
      io.stdout(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatTrainBench(result)}\n`);
      if (result.failures.length > 0) {
        throw new Error(
          `benchmark failed for ${result.failures.map((e) => `${e} (${result.notes[e]})`).join(', ')}`,
        );
      }
    });

  registerBenchMeasureCommand(bench, io);
  registerBenchEmbedCommand(bench, io);
  registerBenchSurfaceCommand(bench, io);
  registerBenchStudyCommand(bench, io);
  registerBenchLockstepCommand(bench, io);
}

interface StudyBenchOptions {
  workers?: number;
  report: boolean;
}

function registerBenchStudyCommand(bench: Command, io: CliIo): void {
  bench
    .command('study')
    .description(
      'run a study, sweep or pipeline spec in a temporary folder (removed after) as twinscope run does, ' +
        'and print its time breakdown (wall and CPU time, bytes written, per phase) as JSON on stdout',
    )
    .argument('<spec>', 'study or sweep spec JSON file (see pipelines/)')
    .option('--workers <n>', 'worker processes (default: as twinscope run)', parsePositiveInt)
    .option('--no-report', 'do not write (nor time) the HTML report')
    .addHelpText(
      'after',
      '\nThe JSON is status.json\'s "breakdown" (docs/formats.md) with the spec\'s path; progress goes to stderr.\n' +
        '\nExamples:\n  twinscope bench study pipelines/butterfly-moons.json\n' +
        '  twinscope bench study pipelines/sloppy-linear.json --workers 1 --no-report\n',
    )
    .action(async (spec: string, options: StudyBenchOptions) => {
      const { mkdtempSync, rmSync } = await import('node:fs');
      const { tmpdir } = await import('node:os');
      const { join } = await import('node:path');
      const { runSpec } = await import('./run.js');
      const out = mkdtempSync(join(tmpdir(), 'twinscope-bench-study-'));
      try {
        // The study's own lines (results, report path) are not printed: stdout is the JSON alone.
        const quiet: CliIo = { stdout: () => {}, stderr: (text) => io.stderr(text) };
        const breakdown = await runSpec(
          spec,
          {
            out,
            progress: false,
            report: options.report,
            table: false,
            ...(options.workers !== undefined && { workers: options.workers }),
          },
          quiet,
        );
        io.stdout(`${JSON.stringify({ spec, ...breakdown }, null, 2)}\n`);
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    });
}

interface SurfaceOptions {
  threads: number;
  quick?: boolean;
  points?: number;
  examples?: number;
  sample?: number;
  hidden?: number[];
}

function registerBenchSurfaceCommand(bench: Command, io: CliIo): void {
  bench
    .command('surface')
    .description(
      'time a 51 x 51 loss surface of MLP 784-256-256-10 on 10,000 MNIST digits (ORT): one evaluate ' +
        'call per point against batched evaluateMany (lists of points; the combination form lossSurface ' +
        'uses), with the ratios and the agreement; JSON on stdout',
    )
    .option('--threads <n>', 'intra-op threads of the ORT engine', parsePositiveInt, 1)
    .option('--quick', 'small sizes (seconds instead of minutes)')
    .option('--hidden <widths>', 'hidden widths of the MLP, comma-separated (default 256,256)', parseWidths)
    .option('--points <n>', 'grid points per axis (default 51)', parsePositiveInt)
    .option('--examples <n>', 'MNIST digits (default 10000)', parsePositiveInt)
    .option(
      '--sample <n>',
      'time the one-call-per-point and list modes on about n grid points only, scaled to the grid (default: all)',
      parsePositiveInt,
    )
    .addHelpText(
      'after',
      '\nExamples:\n  twinscope bench surface --quick\n  twinscope bench surface --threads 2 --sample 260\n',
    )
    .action(async (options: SurfaceOptions) => {
      const { runSurfaceBenchmark } = await import('../bench/surface-bench.js');
      const result = await runSurfaceBenchmark({
        threads: options.threads,
        quick: options.quick ?? false,
        ...(options.points !== undefined && { points: options.points }),
        ...(options.hidden !== undefined && { hidden: options.hidden }),
        ...(options.examples !== undefined && { examples: options.examples }),
        ...(options.sample !== undefined && { sample: options.sample }),
        log: (message: string) => io.stderr(`${message}\n`),
      });
      io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    });
}

interface MeasureOptions {
  json?: boolean;
  threads: number;
  quick?: boolean;
}

function registerBenchMeasureCommand(bench: Command, io: CliIo): void {
  bench
    .command('measure')
    .description(
      'time the measurements (barrier curve, linear CKA, weight matching) on MLP 784-512-512-10 ' +
        'against straightforward references, with the agreement between the two',
    )
    .option('--json', 'print the result as JSON on stdout (progress goes to stderr)')
    .option('--threads <n>', 'intra-op threads of the ORT engine', parsePositiveInt, 1)
    .option('--quick', 'small sizes (seconds instead of minutes)')
    .action(async (options: MeasureOptions) => {
      const { runMeasureBenchmark, formatMeasureBench } = await import('../bench/measure-bench.js');
      const result = await runMeasureBenchmark({
        threads: options.threads,
        quick: options.quick ?? false,
        log: (message) => io.stderr(`${message}\n`),
      });
      io.stdout(options.json ? `${JSON.stringify(result, null, 2)}\n` : `${formatMeasureBench(result)}\n`);
    });
}

interface EmbedOptions {
  quick?: boolean;
  m?: number;
  n?: number;
  threads?: number;
  compare?: boolean;
}

function registerBenchEmbedCommand(bench: Command, io: CliIo): void {
  bench
    .command('embed')
    .description(
      'time the InPCA pipeline: Bhattacharyya distances of m checkpoints (ONNX Runtime vs a plain-JS ' +
        'reference on a subsample) and the eigendecomposition; JSON on stdout',
    )
    .option('--quick', 'small sizes (seconds instead of minutes)')
    .option('--m <n>', 'checkpoints (default 2000)', parsePositiveInt)
    .option('--n <n>', 'examples per checkpoint (default 10000)', parsePositiveInt)
    .option('--threads <n>', 'intra-op threads (default: all cores)', parsePositiveInt)
    .option('--compare', "also time the earlier 'blocks' distance kernel in the same run (baseline)")
    .addHelpText(
      'after',
      '\nExamples:\n  twinscope bench embed --quick\n  twinscope bench embed --m 2000 --n 10000\n' +
        '  twinscope bench embed --m 512 --n 10000 --compare\n',
    )
    .action(async (options: EmbedOptions) => {
      const { runEmbedBenchmark } = await import('../bench/embed-bench.js');
      const result = await runEmbedBenchmark({
        quick: options.quick ?? false,
        ...(options.m !== undefined && { m: options.m }),
        ...(options.n !== undefined && { n: options.n }),
        ...(options.threads !== undefined && { threads: options.threads }),
        ...(options.compare && { compareKernel: 'blocks' as const }),
        log: (message: string) => io.stderr(`${message}\n`),
      });
      io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    });
}

/** Comma-separated positive hidden widths, e.g. `128,128`. */
function parseWidths(value: string): number[] {
  return value.split(',').map((s) => parsePositiveInt(s.trim()));
}

/** A comma-separated list of positive run counts, or `none` for an empty list. */
function parseRunCounts(value: string): number[] {
  if (value.trim() === 'none') return [];
  const counts = value.split(',').map((s) => parsePositiveInt(s.trim()));
  return [...new Set(counts)];
}

export function parseEngines(value: string): BenchEngine[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new InvalidArgumentError('expected at least one engine');
  for (const name of names) {
    if (!(ENGINES as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`unknown engine '${name}' (expected ${ENGINES.join(', ')})`);
    }
  }
  return [...new Set(names)] as BenchEngine[];
}

/** `--models`: comma-separated model families of `bench train`. */
function parseModels(value: string): BenchModel[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0) throw new InvalidArgumentError('expected at least one model family');
  for (const name of names) {
    if (!(MODELS as readonly string[]).includes(name)) {
      throw new InvalidArgumentError(`unknown model family '${name}' (expected ${MODELS.join(', ')})`);
    }
  }
  return [...new Set(names)] as BenchModel[];
}
