/**
 * `twinscope bench lockstep [--model mlp|cnn] [--runs 1,4,8] [--threads N] [--steps N]`: separate vs
 * lock-step training of R runs on one batch stream (ORT), as JSON on stdout.
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { type CliIo, parsePositiveInt } from './io.js';

interface LockstepOptions {
  model: 'mlp' | 'cnn';
  runs: number[];
  threads: number;
  steps?: number;
}

function parseRuns(value: string): number[] {
  const runs = value.split(',').map((v) => Number(v.trim()));
  if (runs.length === 0 || runs.some((r) => !Number.isInteger(r) || r < 1)) {
    throw new InvalidArgumentError(`expected a comma-separated list of positive integers, got '${value}'`);
  }
  return runs;
}

/** Register `bench lockstep` under `bench`. */
export function registerBenchLockstepCommand(bench: Command, io: CliIo): void {
  bench
    .command('lockstep')
    .description(
      'time R runs trained with R separate ORT steps vs one lock-step call per step (MLP 2-64-64-2 batch 32, ' +
        'or the CNN 16-32-64 with BatchNorm at batch 64 as grouped convolutions), as JSON',
    )
    .addOption(new Option('--model <kind>', 'mlp or cnn').choices(['mlp', 'cnn']).default('mlp'))
    .addOption(new Option('--runs <list>', 'run counts R').argParser(parseRuns).default([1, 8, 32], '1,8,32'))
    .option('--threads <n>', 'intra-op threads of both engines', parsePositiveInt, 1)
    .option(
      '--steps <n>',
      'time exactly n steps per mode (default: as many as fit in 1 s, at least 10)',
      parsePositiveInt,
    )
    .action(async (options: LockstepOptions) => {
      const { runLockstepBenchmark } = await import('../bench/lockstep-bench.js');
      const result = await runLockstepBenchmark({
        model: options.model,
        runs: options.runs,
        threads: options.threads,
        ...(options.steps !== undefined && { steps: options.steps }),
        log: (message) => io.stderr(`${message}\n`),
      });
      io.stdout(`${JSON.stringify(result, null, 2)}\n`);
    });
}
