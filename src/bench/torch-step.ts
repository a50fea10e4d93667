/**
 * The PyTorch side of the step benchmark: bench/torch_step.py times the same SGD step in a Python
 * child process, when some interpreter can import torch (see {@link findPython}), and prints its
 * cases as JSON. Conv nets go to it as their model specs (the script builds them with torch.nn
 * layers) with the FLOP count of the TypeScript harness, so both sides report the same GFLOP/s.
 */
import { fileURLToPath } from 'node:url';
import type { CnnSpec, ResnetSpec } from '../model/net.js';
import { execFileText, findPython } from './python.js';

const TORCH_SCRIPT = fileURLToPath(new URL('../../bench/torch_step.py', import.meta.url));

/** One case timed by torch_step.py, in the shape of the TypeScript engines' cases. */
interface TorchStepCase {
  readonly model: string;
  readonly batch: number;
  readonly engine: 'torch';
  readonly threads: number;
  readonly msPerStep: number;
  readonly gflops: number;
}

/** What torch_step.py reported: the backend and each case with the number of steps it timed. */
export interface TorchStepResult {
  readonly backend: string;
  readonly cases: readonly { readonly case: TorchStepCase; readonly timedSteps: number }[];
}

/** A conv net for torch_step.py: its model spec, image shape, classes, batch and FLOPs per step. */
interface TorchNetCase {
  readonly model: string;
  readonly spec: CnnSpec | ResnetSpec;
  readonly image: readonly [number, number, number];
  readonly classes: number;
  readonly batch: number;
  readonly flops: number;
}

/** Settings of the torch run, with the same meaning as the step benchmark's options. */
export interface TorchStepOptions {
  /** The MLPs (layer widths, input to output) and batch sizes to time. */
  readonly cases: readonly { readonly widths: readonly number[]; readonly batch: number }[];
  /** The conv nets to time. Default none. */
  readonly nets?: readonly TorchNetCase[];
  readonly threads: number;
  readonly steps: number | undefined;
  readonly minSeconds: number;
  readonly warmupSteps: number;
  readonly log: (message: string) => void;
}

/**
 * Time the step in PyTorch: `{ skipped }` when no interpreter can import torch; throws when the
 * script fails or ran with another thread count than asked for.
 */
export async function runTorch(options: TorchStepOptions): Promise<{ skipped: string } | TorchStepResult> {
  const { threads, steps } = options;
  const probe = await findPython(['torch']);
  if (probe.python === null) {
    return { skipped: `python3-torch not importable (${probe.tried.join('; ')})` };
  }
  options.log(`torch: ${probe.python} ${TORCH_SCRIPT}`);
  const args = [
    TORCH_SCRIPT,
    '--threads',
    String(threads),
    '--min-seconds',
    String(options.minSeconds),
    '--warmup',
    String(options.warmupSteps),
    '--cases',
    options.cases.map((c) => `${c.widths.join('-')}@${c.batch}`).join(','),
    '--nets',
    JSON.stringify(options.nets ?? []),
  ];
  if (steps !== undefined) args.push('--steps', String(steps));
  const stdout = await execFileText(probe.python, args, 30 * 60_000);
  const parsed = JSON.parse(stdout) as {
    torch: string;
    threads: number;
    cases: (Omit<TorchStepCase, 'engine'> & { timedSteps: number })[];
  };
  if (parsed.threads !== threads) {
    throw new Error(`torch ran with ${parsed.threads} threads, asked for ${threads}`);
  }
  return {
    backend: `torch ${parsed.torch} cpu (${probe.python})`,
    cases: parsed.cases.map(({ timedSteps, ...c }) => ({
      case: {
        model: c.model,
        batch: c.batch,
        engine: 'torch',
        threads: c.threads,
        msPerStep: c.msPerStep,
        gflops: c.gflops,
      },
      timedSteps,
    })),
  };
}
