/**
 * Training-step benchmark: how long one SGD step (forward, softmax cross-entropy, backward, update)
 * takes on each engine, for two MLPs that bracket twinscope's workloads: a compute-bound one
 * (784-256-256-10, batch 128) and an overhead-bound one (2-64-64-2, batch 32).
 *
 * FLOPs per step of an MLP with dense layers of sizes (in_l, out_l):
 *
 *     flops = 6 · batch · Σ_l in_l · out_l − 2 · batch · in_0 · out_0
 *
 * the forward matmuls cost 2·batch·in·out each, the backward ones 2·batch·in·out for the weight
 * gradient plus 2·batch·in·out for the input gradient, except for the first layer, whose input
 * gradient is never computed. Biases, activations, the softmax and the update are not counted;
 * `gflops` is this count divided by the measured time.
 *
 * Time per step: `warmupSteps` untimed steps, then each step is timed on its own and the median is
 * reported. Without `steps`, as many steps are timed as fit in `minSeconds` (at least 10); with
 * `steps`, exactly that many (step-timing.ts). The torch engine is bench/torch_step.py, run with the
 * same settings in a Python child process (torch-step.ts). With ort, the run ends with the lock-step
 * comparison of lockstep-bench.ts; formatTrainBench (train-bench-format.ts) prints a result as text.
 */
import type { Engine, EngineOptions } from '../engine/types.js';
import type { ModelGraphSpec } from '../model/graph.js';
import { median } from '../util/stats.js';
import { checkPositiveInt, messageOf } from './checks.js';
import { mlpSpec, modelName, randomBatch, randomParams } from './inputs.js';
import { LOCKSTEP_BENCH_RUNS, type LockstepBenchResult, runLockstepBenchmark } from './lockstep-bench.js';
import { type MachineInfo, machineInfo } from './machine.js';
import { BENCH_LR, benchEngineOptions, timeLoop } from './step-timing.js';
import { runTorch } from './torch-step.js';

/** The engines the training-step benchmark can time: twinscope's two and PyTorch (bench/torch_step.py). */
export const BENCH_ENGINES = ['ort', 'tfjs', 'torch'] as const;
/** One of {@link BENCH_ENGINES}. */
export type BenchEngine = (typeof BENCH_ENGINES)[number];

/** Options of {@link runTrainBenchmark}. */
export interface TrainBenchOptions {
  /** Intra-op threads for every engine (ORT session, torch.set_num_threads, GEMM peak). Default 1. */
  readonly threads?: number;
  /** Time exactly this many steps per case; default: as many as fit in `minSeconds` (at least 10). */
  readonly steps?: number;
  /** Engines to run, in this order. Default: all of {@link BENCH_ENGINES}. */
  readonly engines?: readonly BenchEngine[];
  /** Minimum timed duration per case when `steps` is not given. Default 1 s. */
  readonly minSeconds?: number;
  /** Untimed steps before timing. Default 5. */
  readonly warmupSteps?: number;
  /** Progress messages (the CLI sends them to stderr). Default: none. */
  readonly log?: (message: string) => void;
  /**
   * Run counts R of the lock-step comparison (ORT only; see {@link runLockstepBenchmark}). Default
   * {@link LOCKSTEP_BENCH_RUNS}; empty: skip it.
   */
  readonly lockstepRuns?: readonly number[];
}

/** One measured (model, batch, engine) case. */
export interface TrainBenchCase {
  readonly model: string;
  readonly batch: number;
  readonly engine: BenchEngine;
  readonly threads: number;
  readonly msPerStep: number;
  readonly gflops: number;
}

/** Ratios between engines for one (model, batch), all from the same run. */
export interface TrainBenchRatio {
  readonly model: string;
  readonly batch: number;
  /** tfjs ms/step ÷ ort ms/step (> 1: ort is faster); null when either is missing. */
  readonly ortSpeedupVsTfjs: number | null;
  /** torch ms/step ÷ ort ms/step (> 1: ort is faster); null when either is missing. */
  readonly ortSpeedupVsTorch: number | null;
  /** gflops ÷ gemmPeakGflops per engine that ran. */
  readonly fractionOfGemmPeak: Partial<Record<BenchEngine, number>>;
}

/** What {@link runTrainBenchmark} measured, as JSON (`twinscope bench train --json`). */
export interface TrainBenchResult {
  /** Single-GEMM throughput of ONNX Runtime at `threads` (GFLOP/s); null when it could not be measured. */
  readonly gemmPeakGflops: number | null;
  readonly cases: TrainBenchCase[];
  readonly ratios: TrainBenchRatio[];
  /** What executed each engine (e.g. `onnxruntime-node 1.30.0 cpu`, `torch 1.13.1`). */
  readonly backends: Partial<Record<BenchEngine, string>>;
  /** Why an engine (or the GEMM peak) is missing: `skipped: …` or `failed: …`. */
  readonly notes: Record<string, string>;
  /** Engines that were asked for and failed (a skipped torch is not a failure). */
  readonly failures: string[];
  readonly flopsFormula: string;
  readonly timing: {
    readonly warmupSteps: number;
    readonly steps: number | null;
    readonly minSeconds: number;
    readonly statistic: 'median';
    /** Steps timed per case, keyed `engine model@batch`. */
    readonly timedSteps: Record<string, number>;
  };
  readonly machine: MachineInfo;
  /** Separate vs lock-step training of R runs (ORT); null when ort was not run or no R was asked for. */
  readonly lockstep: LockstepBenchResult | null;
}

/** The benchmarked MLPs: layer widths from input to output, and the batch size. */
export const TRAIN_BENCH_CASES: readonly { readonly widths: readonly number[]; readonly batch: number }[] = [
  { widths: [784, 256, 256, 10], batch: 128 },
  { widths: [2, 64, 64, 2], batch: 32 },
];

/** The FLOP count of one step ({@link trainStepFlops}) in words, reported with every result. */
const FLOPS_FORMULA =
  '6 * batch * sum(in * out) - 2 * batch * in0 * out0 over dense layers (forward 2x, backward 4x, no input gradient for the first layer)';

/** Seeds of the timed step's parameters and batch (see inputs.ts). */
const PARAMS_SEED = 1;
const BATCH_SEED = 1;

/** FLOPs of one training step: 6 · batch · Σ in·out − 2 · batch · in₀·out₀ (see the module comment). */
export function trainStepFlops(widths: readonly number[], batch: number): number {
  let macs = 0;
  for (let i = 0; i + 1 < widths.length; i++) macs += widths[i]! * widths[i + 1]!;
  return 6 * batch * macs - 2 * batch * widths[0]! * widths[1]!;
}

/** Run the benchmark. Throws only on bad options; engine failures are reported in `notes`/`failures`. */
export async function runTrainBenchmark(options: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const threads = options.threads ?? 1;
  const steps = options.steps;
  const engines = options.engines ?? BENCH_ENGINES;
  const lockstepRuns = options.lockstepRuns ?? LOCKSTEP_BENCH_RUNS;
  for (const r of lockstepRuns) checkPositiveInt('lockstepRuns entry', r);
  const minSeconds = options.minSeconds ?? 1;
  const warmupSteps = options.warmupSteps ?? 5;
  const log = options.log ?? (() => {});
  checkPositiveInt('threads', threads);
  if (steps !== undefined) checkPositiveInt('steps', steps);
  if (!Number.isInteger(warmupSteps) || warmupSteps < 0) {
    throw new Error(`warmupSteps must be a non-negative integer, got ${warmupSteps}`);
  }
  if (!(minSeconds >= 0)) throw new Error(`minSeconds must be >= 0, got ${minSeconds}`);
  for (const e of engines) {
    if (!BENCH_ENGINES.includes(e))
      throw new Error(`unknown engine '${e}' (expected ${BENCH_ENGINES.join(', ')})`);
  }

  const cases: TrainBenchCase[] = [];
  const backends: Partial<Record<BenchEngine, string>> = {};
  const notes: Record<string, string> = {};
  const failures: string[] = [];
  const timedSteps: Record<string, number> = {};
  const timing = { warmupSteps, steps: steps ?? null, minSeconds, statistic: 'median' as const, timedSteps };

  let gemmPeakGflops: number | null = null;
  try {
    log(`measuring GEMM peak (${threads} thread${threads === 1 ? '' : 's'})`);
    const { measureGemmPeak } = await import('../engine/ort/gemm.js');
    gemmPeakGflops = await measureGemmPeak(threads);
  } catch (err) {
    notes.gemmPeak = `failed: ${messageOf(err)}`;
  }

  for (const engine of engines) {
    try {
      if (engine === 'torch') {
        const torch = await runTorch({
          cases: TRAIN_BENCH_CASES,
          threads,
          steps,
          minSeconds,
          warmupSteps,
          log,
        });
        if ('skipped' in torch) {
          notes.torch = `skipped: ${torch.skipped}`;
          continue;
        }
        backends.torch = torch.backend;
        for (const c of torch.cases) {
          cases.push(c.case);
          timedSteps[`torch ${c.case.model}@${c.case.batch}`] = c.timedSteps;
        }
        continue;
      }
      for (const { widths, batch } of TRAIN_BENCH_CASES) {
        const model = modelName(widths);
        log(`${engine}: ${model} batch ${batch}`);
        const spec = mlpSpec(widths);
        const instance = await benchEngine(engine, spec, benchEngineOptions(threads));
        try {
          backends[engine] = instance.backend;
          const times = await timeSteps(instance, spec, batch, steps, minSeconds, warmupSteps);
          const msPerStep = median(times);
          cases.push({
            model,
            batch,
            engine,
            threads,
            msPerStep,
            gflops: trainStepFlops(widths, batch) / (msPerStep * 1e6),
          });
          timedSteps[`${engine} ${model}@${batch}`] = times.length;
        } finally {
          await instance.dispose();
        }
      }
    } catch (err) {
      notes[engine] = `failed: ${messageOf(err)}`;
      failures.push(engine);
      log(`${engine} failed: ${messageOf(err)}`);
    }
  }

  let lockstep: LockstepBenchResult | null = null;
  if (engines.includes('ort') && lockstepRuns.length > 0 && !failures.includes('ort')) {
    try {
      lockstep = await runLockstepBenchmark({
        runs: lockstepRuns,
        threads,
        steps,
        minSeconds,
        warmupSteps,
        log,
      });
    } catch (err) {
      notes.lockstep = `failed: ${messageOf(err)}`;
      failures.push('lockstep');
      log(`lockstep failed: ${messageOf(err)}`);
    }
  }

  return {
    gemmPeakGflops,
    cases,
    ratios: ratiosOf(cases, gemmPeakGflops),
    backends,
    notes,
    failures,
    flopsFormula: FLOPS_FORMULA,
    timing,
    machine: machineInfo(),
    lockstep,
  };
}

/** A fresh engine of kind `engine` (imported on first use) for `spec`. */
async function benchEngine(
  engine: 'ort' | 'tfjs',
  spec: ModelGraphSpec,
  options: EngineOptions,
): Promise<Engine> {
  if (engine === 'ort') {
    const { createOrtEngine } = await import('../engine/ort/engine.js');
    return createOrtEngine(spec, options);
  }
  const { createTfjsEngine } = await import('../engine/tfjs/engine.js');
  return createTfjsEngine(spec, options);
}

/** Per-step wall times in ms of `engine` after warm-up (see the module comment for how many). */
async function timeSteps(
  engine: Engine,
  spec: ModelGraphSpec,
  batchSize: number,
  steps: number | undefined,
  minSeconds: number,
  warmupSteps: number,
): Promise<number[]> {
  const params = randomParams(spec, PARAMS_SEED);
  const batch = randomBatch(spec, batchSize, BATCH_SEED);
  const state = { params, opt: engine.initOptimizerState() };
  return timeLoop(() => engine.trainStep(state, batch, BENCH_LR), steps, minSeconds, warmupSteps);
}

/** Per (model, batch) of {@link TRAIN_BENCH_CASES}: ort's speedups and each engine's fraction of the GEMM peak. */
function ratiosOf(cases: readonly TrainBenchCase[], peak: number | null): TrainBenchRatio[] {
  return TRAIN_BENCH_CASES.map(({ widths, batch }) => {
    const model = modelName(widths);
    const of = (engine: BenchEngine) =>
      cases.find((c) => c.model === model && c.batch === batch && c.engine === engine);
    const ort = of('ort');
    const speedup = (other: TrainBenchCase | undefined) =>
      ort && other ? other.msPerStep / ort.msPerStep : null;
    const fractionOfGemmPeak: Partial<Record<BenchEngine, number>> = {};
    if (peak !== null && peak > 0) {
      for (const engine of BENCH_ENGINES) {
        const c = of(engine);
        if (c) fractionOfGemmPeak[engine] = c.gflops / peak;
      }
    }
    return {
      model,
      batch,
      ortSpeedupVsTfjs: speedup(of('tfjs')),
      ortSpeedupVsTorch: speedup(of('torch')),
      fractionOfGemmPeak,
    };
  });
}
