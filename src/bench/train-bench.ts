/**
 * Training-step benchmark: how long one SGD step (forward, softmax cross-entropy, backward, update)
 * takes on each engine, for two MLPs that bracket twinscope's workloads: a compute-bound one
 * (784-256-256-10, batch 128) and an overhead-bound one (2-64-64-2, batch 32); and for the conv
 * nets of the Fashion-MNIST studies ({@link NET_BENCH_CASES}: the CNN of
 * pipelines/butterfly-fashion-cnn.json and the ResNet-8 of pipelines/instability-fashion-resnet.json,
 * on 1 × 28 × 28 images, batch 128, BatchNorm in train mode).
 *
 * FLOPs per step of an MLP with dense layers of sizes (in_l, out_l):
 *
 *     flops = 6 · batch · Σ_l in_l · out_l − 2 · batch · in_0 · out_0
 *
 * the forward matmuls cost 2·batch·in·out each, the backward ones 2·batch·in·out for the weight
 * gradient plus 2·batch·in·out for the input gradient, except for the first layer, whose input
 * gradient is never computed. Biases, activations, the softmax and the update are not counted;
 * `gflops` is this count divided by the measured time. Conv nets ({@link netStepFlops}) count their
 * convolutions and dense layers the same way: a conv's forward pass is 2 · batch · out · in · k² ·
 * H'·W' (H' × W' its output), its backward pass twice that (input and weight gradients), but no input
 * gradient for the first conv; norms, pooling, ReLUs and the residual additions are not counted.
 *
 * Time per step: `warmupSteps` untimed steps, then each step is timed on its own and the median is
 * reported. Without `steps`, as many steps are timed as fit in `minSeconds` (at least 10); with
 * `steps`, exactly that many (step-timing.ts). The tfjs engine's conv-net steps take tens of seconds
 * to minutes on its pure-JS cpu backend, so without `steps` it times {@link TFJS_NET_STEPS} of them
 * with no warm-up. The torch engine is bench/torch_step.py, run with the
 * same settings in a Python child process (torch-step.ts). With ort, the run ends with the lock-step
 * comparison of lockstep-bench.ts; formatTrainBench (train-bench-format.ts) prints a result as text.
 */
import type { Engine, EngineOptions } from '../engine/types.js';
import { type ModelGraphSpec, modelGraphSpec } from '../model/graph.js';
import type { CnnSpec, Net, ResnetSpec } from '../model/net.js';
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

/** The model families of the benchmark: the MLPs, the CNN and the ResNet. */
const BENCH_MODELS = ['mlp', 'cnn', 'resnet'] as const;
/** One of the model families of the benchmark: `mlp`, `cnn`, `resnet`. */
export type BenchModel = 'mlp' | 'cnn' | 'resnet';

/** Options of {@link runTrainBenchmark}. */
export interface TrainBenchOptions {
  /** Intra-op threads for every engine (ORT session, torch.set_num_threads, GEMM peak). Default 1. */
  readonly threads?: number;
  /** Time exactly this many steps per case; default: as many as fit in `minSeconds` (at least 10). */
  readonly steps?: number;
  /** Engines to run, in this order. Default: all of {@link BENCH_ENGINES}. */
  readonly engines?: readonly BenchEngine[];
  /** Model families to time (`mlp`, `cnn`, `resnet`). Default: all three. */
  readonly models?: readonly ('mlp' | 'cnn' | 'resnet')[];
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

/** A benchmarked conv net: its name, model spec (1 × 28 × 28 images, 10 classes) and batch size. */
export interface NetBenchCase {
  /** `cnn-…` or `resnet…`, as the MLPs are `mlp-…`. */
  readonly model: string;
  readonly spec: CnnSpec | ResnetSpec;
  readonly batch: number;
}

/** The image shape and class count of the conv-net cases (Fashion-MNIST's). */
const NET_BENCH_IMAGE = [1, 28, 28] as const;
const NET_BENCH_CLASSES = 10;

/** The benchmarked conv nets: the models of the Fashion-MNIST studies at their batch size. */
export const NET_BENCH_CASES: readonly NetBenchCase[] = [
  {
    model: 'cnn-16-32-d64-bn',
    spec: { kind: 'cnn', channels: [16, 32], dense: [64], norm: 'batch', pool: 'max' },
    batch: 128,
  },
  { model: 'resnet8-bn', spec: { kind: 'resnet', depth: 8, width: 1, norm: 'batch' }, batch: 128 },
];

/**
 * Conv-net steps the tfjs engine times when `steps` is not given, after no warm-up: on its pure-JS
 * cpu backend one step of the CNN takes tens of seconds, of the ResNet minutes.
 */
const TFJS_NET_STEPS = 1;

/** The FLOP count of one step ({@link trainStepFlops}) in words, reported with every result. */
const FLOPS_FORMULA =
  '6 * batch * sum(in * out) - 2 * batch * in0 * out0 over dense layers (forward 2x, backward 4x, no input gradient for the first layer); ' +
  "conv nets: 6 * batch * out * in * k^2 * H' * W' per conv (4x for the first: no input gradient) plus 6 * batch * in * out per dense layer";

/** Seeds of the timed step's parameters and batch (see inputs.ts). */
const PARAMS_SEED = 1;
const BATCH_SEED = 1;

/** FLOPs of one training step: 6 · batch · Σ in·out − 2 · batch · in₀·out₀ (see the module comment). */
export function trainStepFlops(widths: readonly number[], batch: number): number {
  let macs = 0;
  for (let i = 0; i + 1 < widths.length; i++) macs += widths[i]! * widths[i + 1]!;
  return 6 * batch * macs - 2 * batch * widths[0]! * widths[1]!;
}

/** The model of a conv-net case, for softmax cross-entropy over 10 classes. */
export function netBenchModel(c: NetBenchCase): ModelGraphSpec {
  const [channels, height, width] = NET_BENCH_IMAGE;
  return modelGraphSpec(
    { ...c.spec, image: NET_BENCH_IMAGE },
    channels * height * width,
    NET_BENCH_CLASSES,
    'cross-entropy',
  );
}

/**
 * FLOPs of one training step of a conv net (see the module comment): per conv 2 · batch · out · in ·
 * k² · H'·W' forward and twice that backward (once for the first conv, whose input needs no
 * gradient); per dense layer 2 · batch · in · out forward and twice that backward.
 */
export function netStepFlops(net: Net, batch: number): number {
  let flops = 0;
  for (const node of net.nodes) {
    if (node.op === 'conv') {
      const [out, h, w] = node.shape as [number, number, number];
      const forward = 2 * batch * out * node.inChannels * node.kernel * node.kernel * h * w;
      flops += forward * (node.input === 0 ? 2 : 3);
    } else if (node.op === 'dense') {
      flops += 2 * batch * node.inputs * node.outputs * (node.input === 0 ? 2 : 3);
    }
  }
  return flops;
}

/** Run the benchmark. Throws only on bad options; engine failures are reported in `notes`/`failures`. */
export async function runTrainBenchmark(options: TrainBenchOptions = {}): Promise<TrainBenchResult> {
  const threads = options.threads ?? 1;
  const steps = options.steps;
  const engines = options.engines ?? BENCH_ENGINES;
  const models = options.models ?? BENCH_MODELS;
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
  for (const m of models) {
    if (!BENCH_MODELS.includes(m))
      throw new Error(`unknown model '${m}' (expected ${BENCH_MODELS.join(', ')})`);
  }
  const mlpCases = models.includes('mlp') ? TRAIN_BENCH_CASES : [];
  const netCases = NET_BENCH_CASES.filter((c) => models.includes(c.spec.kind));

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
          cases: mlpCases,
          nets: netCases.map((c) => ({
            model: c.model,
            spec: c.spec,
            image: NET_BENCH_IMAGE,
            classes: NET_BENCH_CLASSES,
            batch: c.batch,
            flops: netStepFlops(netBenchModel(c).net as Net, c.batch),
          })),
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
      const timed = [
        ...mlpCases.map(({ widths, batch }) => ({
          model: modelName(widths),
          spec: mlpSpec(widths),
          batch,
          flops: trainStepFlops(widths, batch),
          net: false,
        })),
        ...netCases.map((c) => {
          const spec = netBenchModel(c);
          return {
            model: c.model,
            spec,
            batch: c.batch,
            flops: netStepFlops(spec.net as Net, c.batch),
            net: true,
          };
        }),
      ];
      for (const { model, spec, batch, flops, net } of timed) {
        log(`${engine}: ${model} batch ${batch}`);
        const instance = await benchEngine(engine, spec, benchEngineOptions(threads));
        try {
          backends[engine] = instance.backend;
          // tfjs's cpu backend takes tens of seconds per conv-net step: one step, no warm-up by default.
          const slow = engine === 'tfjs' && net;
          const times = await timeSteps(
            instance,
            spec,
            batch,
            slow ? (steps ?? TFJS_NET_STEPS) : steps,
            minSeconds,
            slow && steps === undefined ? 0 : warmupSteps,
          );
          const msPerStep = median(times);
          cases.push({ model, batch, engine, threads, msPerStep, gflops: flops / (msPerStep * 1e6) });
          log(
            `${engine}: ${model} batch ${batch}: ${msPerStep.toFixed(3)} ms/step (median of ${times.length})`,
          );
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

/** Per (model, batch) that was timed, in order: ort's speedups and each engine's fraction of the GEMM peak. */
function ratiosOf(cases: readonly TrainBenchCase[], peak: number | null): TrainBenchRatio[] {
  const keys = [...new Map(cases.map((c) => [`${c.model}@${c.batch}`, c] as const)).values()];
  return keys.map(({ model, batch }) => {
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
