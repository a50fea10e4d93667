/**
 * Loss-surface benchmark (`twinscope bench surface`): a 2-D loss surface of an MNIST MLP evaluated
 * one point per `Engine.evaluate` call against the batched `Engine.evaluateMany`, in one process
 * run, as ratios.
 *
 * Setup (full size): MLP 784-256-256-10 (other hidden widths with `hidden`; ReLU, He init, seed 1), trained for `trainSteps` SGD steps
 * (lr 0.1, momentum 0.9, batch 128) on the 10,000 digits of the `mnist` package (src/data/mnist.ts,
 * pixels in [0, 1], shuffled with seed 1) so that the surface is that of a working classifier; then
 * the surface θ + a d₁ + b d₂ on a 51 × 51 grid over [−1, 1]² with Li et al.'s filter-normalized
 * directions ({@link randomPlaneSurface}'s d₁, d₂), on all 10,000 digits, on the ORT engine.
 *
 * Modes (sessions compiled in an untimed warm-up):
 * - `sequential`: one `engine.evaluate` per grid point (the surface without a batched evaluator);
 * - `list`: the grid points as lists to `engine.evaluateMany` (the same results, bit for bit; a model
 *   of this size is past the engine's batching threshold for lists, so this is one evaluate call per
 *   point: the mode shows that lists cost nothing extra; `--quick`'s small model runs batched);
 * - `combination`: `engineEvaluator(engine, data).many` of the combination [θ, d₁, d₂] · [1, a, b]
 *   (what lossSurface hands it), whose first layer is three wide GEMMs per group of 64 points.
 * The grid is timed in rounds of {@link BLOCK} points, the three modes in turn on each round's
 * points, so that all see the same machine load (on a shared machine it changes over minutes; the
 * sums per mode are reported). Then `lossSurface`: the real API call on the whole grid at once,
 * timed alone after the rounds.
 *
 * `sample` (default: every point) times `sequential` and `list` on every k-th grid point only and
 * scales their times to the whole grid (`scaledFrom`); the combination modes always run every point.
 * Agreement: the largest |loss difference| / (1 + |loss|) and |correct-count difference| of each
 * mode against `sequential` on the sampled points. Times are wall-clock and process CPU (all
 * threads); the 1-minute load average is recorded at the start and the end.
 */
import { loadavg } from 'node:os';
import { readMnistDigits } from '../data/mnist.js';
import { paramsPoint } from '../engine/params-batch.js';
import type { Engine, EvalResult } from '../engine/types.js';
import { engineEvaluator, type LossAccuracy } from '../measure/sensitivity.js';
import { lossSurface, randomDirection, surfaceAxis } from '../measure/surface.js';
import { Rng } from '../rng/rng.js';
import { checkPositiveInt } from './checks.js';
import { mlpSpec, modelName, randomParams } from './inputs.js';
import { type MachineInfo, machineInfo } from './machine.js';

/** Options of {@link runSurfaceBenchmark}. */
export interface SurfaceBenchOptions {
  /** Intra-op threads of the ORT engine. Default 1. */
  readonly threads?: number;
  /** Small sizes (for tests): MLP 784-32-32-10, 600 digits, 7 × 7 grid, 20 training steps. */
  readonly quick?: boolean;
  /** Hidden widths of the MLP. Default [256, 256] (quick: [32, 32]). */
  readonly hidden?: readonly number[];
  /** Grid points per axis. Default 51 (quick: 7). */
  readonly points?: number;
  /** Digits evaluated (and trained on). Default 10,000 (quick: 600). */
  readonly examples?: number;
  /** Grid points timed in the `sequential` and `list` modes (every k-th point). Default: all. */
  readonly sample?: number;
  /** SGD steps before the surface. Default 200 (quick: 20). */
  readonly trainSteps?: number;
  /** Progress messages (the CLI sends them to stderr). Default: none. */
  readonly log?: (message: string) => void;
}

/** One timed mode of {@link SurfaceBenchResult}. */
interface SurfaceBenchMode {
  readonly name: 'sequential' | 'list' | 'combination' | 'lossSurface';
  readonly what: string;
  /** Grid points evaluated and timed. */
  readonly points: number;
  /** Wall-clock and process CPU ms, scaled to the whole grid when `scaledFrom` is set. */
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly scaledFrom?: { readonly points: number; readonly wallMs: number; readonly cpuMs: number };
  /** Wall ms per grid point. */
  readonly msPerPoint: number;
  /** Arithmetic of one point evaluated densely (2 · examples · Σ in·out) per wall second, GFLOP/s. */
  readonly denseGflops: number;
  /** Largest |loss − sequential loss| / (1 + |sequential loss|) over the points both evaluated. */
  readonly maxLossDifference: number;
  /** Largest |correct − sequential correct| over the same points. */
  readonly maxCorrectDifference: number;
}

/** What {@link runSurfaceBenchmark} measured. */
export interface SurfaceBenchResult {
  readonly model: string;
  readonly examples: number;
  readonly grid: readonly [number, number];
  readonly threads: number;
  readonly backend: string;
  /** θ after training: its loss and accuracy on the evaluated digits. */
  readonly theta: { readonly trainSteps: number; readonly loss: number; readonly accuracy: number };
  readonly modes: SurfaceBenchMode[];
  /** Sequential time ÷ each mode's time, wall and CPU (whole grid). */
  readonly speedup: Record<string, { readonly wall: number; readonly cpu: number }>;
  /** 1-minute load average at the start and at the end (the machine may be shared). */
  readonly load: { readonly start: number; readonly end: number };
  /** Peak resident set size of the process, MiB. */
  readonly peakRssMiB: number;
  readonly machine: MachineInfo;
}

/** Grid points per round: each round times the three modes in turn on the same points. */
const BLOCK = 128;

interface Timed<T> {
  readonly value: T;
  readonly wallMs: number;
  readonly cpuMs: number;
}

async function timed<T>(f: () => Promise<T>): Promise<Timed<T>> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await f();
  const wallMs = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, wallMs, cpuMs: (c.user + c.system) / 1000 };
}

/** The digits as [n, 784] inputs and one-hot targets, shuffled with a seeded permutation. */
function mnistData(n: number, seed: number) {
  const digits = readMnistDigits();
  const total = digits.labels.length;
  if (n > total) throw new Error(`examples must be at most ${total} (the mnist package's digits), got ${n}`);
  const perm = Rng.fromSeed(seed).stream('bench-surface').permutation(total);
  const x = new Float32Array(n * 784);
  const y = new Float32Array(n * 10);
  for (let r = 0; r < n; r++) {
    const i = perm[r] as number;
    x.set(digits.x.subarray(i * 784, (i + 1) * 784), r * 784);
    y[r * 10 + (digits.labels[i] as number)] = 1;
  }
  return { x, y, n };
}

async function train(
  engine: Engine,
  theta: Float32Array,
  data: { x: Float32Array; y: Float32Array; n: number },
  steps: number,
) {
  const state = { params: theta, opt: engine.initOptimizerState() };
  const batch = Math.min(128, data.n);
  for (let s = 0; s < steps; s++) {
    const start = ((s * batch) % (data.n - batch + 1)) | 0;
    await engine.trainStep(
      state,
      {
        x: data.x.subarray(start * 784, (start + batch) * 784),
        y: data.y.subarray(start * 10, (start + batch) * 10),
        size: batch,
      },
      0.1,
    );
  }
  return state.params;
}

/** Run the benchmark (see the module comment). */
export async function runSurfaceBenchmark(options: SurfaceBenchOptions = {}): Promise<SurfaceBenchResult> {
  const quick = options.quick ?? false;
  const threads = options.threads ?? 1;
  const side = options.points ?? (quick ? 7 : 51);
  const examples = options.examples ?? (quick ? 600 : 10_000);
  const trainSteps = options.trainSteps ?? (quick ? 20 : 200);
  const log = options.log ?? (() => {});
  checkPositiveInt('threads', threads);
  checkPositiveInt('examples', examples);
  if (!Number.isInteger(side) || side < 2) throw new Error(`points must be an integer >= 2, got ${side}`);
  if (!Number.isInteger(trainSteps) || trainSteps < 0) {
    throw new Error(`trainSteps must be an integer >= 0, got ${trainSteps}`);
  }
  const total = side * side;
  const sample = Math.min(options.sample ?? total, total);
  checkPositiveInt('sample', sample);
  const loadStart = loadavg()[0] as number;

  const widths = [784, ...(options.hidden ?? (quick ? [32, 32] : [256, 256])), 10];
  const spec = mlpSpec(widths);
  const data = mnistData(examples, 1);
  const { createOrtEngine } = await import('../engine/ort/engine.js');
  const engine = await createOrtEngine(spec, {
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    threads,
  });
  try {
    log(`training ${modelName(widths)} for ${trainSteps} SGD steps on ${examples} digits`);
    const theta = await train(engine, randomParams(spec, 1), data, trainSteps);
    const clean = await engine.evaluate(theta, data.x, data.y, data.n);
    const d1 = randomDirection(theta, spec.layout, 0);
    const d2 = randomDirection(theta, spec.layout, 1);
    const axis = surfaceAxis(-1, 1, side);
    const combination = {
      vectors: [theta, d1, d2],
      coefficients: axis.flatMap((b) => axis.map((a) => [1, a, b])),
    };
    // fround(θ + a d₁ + b d₂) in float64, as lossSurface forms its points (a plain loop: about 1 ms
    // per point; a per-element callback would add ~80 ms per point to the timed modes).
    const pointAt = (k: number) => paramsPoint(combination, k);
    const step = Math.ceil(total / sample);
    const isSampled = (k: number) => k % step === 0;
    const evaluate = engineEvaluator(engine, data);
    const blockOf = (first: number) =>
      Array.from({ length: Math.min(BLOCK, total - first) }, (_, i) => first + i);
    const combinationOf = (block: readonly number[]) => ({
      vectors: combination.vectors,
      coefficients: block.map((k) => combination.coefficients[k] as number[]),
    });

    // Warm-up: compile the sessions of the first and the last block of each batched mode.
    log('warm-up: compiling sessions');
    await engine.evaluate(theta, data.x, data.y, data.n);
    const lastFirst = Math.floor((total - 1) / BLOCK) * BLOCK;
    for (const first of new Set([0, lastFirst])) {
      const block = blockOf(first);
      await evaluate.many?.(combinationOf(block));
      await engine.evaluateMany(block.filter(isSampled).slice(0, 16).map(pointAt), data.x, data.y, data.n);
    }

    // Rounds of BLOCK grid points: the three modes in turn on each block, so that all three see the
    // same machine load (it changes over minutes on a shared machine).
    const sampled: number[] = [];
    const seqResults: EvalResult[] = [];
    const listResults: EvalResult[] = [];
    const combResults: LossAccuracy[] = [];
    const seq = { wallMs: 0, cpuMs: 0 };
    const list = { wallMs: 0, cpuMs: 0 };
    const comb = { wallMs: 0, cpuMs: 0 };
    const add = (acc: { wallMs: number; cpuMs: number }, t: Timed<unknown>) => {
      acc.wallMs += t.wallMs;
      acc.cpuMs += t.cpuMs;
    };
    for (let first = 0; first < total; first += BLOCK) {
      const block = blockOf(first);
      const picked = block.filter(isSampled);
      sampled.push(...picked);
      log(`points ${first + 1}-${first + block.length} of ${total}`);
      const s = await timed(async () => {
        const out: EvalResult[] = [];
        for (const k of picked) out.push(await engine.evaluate(pointAt(k), data.x, data.y, data.n));
        return out;
      });
      add(seq, s);
      seqResults.push(...s.value);
      const l = await timed(() => engine.evaluateMany(picked.map(pointAt), data.x, data.y, data.n));
      add(list, l);
      listResults.push(...l.value);
      const c = await timed(async () => (await evaluate.many?.(combinationOf(block))) ?? []);
      add(comb, c);
      combResults.push(...c.value);
    }

    log(`lossSurface: all ${total} points in one call through engineEvaluator`);
    const surface = await timed(() => lossSurface(evaluate, theta, d1, d2, { x: axis, y: axis }));

    const seqLoss = seqResults.map((r) => r.loss);
    const seqCorrect = seqResults.map((r) => r.correct);
    /** Agreement with `sequential` of a mode's loss and correct count at sampled point k (grid index). */
    const agreement = (loss: (k: number) => number, correct: (k: number) => number) => {
      let maxLoss = 0;
      let maxCorrect = 0;
      sampled.forEach((k, i) => {
        const l = seqLoss[i] as number;
        maxLoss = Math.max(maxLoss, Math.abs(loss(k) - l) / (1 + Math.abs(l)));
        maxCorrect = Math.max(maxCorrect, Math.abs(correct(k) - (seqCorrect[i] as number)));
      });
      return { maxLossDifference: maxLoss, maxCorrectDifference: maxCorrect };
    };
    const flopsPerPoint = 2 * examples * spec.layers.reduce((s, l) => s + l.inputs * l.outputs, 0);
    const mode = (
      name: SurfaceBenchMode['name'],
      what: string,
      t: { wallMs: number; cpuMs: number },
      points: number,
      agree: ReturnType<typeof agreement>,
    ): SurfaceBenchMode => {
      const scale = total / points;
      const wallMs = t.wallMs * scale;
      return {
        name,
        what,
        points,
        wallMs,
        cpuMs: t.cpuMs * scale,
        ...(points < total ? { scaledFrom: { points, wallMs: t.wallMs, cpuMs: t.cpuMs } } : {}),
        msPerPoint: wallMs / total,
        denseGflops: (flopsPerPoint * total) / (wallMs * 1e6),
        ...agree,
      };
    };
    const listAt = new Map(sampled.map((k, i) => [k, listResults[i] as EvalResult]));
    const at = (grid: number[][], k: number) => grid[Math.floor(k / side)]?.[k % side] as number;
    const modes = [
      mode('sequential', 'one engine.evaluate per grid point', seq, sampled.length, {
        maxLossDifference: 0,
        maxCorrectDifference: 0,
      }),
      mode(
        'list',
        `grid points as lists of up to ${BLOCK} to engine.evaluateMany (points form)`,
        list,
        sampled.length,
        agreement(
          (k) => (listAt.get(k) as EvalResult).loss,
          (k) => (listAt.get(k) as EvalResult).correct,
        ),
      ),
      mode(
        'combination',
        `engineEvaluator(engine, data).many of [θ, d₁, d₂] · [1, a, b], ${BLOCK} grid points per call`,
        comb,
        total,
        agreement(
          (k) => (combResults[k] as LossAccuracy).loss,
          (k) => Math.round((combResults[k] as LossAccuracy).accuracy * examples),
        ),
      ),
      mode(
        'lossSurface',
        'lossSurface(engineEvaluator(engine, data), θ, d₁, d₂) on the whole grid, one call, after the rounds',
        surface,
        total,
        agreement(
          (k) => at(surface.value.loss, k),
          (k) => Math.round(at(surface.value.accuracy, k) * examples),
        ),
      ),
    ];
    const base = modes[0] as SurfaceBenchMode;
    const speedup: Record<string, { wall: number; cpu: number }> = {};
    for (const m of modes.slice(1)) {
      speedup[`${m.name} vs sequential`] = { wall: base.wallMs / m.wallMs, cpu: base.cpuMs / m.cpuMs };
    }
    return {
      model: modelName(widths),
      examples,
      grid: [side, side],
      threads,
      backend: engine.backend,
      theta: { trainSteps, loss: clean.loss, accuracy: clean.correct / clean.count },
      modes,
      speedup,
      load: { start: loadStart, end: loadavg()[0] as number },
      peakRssMiB: process.resourceUsage().maxRSS / 1024,
      machine: machineInfo(),
    };
  } finally {
    await engine.dispose();
  }
}
