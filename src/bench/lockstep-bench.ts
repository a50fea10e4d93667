/**
 * Lock-step benchmark: separate vs lock-step training of R runs of MLP 2-64-64-2 at batch 32 (SGD,
 * ORT), or (`model: 'cnn'`) of the CNN 16-32 with BatchNorm and a 64-wide dense head on 1×28×28
 * images at batch 64 (R runs as grouped convolutions). For each R, "separate" makes R `engine.trainStep` calls per step (one per run, as R
 * independent runs would), "lock-step" one `LockstepEngine.trainStep` call that updates all R runs.
 * Each mode gets `warmupSteps` untimed steps and then per-step timings as in the step benchmark
 * (train-bench.ts; median); run-steps per second is R divided by the median time of one step of all
 * R runs.
 */
import { modelGraphSpec } from '../model/graph.js';
import { median } from '../util/stats.js';
import { checkPositiveInt } from './checks.js';
import { mlpSpec, modelName, randomBatch, randomParams } from './inputs.js';
import { BENCH_LR, benchEngineOptions, timeLoop } from './step-timing.js';

/** Default run counts R of the lock-step comparison. */
export const LOCKSTEP_BENCH_RUNS: readonly number[] = [1, 8, 32];

/** The model and batch of the lock-step comparison: the overhead-bound tiny MLP. */
export const LOCKSTEP_BENCH_CASE = { widths: [2, 64, 64, 2], batch: 32 } as const;

/** The conv-net case of the lock-step comparison (`model: 'cnn'`). */
const LOCKSTEP_CNN_CASE = {
  name: 'cnn-16-32-64-bn',
  spec: { kind: 'cnn', channels: [16, 32], dense: [64], norm: 'batch' },
  inputDim: 784,
  outputDim: 10,
  batch: 64,
} as const;

/** Seed of the shared batch; run r starts from the parameters of seed `PARAMS_SEED + r`. */
const BATCH_SEED = 0;
const PARAMS_SEED = 1;

/** Options of {@link runLockstepBenchmark}; the timing options mean what they mean in train-bench.ts. */
export interface LockstepBenchOptions {
  /** Run counts R to compare at. Default {@link LOCKSTEP_BENCH_RUNS}. */
  readonly runs?: readonly number[];
  /** Intra-op threads of both engines. Default 1. */
  readonly threads?: number;
  /** Time exactly this many steps per mode; default: as many as fit in `minSeconds` (at least 10). */
  readonly steps?: number;
  /** Minimum timed duration per mode when `steps` is not given. Default 1 s. */
  readonly minSeconds?: number;
  /** Untimed steps before timing. Default 5. */
  readonly warmupSteps?: number;
  /** Progress messages. Default: none. */
  readonly log?: (message: string) => void;
  /** Which model: the tiny MLP (default) or the CNN ({@link LOCKSTEP_CNN_CASE}). */
  readonly model?: 'mlp' | 'cnn';
}

/** One run count R of the lock-step comparison, both modes measured in the same process run. */
export interface LockstepBenchCase {
  readonly runs: number;
  /** Median wall time of one step of all R runs with R separate `engine.trainStep` calls. */
  readonly separateMsPerStep: number;
  /** Median wall time of one step of all R runs in one lock-step call. */
  readonly lockstepMsPerStep: number;
  /** R / separate seconds per step. */
  readonly separateRunStepsPerSecond: number;
  /** R / lock-step seconds per step. */
  readonly lockstepRunStepsPerSecond: number;
  /** lockstepRunStepsPerSecond ÷ separateRunStepsPerSecond (> 1: lock-step is faster). */
  readonly speedup: number;
  /** Steps of all R runs timed per mode. */
  readonly timedSteps: { readonly separate: number; readonly lockstep: number };
}

/** The lock-step comparison: R runs of one model on one shared batch stream. */
export interface LockstepBenchResult {
  readonly model: string;
  readonly batch: number;
  readonly engine: 'ort';
  readonly threads: number;
  readonly optimizer: string;
  readonly cases: LockstepBenchCase[];
}

/** Run the lock-step comparison (see the module comment). */
export async function runLockstepBenchmark(options: LockstepBenchOptions = {}): Promise<LockstepBenchResult> {
  const runsList = options.runs ?? LOCKSTEP_BENCH_RUNS;
  const threads = options.threads ?? 1;
  const minSeconds = options.minSeconds ?? 1;
  const warmupSteps = options.warmupSteps ?? 5;
  const log = options.log ?? (() => {});
  for (const r of runsList) checkPositiveInt('runs entry', r);
  const cnn = options.model === 'cnn';
  const { widths } = LOCKSTEP_BENCH_CASE;
  const batchSize = cnn ? LOCKSTEP_CNN_CASE.batch : LOCKSTEP_BENCH_CASE.batch;
  const c = LOCKSTEP_CNN_CASE;
  const spec = cnn
    ? modelGraphSpec(
        { ...c.spec, channels: [...c.spec.channels], dense: [...c.spec.dense] },
        c.inputDim,
        c.outputDim,
        'cross-entropy',
      )
    : mlpSpec(widths);
  const name = cnn ? c.name : modelName(widths);
  const engineOptions = benchEngineOptions(threads);
  const { createOrtEngine } = await import('../engine/ort/engine.js');
  const { createLockstepEngine } = await import('../engine/ort/lockstep.js');
  const batch = randomBatch(spec, batchSize, BATCH_SEED);
  const cases: LockstepBenchCase[] = [];
  for (const runs of runsList) {
    log(`ort lock-step: ${name} batch ${batchSize}, R = ${runs}`);
    const single = await createOrtEngine(spec, engineOptions);
    const lock = await createLockstepEngine(spec, { ...engineOptions, runs });
    try {
      const fresh = () =>
        Array.from({ length: runs }, (_, r) => ({
          params: randomParams(spec, PARAMS_SEED + r),
          opt: single.initOptimizerState(),
        }));
      const separateStates = fresh();
      const lockStates = fresh();
      const separate = await timeLoop(
        async () => {
          for (const state of separateStates) await single.trainStep(state, batch, BENCH_LR);
        },
        options.steps,
        minSeconds,
        warmupSteps,
      );
      const lockstep = await timeLoop(
        async () => {
          await lock.trainStep(lockStates, batch, BENCH_LR);
        },
        options.steps,
        minSeconds,
        warmupSteps,
      );
      const separateMsPerStep = median(separate);
      const lockstepMsPerStep = median(lockstep);
      const separateRunStepsPerSecond = (1000 * runs) / separateMsPerStep;
      const lockstepRunStepsPerSecond = (1000 * runs) / lockstepMsPerStep;
      cases.push({
        runs,
        separateMsPerStep,
        lockstepMsPerStep,
        separateRunStepsPerSecond,
        lockstepRunStepsPerSecond,
        speedup: lockstepRunStepsPerSecond / separateRunStepsPerSecond,
        timedSteps: { separate: separate.length, lockstep: lockstep.length },
      });
    } finally {
      await Promise.all([single.dispose(), lock.dispose()]);
    }
  }
  return {
    model: name,
    batch: batchSize,
    engine: 'ort',
    threads,
    optimizer: 'sgd',
    cases,
  };
}
