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
 * `steps`, exactly that many. The torch engine is bench/torch_step.py, run with the same settings in
 * a Python child process when some interpreter can import torch (see {@link findPython}).
 */
import { fileURLToPath } from 'node:url';
import type { Batch } from '../data/types.js';
import type { Engine, EngineOptions } from '../engine/types.js';
import type { ModelGraphSpec } from '../model/graph.js';
import { modelGraphSpec } from '../model/graph.js';
import { type MachineInfo, machineInfo } from './machine.js';
import { execFileText, findPython } from './python.js';

export const BENCH_ENGINES = ['ort', 'tfjs', 'torch'] as const;
export type BenchEngine = (typeof BENCH_ENGINES)[number];

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

/** The benchmarked MLPs: layer widths from input to output, and the batch size. */
export const TRAIN_BENCH_CASES: readonly { readonly widths: readonly number[]; readonly batch: number }[] = [
  { widths: [784, 256, 256, 10], batch: 128 },
  { widths: [2, 64, 64, 2], batch: 32 },
];

export const FLOPS_FORMULA =
  '6 * batch * sum(in * out) - 2 * batch * in0 * out0 over dense layers (forward 2x, backward 4x, no input gradient for the first layer)';

/** Default run counts R of the lock-step comparison. */
export const LOCKSTEP_BENCH_RUNS: readonly number[] = [1, 8, 32];

/** The model and batch of the lock-step comparison: the overhead-bound tiny MLP. */
export const LOCKSTEP_BENCH_CASE = { widths: [2, 64, 64, 2], batch: 32 } as const;

const LR = 0.01;
const MIN_TIMED_STEPS = 10;
const MAX_TIMED_STEPS = 100_000;
const TORCH_SCRIPT = fileURLToPath(new URL('../../bench/torch_step.py', import.meta.url));

/** FLOPs of one training step: 6 · batch · Σ in·out − 2 · batch · in₀·out₀ (see the module comment). */
export function trainStepFlops(widths: readonly number[], batch: number): number {
  let macs = 0;
  for (let i = 0; i + 1 < widths.length; i++) macs += widths[i]! * widths[i + 1]!;
  return 6 * batch * macs - 2 * batch * widths[0]! * widths[1]!;
}

export function modelName(widths: readonly number[]): string {
  return `mlp-${widths.join('-')}`;
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
        const torch = await runTorch(threads, steps, minSeconds, warmupSteps, log);
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
        const spec = modelGraphSpec(
          { kind: 'mlp', hidden: widths.slice(1, -1) },
          widths[0]!,
          widths.at(-1)!,
          'cross-entropy',
        );
        const engineOptions: EngineOptions = { optimizer: { kind: 'sgd', lr: LR }, threads };
        const instance = await createEngine(engine, spec, engineOptions);
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

/** Options of {@link runLockstepBenchmark}; timing options as in {@link TrainBenchOptions}. */
export interface LockstepBenchOptions {
  /** Run counts R to compare at. Default {@link LOCKSTEP_BENCH_RUNS}. */
  readonly runs?: readonly number[];
  readonly threads?: number;
  readonly steps?: number;
  readonly minSeconds?: number;
  readonly warmupSteps?: number;
  readonly log?: (message: string) => void;
}

/**
 * Separate vs lock-step training of R runs of MLP 2-64-64-2 at batch 32 (SGD, ORT): for each R,
 * "separate" makes R `engine.trainStep` calls per step (one per run, as R independent runs would),
 * "lock-step" one `LockstepEngine.trainStep` call that updates all R runs. Each mode gets
 * `warmupSteps` untimed steps and then per-step timings as in {@link runTrainBenchmark} (median);
 * run-steps per second is R divided by the median time of one step of all R runs.
 */
export async function runLockstepBenchmark(options: LockstepBenchOptions = {}): Promise<LockstepBenchResult> {
  const runsList = options.runs ?? LOCKSTEP_BENCH_RUNS;
  const threads = options.threads ?? 1;
  const minSeconds = options.minSeconds ?? 1;
  const warmupSteps = options.warmupSteps ?? 5;
  const log = options.log ?? (() => {});
  for (const r of runsList) checkPositiveInt('runs entry', r);
  const { widths, batch: batchSize } = LOCKSTEP_BENCH_CASE;
  const spec = modelGraphSpec(
    { kind: 'mlp', hidden: widths.slice(1, -1) },
    widths[0],
    widths[widths.length - 1] as number,
    'cross-entropy',
  );
  const engineOptions: EngineOptions = { optimizer: { kind: 'sgd', lr: LR }, threads };
  const { createOrtEngine } = await import('../engine/ort/engine.js');
  const { createLockstepEngine } = await import('../engine/ort/lockstep.js');
  const batch = randomBatch(spec, batchSize, mulberry32(0x5eed));
  const cases: LockstepBenchCase[] = [];
  for (const runs of runsList) {
    log(`ort lock-step: ${modelName(widths)} batch ${batchSize}, R = ${runs}`);
    const single = await createOrtEngine(spec, engineOptions);
    const lock = await createLockstepEngine(spec, { ...engineOptions, runs });
    try {
      const fresh = () =>
        Array.from({ length: runs }, (_, r) => ({
          params: randomParams(spec, mulberry32(0x7a15c0de + r)),
          opt: single.initOptimizerState(),
        }));
      const separateStates = fresh();
      const lockStates = fresh();
      const separate = await timeLoop(
        async () => {
          for (const state of separateStates) await single.trainStep(state, batch, LR);
        },
        options.steps,
        minSeconds,
        warmupSteps,
      );
      const lockstep = await timeLoop(
        async () => {
          await lock.trainStep(lockStates, batch, LR);
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
    model: modelName(widths),
    batch: batchSize,
    engine: 'ort',
    threads,
    optimizer: 'sgd',
    cases,
  };
}

async function createEngine(
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

/** Per-step wall times in ms after warm-up (see the module comment for how many). */
async function timeSteps(
  engine: Engine,
  spec: ModelGraphSpec,
  batchSize: number,
  steps: number | undefined,
  minSeconds: number,
  warmupSteps: number,
): Promise<number[]> {
  const rand = mulberry32(0x7a15c0de);
  const params = randomParams(spec, rand);
  const batch = randomBatch(spec, batchSize, rand);
  const state = { params, opt: engine.initOptimizerState() };
  return timeLoop(() => engine.trainStep(state, batch, LR), steps, minSeconds, warmupSteps);
}

/** Initial parameters: each tensor's entries normal with its init standard deviation. */
function randomParams(spec: ModelGraphSpec, rand: () => number): Float32Array {
  const params = new Float32Array(spec.layout.size);
  for (const t of spec.layout.tensors) {
    const std = Math.max(t.initStd, 0);
    for (let i = t.offset; i < t.offset + t.size; i++) params[i] = std * gaussian(rand);
  }
  return params;
}

/** Standard-normal inputs and one-hot targets with uniform labels. */
function randomBatch(spec: ModelGraphSpec, batchSize: number, rand: () => number): Batch {
  const x = new Float32Array(batchSize * spec.inputDim);
  for (let i = 0; i < x.length; i++) x[i] = gaussian(rand);
  const y = new Float32Array(batchSize * spec.outputDim);
  for (let r = 0; r < batchSize; r++) y[r * spec.outputDim + Math.floor(rand() * spec.outputDim)] = 1;
  return { x, y, size: batchSize };
}

/**
 * `warmupSteps` untimed calls of `step`, then individually timed calls (ms): exactly `steps`, or
 * as many as fit in `minSeconds` (at least {@link MIN_TIMED_STEPS}, at most {@link MAX_TIMED_STEPS}).
 */
async function timeLoop(
  step: () => Promise<unknown>,
  steps: number | undefined,
  minSeconds: number,
  warmupSteps: number,
): Promise<number[]> {
  for (let i = 0; i < warmupSteps; i++) await step();
  const times: number[] = [];
  const started = process.hrtime.bigint();
  for (;;) {
    const t0 = process.hrtime.bigint();
    await step();
    const t1 = process.hrtime.bigint();
    times.push(Number(t1 - t0) / 1e6);
    if (steps !== undefined) {
      if (times.length >= steps) break;
    } else if (
      (times.length >= MIN_TIMED_STEPS && Number(t1 - started) / 1e9 >= minSeconds) ||
      times.length >= MAX_TIMED_STEPS
    ) {
      break;
    }
  }
  return times;
}

interface TorchCase {
  readonly case: TrainBenchCase;
  readonly timedSteps: number;
}

async function runTorch(
  threads: number,
  steps: number | undefined,
  minSeconds: number,
  warmupSteps: number,
  log: (message: string) => void,
): Promise<{ skipped: string } | { backend: string; cases: TorchCase[] }> {
  const probe = await findPython(['torch']);
  if (probe.python === null) {
    return { skipped: `python3-torch not importable (${probe.tried.join('; ')})` };
  }
  log(`torch: ${probe.python} ${TORCH_SCRIPT}`);
  const args = [
    TORCH_SCRIPT,
    '--threads',
    String(threads),
    '--min-seconds',
    String(minSeconds),
    '--warmup',
    String(warmupSteps),
    '--cases',
    TRAIN_BENCH_CASES.map((c) => `${c.widths.join('-')}@${c.batch}`).join(','),
  ];
  if (steps !== undefined) args.push('--steps', String(steps));
  const stdout = await execFileText(probe.python, args, 30 * 60_000);
  const parsed = JSON.parse(stdout) as {
    torch: string;
    threads: number;
    cases: (TrainBenchCase & { timedSteps: number })[];
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

/** Human-readable table of a result (the CLI prints it without --json). */
export function formatTrainBench(result: TrainBenchResult): string {
  const lines: string[] = [];
  const peak = result.gemmPeakGflops;
  lines.push(`GEMM peak (ORT): ${peak === null ? 'n/a' : `${peak.toFixed(1)} GFLOP/s`}`);
  lines.push('');
  const header = ['model', 'batch', 'engine', 'threads', 'ms/step', 'GFLOP/s', '% peak'];
  const rows = result.cases.map((c) => [
    c.model,
    String(c.batch),
    c.engine,
    String(c.threads),
    c.msPerStep.toFixed(3),
    c.gflops.toFixed(2),
    peak ? ((100 * c.gflops) / peak).toFixed(1) : 'n/a',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) {
    lines.push(
      row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
    );
  }
  lines.push('');
  for (const r of result.ratios) {
    const fmt = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
    lines.push(
      `${r.model} batch ${r.batch}: ort speedup vs tfjs ${fmt(r.ortSpeedupVsTfjs)}, vs torch ${fmt(r.ortSpeedupVsTorch)}`,
    );
  }
  const ls = result.lockstep;
  if (ls) {
    lines.push('');
    lines.push(
      `lock-step twins, ${ls.model} batch ${ls.batch}, ${ls.engine} ${ls.optimizer}, ${ls.threads} thread(s):`,
    );
    const lsHeader = [
      'R',
      'separate ms/step',
      'lock-step ms/step',
      'separate run-steps/s',
      'lock-step run-steps/s',
      'speedup',
    ];
    const lsRows = ls.cases.map((c) => [
      String(c.runs),
      c.separateMsPerStep.toFixed(3),
      c.lockstepMsPerStep.toFixed(3),
      c.separateRunStepsPerSecond.toFixed(0),
      c.lockstepRunStepsPerSecond.toFixed(0),
      `${c.speedup.toFixed(2)}x`,
    ]);
    const lsWidths = lsHeader.map((h, i) => Math.max(h.length, ...lsRows.map((r) => r[i]!.length)));
    for (const row of [lsHeader, ...lsRows])
      lines.push(row.map((cell, i) => cell.padStart(lsWidths[i]!)).join('  '));
  }
  for (const [key, note] of Object.entries(result.notes)) lines.push(`${key}: ${note}`);
  return lines.join('\n');
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function checkPositiveInt(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`${name} must be a positive integer, got ${value}`);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Small seeded generator for benchmark inputs only (timing does not depend on the values). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(rand: () => number): number {
  const u = 1 - rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}
