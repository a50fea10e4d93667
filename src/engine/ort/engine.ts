/**
 * The ONNX Runtime engine: every job is an ONNX graph generated from the model spec, with the
 * flat parameters as a graph input, run by onnxruntime-node. Sessions are compiled lazily, one per
 * (job, batch size), and reused for every point in weight space.
 */

import type { Batch } from '../../data/types.js';
import type { ModelGraphSpec } from '../../model/graph.js';
import {
  activationsGraph,
  evalGraph,
  gradientGraph,
  hvpGraph,
  type JobGraph,
  outputsGraph,
  slotNames,
  stepScalars,
  trainStepGraph,
} from '../model-graphs.js';
import { emitLoop, type FloatType } from '../onnx/emit.js';
import {
  type Engine,
  type EngineOptions,
  type EvalResult,
  type OptimizerState,
  type ResolvedOptimizer,
  resolveOptimizer,
  type TrainState,
  zeroOptimizerState,
} from '../types.js';
import { checkLength, type Feed, type FloatArray, JobCache, ORT_VERSION, OrtJob } from './session.js';

/** Rows per evaluation/activation call; larger sets are processed in chunks of this size. */
const EVAL_CHUNK = 2048;

type JobKind = 'train' | 'loop' | 'eval' | 'grad' | 'hvp' | 'acts' | 'probs' | 'raw';

/**
 * The ORT jobs of one model in one float type. The float32 instance backs {@link createOrtEngine};
 * a float64 instance serves gradient checks against finite differences.
 */
export class OrtJobs {
  private readonly cache = new JobCache<string>();
  readonly opt: ResolvedOptimizer;

  constructor(
    readonly model: ModelGraphSpec,
    optimizer: EngineOptions['optimizer'],
    readonly threads = 1,
    readonly floatType: FloatType = 'float32',
  ) {
    this.opt = resolveOptimizer(optimizer);
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
    for (let start = 0; start < n; start += EVAL_CHUNK) {
      const rows = Math.min(EVAL_CHUNK, n - start);
      const xs = x.subarray(start * inputDim, (start + rows) * inputDim);
      const ys = y.subarray(start * outputDim, (start + rows) * outputDim);
      const out = await (await this.job('eval', rows)).run(this.batchFeeds(params, xs, ys, rows));
      lossSum += (out.lossSum as FloatArray)[0] as number;
      correct += out.correct ? ((out.correct as FloatArray)[0] as number) : 0;
    }
    return { loss: lossSum / n, correct, count: n };
  }

  /** Hidden-layer activations over n examples, keyed by layer name, each [n, width]. */
  async activations(params: FloatArray, x: FloatArray, n: number): Promise<Map<string, FloatArray>> {
    const { inputDim } = this.model;
    checkLength('x', x, n * inputDim);
    const hiddenLayers = this.model.layers.slice(0, -1);
    const Out = this.floatType === 'float64' ? Float64Array : Float32Array;
    const result = new Map<string, FloatArray>(hiddenLayers.map((l) => [l.name, new Out(n * l.outputs)]));
    if (hiddenLayers.length === 0) return result;
    for (let start = 0; start < n; start += EVAL_CHUNK) {
      const rows = Math.min(EVAL_CHUNK, n - start);
      const xs = x.subarray(start * inputDim, (start + rows) * inputDim);
      const out = await (await this.job('acts', rows)).run(this.batchFeeds(params, xs, null, rows));
      for (const layer of hiddenLayers) {
        (result.get(layer.name) as FloatArray).set(out[layer.name] as FloatArray, start * layer.outputs);
      }
    }
    return result;
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
    for (let start = 0; start < n; start += EVAL_CHUNK) {
      const rows = Math.min(EVAL_CHUNK, n - start);
      const xs = x.subarray(start * inputDim, (start + rows) * inputDim);
      const out = await (await this.job(kind, rows)).run(this.batchFeeds(params, xs, null, rows));
      result.set(out[name] as FloatArray, start * outputDim);
    }
    return result;
  }

  async dispose(): Promise<void> {
    await this.cache.dispose();
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
    async gradient(params, batch) {
      const r = await jobs.gradient(params, batch.x, batch.y, batch.size);
      return { loss: r.loss, grad: f32(r.grad) };
    },
    hvp: async (params, batch, v) => f32(await jobs.hvp(params, batch.x, batch.y, batch.size, v)),
    activations: async (params, x, n) =>
      new Map([...(await jobs.activations(params, x, n))].map(([k, v]) => [k, f32(v)])),
    probabilities: async (params, x, n) => f32(await jobs.probabilities(params, x, n)),
    predictions: async (params, x, n) => f32(await jobs.predictions(params, x, n)),
    dispose: () => jobs.dispose(),
  };
}
