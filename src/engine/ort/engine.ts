/**
 * The ONNX Runtime engine: every job is an ONNX graph generated from the model spec, with the
 * flat parameters as a graph input, run by onnxruntime-node. Sessions are compiled lazily, one per
 * (job, batch size), and reused for every point in weight space.
 */

import type { Batch } from '../../data/types.js';
import { hiddenOutputs, largestActivation, type ModelGraphSpec } from '../../model/graph.js';
import { tensorSlot } from '../../model/layout.js';
import {
  activationsGraph,
  evalGraph,
  evalManyGraph,
  gradientGraph,
  hvpGraph,
  type JobGraph,
  normStatsGraph,
  outputsGraph,
  slotNames,
  stepScalars,
  trainStepGraph,
} from '../model-graphs.js';
import { emitLoop, type FloatType } from '../onnx/emit.js';
import { checkParamsBatch, isCombination, paramsPoint, pointCount } from '../params-batch.js';
import {
  type Engine,
  type EngineOptions,
  type EvalResult,
  type EvaluateManyOptions,
  type OptimizerState,
  type ParamsBatch,
  type ParamsCombination,
  type ResolvedOptimizer,
  resolveOptimizer,
  type TrainState,
  zeroOptimizerState,
} from '../types.js';
import {
  BoundedJobCache,
  checkLength,
  type Feed,
  type FloatArray,
  JobCache,
  ORT_VERSION,
  OrtJob,
} from './session.js';

/** Rows per evaluation/activation call; larger sets are processed in chunks of this size. */
const EVAL_CHUNK = 2048;

/**
 * Layer graphs (CNNs, ResNets) evaluate in chunks whose largest activation holds at most this many
 * floats (64 MiB in float32), at most {@link EVAL_CHUNK} rows.
 */
const NET_CHUNK_FLOATS = 2 ** 24;

/** Most points per `evaluateMany` call (one ONNX run evaluates up to this many weight vectors). */
const MANY_POINTS = 64;

/**
 * Memory bound of `evaluateMany`: at most this many floats (32 MiB in float32) in one
 * [points, rows, width] activation tensor of a call, and twice as many in its stacked `theta` input
 * ([points, P]). Peak memory of a call is a few such tensors (its ORT session keeps them in its arena).
 */
const MANY_FLOATS = 2 ** 23;

/**
 * Lists of points run as one batched graph only while one point's work per chunk of rows,
 * 2 · rows · Σ in·out FLOPs, is at most this (64 MFLOP, under a millisecond): above it the fixed cost
 * of an onnxruntime call is a few percent at most, and the batched graph measured no faster than one
 * `evaluate` per point (docs/performance.md, "Batched evaluation"), so evaluateMany makes those calls.
 */
const MANY_BATCH_FLOPS = 2 ** 26;

/**
 * evaluateMany sessions an engine keeps (least recently used released first): with {@link MANY_FLOATS}
 * this bounds the memory idle sessions hold to a few hundred MB.
 */
const MANY_SESSIONS = 4;

/** Sizes of one evaluateMany plan: points per call and rows per call. */
interface ManyPlan {
  readonly points: number;
  readonly rows: number;
}

/** `total` items in ceil(total / max) groups of equal size (the last group padded). */
function balanced(total: number, max: number): number {
  return Math.ceil(total / Math.ceil(total / max));
}

type JobKind = 'train' | 'loop' | 'eval' | 'grad' | 'hvp' | 'acts' | 'probs' | 'raw' | 'stats';

/**
 * The ORT jobs of one model in one float type. The float32 instance backs {@link createOrtEngine};
 * a float64 instance serves gradient checks against finite differences.
 */
export class OrtJobs {
  private readonly cache = new JobCache<string>();
  private readonly manyCache = new BoundedJobCache<string>(MANY_SESSIONS);
  readonly opt: ResolvedOptimizer;
  /** Rows per evaluation, activation and output call. */
  private readonly chunk: number;

  constructor(
    readonly model: ModelGraphSpec,
    optimizer: EngineOptions['optimizer'],
    readonly threads = 1,
    readonly floatType: FloatType = 'float32',
  ) {
    this.opt = resolveOptimizer(optimizer);
    this.chunk = model.net
      ? Math.max(1, Math.min(EVAL_CHUNK, Math.floor(NET_CHUNK_FLOATS / largestActivation(model))))
      : EVAL_CHUNK;
  }

  private job(kind: JobKind, batch: number): Promise<OrtJob> {
    return this.cache.get(`${kind}:${batch}`, () => {
      const options = { threads: this.threads, floatType: this.floatType };
      if (kind === 'loop') {
        const step = trainStepGraph(this.model, this.opt, batch);
        const plan = {
          carried: ['theta', ...slotNames(this.opt)],
          perStep: ['x', 'y', ...Object.keys(stepScalars(this.opt, 0, 0))],
          scanned: 'loss',
        };
        return OrtJob.fromModel(emitLoop(step.graph, step.outputs, plan, this.floatType), options);
      }
      const build: Record<Exclude<JobKind, 'loop'>, () => JobGraph> = {
        train: () => trainStepGraph(this.model, this.opt, batch),
        eval: () => evalGraph(this.model, batch),
        grad: () => gradientGraph(this.model, batch),
        hvp: () => hvpGraph(this.model, batch),
        acts: () => activationsGraph(this.model, batch),
        probs: () => outputsGraph(this.model, batch, 'probs'),
        raw: () => outputsGraph(this.model, batch, 'raw'),
        stats: () => normStatsGraph(this.model, batch),
      };
      return OrtJob.create(build[kind](), options);
    });
  }

  private batchFeeds(params: FloatArray, x: FloatArray, y: FloatArray | null, n: number) {
    const { inputDim, outputDim, layout } = this.model;
    checkLength('params', params, layout.size);
    checkLength('x', x, n * inputDim);
    const feeds: Record<string, { data: FloatArray; dims: number[] }> = {
      theta: { data: params, dims: [layout.size] },
      x: { data: x, dims: [n, inputDim] },
    };
    if (y) {
      checkLength('y', y, n * outputDim);
      feeds.y = { data: y, dims: [n, outputDim] };
    }
    return feeds;
  }

  /** One optimizer step; returns the loss before it and the new parameters and slots. */
  async trainStep(
    params: FloatArray,
    slots: readonly FloatArray[],
    step: number,
    x: FloatArray,
    y: FloatArray,
    n: number,
    lr: number,
  ): Promise<{ loss: number; params: FloatArray; slots: FloatArray[] }> {
    const names = slotNames(this.opt);
    const feeds: Record<string, unknown> = {
      ...this.batchFeeds(params, x, y, n),
      ...stepScalars(this.opt, lr, step),
    };
    names.forEach((name, i) => {
      feeds[name] = { data: slots[i] as FloatArray, dims: [this.model.layout.size] };
    });
    const out = await (await this.job('train', n)).run(feeds as Parameters<OrtJob['run']>[0]);
    return {
      loss: (out.loss as FloatArray)[0] as number,
      params: out.theta_new as FloatArray,
      slots: names.map((name) => out[`${name}_new`] as FloatArray),
    };
  }

  /**
   * `lrs.length` optimizer steps in one ONNX Loop call. `xs`/`ys` hold the batches back to back
   * (each n rows). Same arithmetic as repeated {@link trainStep} calls, bit for bit.
   */
  async trainSteps(
    params: FloatArray,
    slots: readonly FloatArray[],
    step: number,
    xs: FloatArray,
    ys: FloatArray,
    n: number,
    lrs: readonly number[],
  ): Promise<{ losses: FloatArray; params: FloatArray; slots: FloatArray[] }> {
    const k = lrs.length;
    const { inputDim, outputDim, layout } = this.model;
    checkLength('params', params, layout.size);
    checkLength('xs', xs, k * n * inputDim);
    checkLength('ys', ys, k * n * outputDim);
    const names = slotNames(this.opt);
    const Arr = this.floatType === 'float64' ? Float64Array : Float32Array;
    const scalars = lrs.map((lr, i) => stepScalars(this.opt, lr, step + i));
    const feeds: Record<string, Feed> = {
      steps: BigInt(k),
      theta_0: { data: params, dims: [layout.size] },
      x_all: { data: xs, dims: [k, n, inputDim] },
      y_all: { data: ys, dims: [k, n, outputDim] },
    };
    for (const name of Object.keys(scalars[0] ?? {})) {
      feeds[`${name}_all`] = { data: Arr.from(scalars.map((s) => s[name] as number)), dims: [k] };
    }
    names.forEach((name, i) => {
      feeds[`${name}_0`] = { data: slots[i] as FloatArray, dims: [layout.size] };
    });
    const out = await (await this.job('loop', n)).run(feeds);
    return {
      losses: out.loss as FloatArray,
      params: out.theta_new as FloatArray,
      slots: names.map((name) => out[`${name}_new`] as FloatArray),
    };
  }

  /** Mean loss and gradient on one batch. */
  async gradient(params: FloatArray, x: FloatArray, y: FloatArray, n: number) {
    const out = await (await this.job('grad', n)).run(this.batchFeeds(params, x, y, n));
    return { loss: (out.loss as FloatArray)[0] as number, grad: out.grad as FloatArray };
  }

  /** Hessian-vector product of the batch's mean loss. */
  async hvp(params: FloatArray, x: FloatArray, y: FloatArray, n: number, v: FloatArray): Promise<FloatArray> {
    checkLength('v', v, this.model.layout.size);
    const feeds = { ...this.batchFeeds(params, x, y, n), v: { data: v, dims: [this.model.layout.size] } };
    return (await (await this.job('hvp', n)).run(feeds)).hv as FloatArray;
  }

  /** Mean loss and correct count over n examples, in chunks of {@link EVAL_CHUNK} rows. */
  async evaluate(params: FloatArray, x: FloatArray, y: FloatArray, n: number): Promise<EvalResult> {
    const { inputDim, outputDim } = this.model;
    checkLength('x', x, n * inputDim);
    checkLength('y', y, n * outputDim);
    let lossSum = 0;
    let correct = 0;
    for (let start = 0; start < n; start += this.chunk) {
      const rows = Math.min(this.chunk, n - start);
      const xs = x.subarray(start * inputDim, (start + rows) * inputDim);
      const ys = y.subarray(start * outputDim, (start + rows) * outputDim);
      const out = await (await this.job('eval', rows)).run(this.batchFeeds(params, xs, ys, rows));
      lossSum += (out.lossSum as FloatArray)[0] as number;
      correct += out.correct ? ((out.correct as FloatArray)[0] as number) : 0;
    }
    return { loss: lossSum / n, correct, count: n };
  }

  /**
   * {@link evaluate} of many weight vectors ({@link Engine.evaluateMany}). A list (or a combination
   * with at least as many vectors as points per call, formed into points first) runs in the
   * points form of {@link evalManyGraph}: up to {@link MANY_POINTS} points per call, over the same
   * chunks of {@link EVAL_CHUNK} rows as evaluate, bit-identical to evaluate point by point; for
   * models large enough that a call's fixed cost does not matter ({@link MANY_BATCH_FLOPS}), as one
   * evaluate call per point. A combination with fewer vectors than points per call runs in the
   * combination form, with rows per call chosen so that one [points, rows, width] activation stays
   * within {@link MANY_FLOATS}.
   * Point groups are balanced (⌈M / ⌈M / max⌉⌉ points per call, the last group padded), so one
   * call compiles at most two sessions (full and last chunk of rows); the engine keeps the
   * {@link MANY_SESSIONS} most recently used.
   */
  async evaluateMany(
    points: ParamsBatch,
    x: FloatArray,
    y: FloatArray,
    n: number,
    options: EvaluateManyOptions = {},
  ): Promise<EvalResult[]> {
    const { inputDim, outputDim, layout } = this.model;
    checkParamsBatch(points, layout.size, 'evaluateMany');
    checkLength('x', x, n * inputDim);
    checkLength('y', y, n * outputDim);
    const total = pointCount(points);
    if (total === 0) return [];
    if (this.model.net) return this.evaluateEach(points, x, y, n, options);
    const width = Math.max(...this.model.layers.map((l) => l.outputs));
    if (isCombination(points)) {
      const group = balanced(total, MANY_POINTS);
      const K = points.vectors.length;
      if (K < group) {
        const maxRows = Math.max(1, Math.min(EVAL_CHUNK, Math.floor(MANY_FLOATS / (group * width))));
        const rows = n === 0 ? 1 : balanced(n, maxRows);
        return this.evaluateCombination(points, x, y, n, { points: group, rows }, options);
      }
    }
    const rows = Math.max(1, Math.min(n, EVAL_CHUNK));
    const macs = this.model.layers.reduce((sum, l) => sum + l.inputs * l.outputs, 0);
    if (2 * rows * macs > MANY_BATCH_FLOPS) return this.evaluateEach(points, x, y, n, options);
    const maxPoints = Math.min(
      MANY_POINTS,
      Math.floor(MANY_FLOATS / (rows * width)),
      Math.floor((2 * MANY_FLOATS) / layout.size),
    );
    return this.evaluatePoints(
      points,
      x,
      y,
      n,
      { points: balanced(total, Math.max(1, maxPoints)), rows },
      options,
    );
  }

  /** One {@link evaluate} call per point. */
  private async evaluateEach(
    points: ParamsBatch,
    x: FloatArray,
    y: FloatArray,
    n: number,
    options: EvaluateManyOptions,
  ): Promise<EvalResult[]> {
    const total = pointCount(points);
    const results: EvalResult[] = [];
    for (let i = 0; i < total; i++) {
      results.push(await this.evaluate(paramsPoint(points, i), x, y, n));
      options.onProgress?.(i + 1, total);
    }
    return results;
  }

  /** Run the evaluateMany job of (rows, points, vectors) on `feeds`. */
  private runMany(rows: number, points: number, vectors: number | undefined, feeds: Record<string, Feed>) {
    return this.manyCache.use(
      `${rows}:${points}:${vectors ?? 0}`,
      () =>
        OrtJob.create(evalManyGraph(this.model, rows, points, vectors), {
          threads: this.threads,
          floatType: this.floatType,
        }),
      (job) => job.run(feeds),
    );
  }

  /** Run every chunk of `plan.rows` rows for one group of points; sums per point in float64. */
  private async runChunks(
    feeds: Record<string, Feed>,
    x: FloatArray,
    y: FloatArray,
    n: number,
    plan: ManyPlan,
    vectors: number | undefined,
    lossSum: Float64Array,
    correct: Float64Array,
  ): Promise<void> {
    const { inputDim, outputDim } = this.model;
    for (let start = 0; start < n; start += plan.rows) {
      const rows = Math.min(plan.rows, n - start);
      const out = await this.runMany(rows, plan.points, vectors, {
        ...feeds,
        x: { data: x.subarray(start * inputDim, (start + rows) * inputDim), dims: [rows, inputDim] },
        y: { data: y.subarray(start * outputDim, (start + rows) * outputDim), dims: [rows, outputDim] },
      });
      const sums = out.lossSum as FloatArray;
      const hits = out.correct as FloatArray | undefined;
      for (let b = 0; b < plan.points; b++) {
        lossSum[b] = (lossSum[b] as number) + (sums[b] as number);
        if (hits) correct[b] = (correct[b] as number) + (hits[b] as number);
      }
    }
  }

  private async evaluatePoints(
    points: ParamsBatch,
    x: FloatArray,
    y: FloatArray,
    n: number,
    plan: ManyPlan,
    options: EvaluateManyOptions,
  ): Promise<EvalResult[]> {
    const P = this.model.layout.size;
    const total = pointCount(points);
    const results: EvalResult[] = [];
    // One [points, P] buffer for every group of the call: allocating a fresh one per group costs
    // more than a small model's evaluation (its pages are faulted in anew each time).
    const theta = this.takeScratch(plan.points * P);
    try {
      for (let first = 0; first < total; first += plan.points) {
        const count = Math.min(plan.points, total - first);
        // Rows past `count` (the last group's padding) hold earlier points: evaluated, never reported.
        for (let b = 0; b < count; b++) theta.set(paramsPoint(points, first + b), b * P);
        const lossSum = new Float64Array(plan.points);
        const correct = new Float64Array(plan.points);
        const feeds = { theta: { data: theta, dims: [plan.points, P] } };
        await this.runChunks(feeds, x, y, n, plan, undefined, lossSum, correct);
        for (let b = 0; b < count; b++) {
          results.push({ loss: (lossSum[b] as number) / n, correct: correct[b] as number, count: n });
        }
        options.onProgress?.(first + count, total);
      }
    } finally {
      this.scratch = theta;
    }
    return results;
  }

  /** A buffer of `size` floats kept between evaluateMany calls (taken while in use). */
  private scratch: FloatArray | undefined;

  private takeScratch(size: number): FloatArray {
    const kept = this.scratch;
    this.scratch = undefined;
    if (kept?.length === size) return kept;
    return this.floatType === 'float64' ? new Float64Array(size) : new Float32Array(size);
  }

  private async evaluateCombination(
    points: ParamsCombination,
    x: FloatArray,
    y: FloatArray,
    n: number,
    plan: ManyPlan,
    options: EvaluateManyOptions,
  ): Promise<EvalResult[]> {
    const P = this.model.layout.size;
    const K = points.vectors.length;
    const total = points.coefficients.length;
    const Arr = this.floatType === 'float64' ? Float64Array : Float32Array;
    const vectors = new Arr(K * P);
    points.vectors.forEach((v, k) => vectors.set(v, k * P));
    const results: EvalResult[] = [];
    for (let first = 0; first < total; first += plan.points) {
      const count = Math.min(plan.points, total - first);
      // Rows past the end of the list stay zero (the zero vector): evaluated, never reported.
      const coef = new Arr(plan.points * K);
      for (let b = 0; b < count; b++) coef.set(points.coefficients[first + b] as readonly number[], b * K);
      const lossSum = new Float64Array(plan.points);
      const correct = new Float64Array(plan.points);
      const feeds = {
        vectors: { data: vectors, dims: [K, P] },
        coef: { data: coef, dims: [plan.points, K] },
      };
      await this.runChunks(feeds, x, y, n, plan, K, lossSum, correct);
      for (let b = 0; b < count; b++) {
        results.push({ loss: (lossSum[b] as number) / n, correct: correct[b] as number, count: n });
      }
      options.onProgress?.(first + count, total);
    }
    return results;
  }

  /** Hidden-layer activations over n examples, keyed by layer name, each [n, width]. */
  async activations(params: FloatArray, x: FloatArray, n: number): Promise<Map<string, FloatArray>> {
    const { inputDim } = this.model;
    checkLength('x', x, n * inputDim);
    const hidden = hiddenOutputs(this.model);
    const Out = this.floatType === 'float64' ? Float64Array : Float32Array;
    const result = new Map<string, FloatArray>(hidden.map((h) => [h.name, new Out(n * h.width)]));
    if (hidden.length === 0) return result;
    for (let start = 0; start < n; start += this.chunk) {
      const rows = Math.min(this.chunk, n - start);
      const xs = x.subarray(start * inputDim, (start + rows) * inputDim);
      const out = await (await this.job('acts', rows)).run(this.batchFeeds(params, xs, null, rows));
      for (const h of hidden) {
        (result.get(h.name) as FloatArray).set(out[h.name] as FloatArray, start * h.width);
      }
    }
    return result;
  }

  /**
   * `params` with BatchNorm's running statistics recomputed on n examples, as PyTorch's
   * `torch.optim.swa_utils.update_bn` does (running statistics reset, momentum None): the forward
   * pass in train mode over consecutive batches of `batch` rows (the last one shorter), each layer's
   * running mean the average of its batch means and its running variance the average of its
   * unbiased batch variances, every batch weighted equally. A model without BatchNorm gets a copy.
   */
  async normStatistics(params: FloatArray, x: FloatArray, n: number, batch: number): Promise<FloatArray> {
    const { inputDim, layout, net } = this.model;
    checkLength('params', params, layout.size);
    checkLength('x', x, n * inputDim);
    const out = params.slice();
    const norms = (net?.nodes ?? []).filter(
      (node): node is Extract<typeof node, { op: 'norm' }> => node.op === 'norm' && node.kind === 'batch',
    );
    if (norms.length === 0) return out;
    if (!Number.isInteger(batch) || batch < 2)
      throw new Error(`normStatistics: batch must be an integer ≥ 2, got ${batch}`);
    const sums = new Map(
      norms.map((node) => [
        node.name,
        { mean: new Float64Array(node.channels), var: new Float64Array(node.channels) },
      ]),
    );
    let batches = 0;
    for (let start = 0; start < n; start += batch) {
      const rows = Math.min(batch, n - start);
      if (rows < 2) break;
      const xs = x.subarray(start * inputDim, (start + rows) * inputDim);
      const res = await (await this.job('stats', rows)).run(this.batchFeeds(params, xs, null, rows));
      for (const node of norms) {
        const [, h, w] = (net?.nodes[node.input]?.shape ?? []) as [number, number, number];
        const m = rows * h * w;
        const acc = sums.get(node.name) as { mean: Float64Array; var: Float64Array };
        const mean = res[`${node.name}.mean`] as FloatArray;
        const variance = res[`${node.name}.var`] as FloatArray;
        for (let c = 0; c < node.channels; c++) {
          acc.mean[c] = (acc.mean[c] as number) + (mean[c] as number);
          acc.var[c] = (acc.var[c] as number) + ((variance[c] as number) * m) / (m - 1);
        }
      }
      batches++;
    }
    if (batches === 0) throw new Error(`normStatistics needs at least 2 examples, got ${n}`);
    for (const node of norms) {
      const acc = sums.get(node.name) as { mean: Float64Array; var: Float64Array };
      const rm = tensorSlot(layout, `${node.name}.running_mean`);
      const rv = tensorSlot(layout, `${node.name}.running_var`);
      for (let c = 0; c < node.channels; c++) {
        out[rm.offset + c] = (acc.mean[c] as number) / batches;
        out[rv.offset + c] = (acc.var[c] as number) / batches;
      }
    }
    return out;
  }

  /**
   * Softmax outputs of a cross-entropy model over n examples, [n, outputDim] row-major, in chunks of
   * {@link EVAL_CHUNK} rows.
   */
  probabilities(params: FloatArray, x: FloatArray, n: number): Promise<FloatArray> {
    if (this.model.loss !== 'cross-entropy') {
      throw new Error(`probabilities need a cross-entropy model, got loss '${this.model.loss}'`);
    }
    return this.outputs('probs', params, x, n);
  }

  /** Raw model outputs (logits, or an mse model's predictions) over n examples, [n, outputDim]. */
  predictions(params: FloatArray, x: FloatArray, n: number): Promise<FloatArray> {
    return this.outputs('raw', params, x, n);
  }

  private async outputs(kind: 'probs' | 'raw', params: FloatArray, x: FloatArray, n: number) {
    const { inputDim, outputDim } = this.model;
    checkLength('x', x, n * inputDim);
    const Out = this.floatType === 'float64' ? Float64Array : Float32Array;
    const result = new Out(n * outputDim);
    const name = kind === 'probs' ? 'probs' : 'outputs';
    for (let start = 0; start < n; start += this.chunk) {
      const rows = Math.min(this.chunk, n - start);
      const xs = x.subarray(start * inputDim, (start + rows) * inputDim);
      const out = await (await this.job(kind, rows)).run(this.batchFeeds(params, xs, null, rows));
      result.set(out[name] as FloatArray, start * outputDim);
    }
    return result;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.cache.dispose(), this.manyCache.dispose()]);
  }
}

/** The default engine: float32 ONNX graphs run by onnxruntime-node on the CPU. */
export async function createOrtEngine(model: ModelGraphSpec, options: EngineOptions): Promise<Engine> {
  const threads = options.threads ?? 1;
  const jobs = new OrtJobs(model, options.optimizer, threads, 'float32');
  const f32 = (a: FloatArray) => a as Float32Array;
  return {
    name: 'ort',
    backend: `onnxruntime-node ${ORT_VERSION} cpu, ${threads} thread${threads === 1 ? '' : 's'}`,
    model,
    initOptimizerState: (): OptimizerState => zeroOptimizerState(jobs.opt, model.layout.size),
    async trainStep(state: TrainState, batch: Batch, lr: number): Promise<number> {
      const r = await jobs.trainStep(
        state.params,
        state.opt.slots,
        state.opt.step,
        batch.x,
        batch.y,
        batch.size,
        lr,
      );
      state.params = f32(r.params);
      state.opt.slots = r.slots.map(f32);
      state.opt.step += 1;
      return r.loss;
    },
    async trainSteps(
      state: TrainState,
      batches: readonly Batch[],
      lrs: readonly number[],
    ): Promise<Float64Array> {
      const n = batches[0]?.size ?? 0;
      if (batches.length !== lrs.length || batches.some((b) => b.size !== n)) {
        throw new Error('trainSteps needs one learning rate per batch and batches of equal size');
      }
      const stack = (key: 'x' | 'y') => {
        const out = new Float32Array(batches.reduce((s, b) => s + b[key].length, 0));
        let at = 0;
        for (const b of batches) {
          out.set(b[key], at);
          at += b[key].length;
        }
        return out;
      };
      const r = await jobs.trainSteps(
        state.params,
        state.opt.slots,
        state.opt.step,
        stack('x'),
        stack('y'),
        n,
        lrs,
      );
      state.params = f32(r.params);
      state.opt.slots = r.slots.map(f32);
      state.opt.step += lrs.length;
      return Float64Array.from(r.losses);
    },
    evaluate: (params, x, y, n) => jobs.evaluate(params, x, y, n),
    evaluateMany: (points, x, y, n, options) => jobs.evaluateMany(points, x, y, n, options),
    async gradient(params, batch) {
      const r = await jobs.gradient(params, batch.x, batch.y, batch.size);
      return { loss: r.loss, grad: f32(r.grad) };
    },
    hvp: async (params, batch, v) => f32(await jobs.hvp(params, batch.x, batch.y, batch.size, v)),
    activations: async (params, x, n) =>
      new Map([...(await jobs.activations(params, x, n))].map(([k, v]) => [k, f32(v)])),
    probabilities: async (params, x, n) => f32(await jobs.probabilities(params, x, n)),
    predictions: async (params, x, n) => f32(await jobs.predictions(params, x, n)),
    normStatistics: async (params, x, n, batch) => f32(await jobs.normStatistics(params, x, n, batch)),
    dispose: () => jobs.dispose(),
  };
}
