/**
 * The tfjs engine: the reference engine, written with TensorFlow.js ops in float32.
 *
 * Backend: `@tensorflow/tfjs-node` (TensorFlow C library) when it is installed — it is not a
 * dependency, so it is loaded by a dynamic import whose failure is silent — else `@tensorflow/tfjs`
 * on its pure-JS `cpu` backend. `engine.backend` says which (`tfjs-node tensorflow` / `tfjs cpu`).
 * `EngineOptions.threads` is ignored: the cpu backend is single-threaded.
 *
 * The forward pass reads each layer's weight and bias as slices of the flat parameter tensor, so
 * gradients come out flat, in {@link ParameterLayout} order. Optimizer updates are PyTorch's
 * equations written with tf ops (tfjs's built-in optimizers differ from PyTorch's).
 */
import type * as TF from '@tensorflow/tfjs';
import type { Batch } from '../../data/types.js';
import { countsCorrect, type ModelGraphSpec } from '../../model/graph.js';
import { tensorSlot } from '../../model/layout.js';
import type { Activation } from '../../model/spec.js';
import { checkParamsBatch, evaluateEach } from '../params-batch.js';
import {
  type Engine,
  type EngineOptions,
  type EvalResult,
  type OptimizerState,
  optimizerSlotCount,
  type ResolvedOptimizer,
  resolveOptimizer,
  type TrainState,
  zeroOptimizerState,
} from '../types.js';

type Tf = typeof TF;
type Tensor = TF.Tensor;
type Tensor1D = TF.Tensor1D;
type Tensor2D = TF.Tensor2D;

/** Rows per chunk in {@link Engine.evaluate} and {@link Engine.activations}. */
const TFJS_EVAL_CHUNK = 4096;

interface LoadedTf {
  readonly tf: Tf;
  readonly backend: string;
}

let loading: Promise<LoadedTf> | undefined;

/** Load tfjs once per process: tfjs-node if present, else tfjs on the cpu backend. */
function loadTfjs(): Promise<LoadedTf> {
  loading ??= (async () => {
    try {
      // A variable specifier keeps tsc and bundlers from resolving the optional module.
      const nodeName = '@tensorflow/tfjs-node';
      process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
      const tf = (await import(nodeName)) as Tf;
      if (await tf.setBackend('tensorflow')) return { tf, backend: 'tfjs-node tensorflow' };
    } catch {
      // not installed (or its native library failed to load): fall back to the cpu backend
    }
    const tf = await import('@tensorflow/tfjs');
    if (!(await tf.setBackend('cpu'))) throw new Error('tfjs: cannot initialize the cpu backend');
    // The cpu backend prints a "looks like you are running TensorFlow.js in Node.js" banner through
    // console.warn on its first tensor write; make that write here, silenced.
    const warn = console.warn;
    console.warn = () => {};
    try {
      tf.tensor1d([0]).dispose();
    } finally {
      console.warn = warn;
    }
    return { tf, backend: 'tfjs cpu' };
  })();
  return loading;
}

interface LayerSlots {
  readonly activation: Activation;
  readonly inputs: number;
  readonly outputs: number;
  readonly wOffset: number;
  readonly bOffset: number | undefined;
}

/**
 * Create the tfjs engine for `model`.
 *
 * `hvp` is exact reverse-over-reverse: tfjs's nested `tf.grad` silently drops the dependence of
 * a gradient on tensors saved from the forward pass (e.g. tanh's output, log-softmax's softmax),
 * giving wrong second derivatives, so the engine writes the gradient out as explicit backprop
 * in tf ops and lets tfjs differentiate ⟨∇L, v⟩ through that (first-order autodiff only).
 */
export async function createTfjsEngine(model: ModelGraphSpec, options: EngineOptions): Promise<Engine> {
  const { tf, backend } = await loadTfjs();
  const opt = resolveOptimizer(options.optimizer);
  const P = model.layout.size;
  const layers: LayerSlots[] = model.layers.map((layer) => ({
    activation: layer.activation,
    inputs: layer.inputs,
    outputs: layer.outputs,
    wOffset: tensorSlot(model.layout, `${layer.name}.weight`).offset,
    bOffset: layer.bias ? tensorSlot(model.layout, `${layer.name}.bias`).offset : undefined,
  }));
  let disposed = false;

  const live = (): void => {
    if (disposed) throw new Error('tfjs engine: used after dispose()');
  };
  const checkParams = (params: Float32Array, what = 'params'): void => {
    if (params.length !== P)
      throw new Error(`tfjs engine: ${what} has ${params.length} entries, model has ${P}`);
  };
  const checkRows = (x: Float32Array, y: Float32Array | undefined, n: number): void => {
    if (!Number.isInteger(n) || n < 0) throw new Error(`tfjs engine: bad row count ${n}`);
    if (x.length < n * model.inputDim) {
      throw new Error(`tfjs engine: x has ${x.length} entries, need ${n} × ${model.inputDim}`);
    }
    if (y && y.length < n * model.outputDim) {
      throw new Error(`tfjs engine: y has ${y.length} entries, need ${n} × ${model.outputDim}`);
    }
  };
  const checkBatch = (batch: Batch): void => {
    if (batch.size < 1) throw new Error('tfjs engine: empty batch');
    checkRows(batch.x, batch.y, batch.size);
  };

  const xTensor = (x: Float32Array, from: number, n: number): Tensor2D =>
    tf.tensor2d(x.subarray(from * model.inputDim, (from + n) * model.inputDim), [n, model.inputDim]);
  const yTensor = (y: Float32Array, from: number, n: number): Tensor2D =>
    tf.tensor2d(y.subarray(from * model.outputDim, (from + n) * model.outputDim), [n, model.outputDim]);

  const weight = (p: Tensor1D, l: LayerSlots): Tensor2D =>
    p.slice([l.wOffset], [l.outputs * l.inputs]).reshape([l.outputs, l.inputs]);

  const activate = (a: Activation, z: Tensor2D): Tensor2D =>
    a === 'relu' ? tf.relu(z) : a === 'tanh' ? tf.tanh(z) : z;

  /** Pre-activations `zs` and post-activation outputs `as` of every layer (the last is the model output). */
  function layerOutputs(p: Tensor1D, x: Tensor2D): { zs: Tensor2D[]; as: Tensor2D[] } {
    const zs: Tensor2D[] = [];
    const as: Tensor2D[] = [];
    let h = x;
    for (const l of layers) {
      let z = tf.matMul<Tensor2D>(h, weight(p, l), false, true);
      if (l.bOffset !== undefined) z = tf.add(z, p.slice([l.bOffset], [l.outputs])) as Tensor2D;
      h = activate(l.activation, z);
      zs.push(z);
      as.push(h);
    }
    return { zs, as };
  }

  const forward = (p: Tensor1D, x: Tensor2D): Tensor2D[] => layerOutputs(p, x).as;

  /** Per-row loss [n]: −Σ y·log_softmax(z) or ½ Σ (z − y)². */
  function rowLoss(z: Tensor2D, y: Tensor2D): Tensor1D {
    if (model.loss === 'cross-entropy') return tf.neg(tf.sum<Tensor1D>(tf.mul(y, tf.logSoftmax(z)), 1));
    return tf.mul(0.5, tf.sum<Tensor1D>(tf.square(tf.sub(z, y)), 1));
  }

  const meanLoss = (p: Tensor1D, x: Tensor2D, y: Tensor2D): TF.Scalar =>
    tf.mean(rowLoss(forward(p, x).at(-1) as Tensor2D, y));

  /**
   * The gradient of the mean loss written out as backprop with tf ops, so that tfjs's first-order
   * autodiff can differentiate it again (for {@link Engine.hvp}).
   */
  function explicitGradient(p: Tensor1D, x: Tensor2D, y: Tensor2D): Tensor1D {
    const n = x.shape[0];
    const { zs, as } = layerOutputs(p, x);
    const inputs = [x, ...as];
    const out = inputs.at(-1) as Tensor2D;
    // dL/d(output) for the batch mean.
    let da: Tensor2D =
      model.loss === 'cross-entropy' ? tf.div(tf.sub(tf.softmax(out), y), n) : tf.div(tf.sub(out, y), n);
    const pieces: Tensor[] = [];
    for (let i = layers.length - 1; i >= 0; i--) {
      const l = layers[i] as LayerSlots;
      const z = zs[i] as Tensor2D;
      const a = inputs[i + 1] as Tensor2D;
      const dz =
        l.activation === 'relu'
          ? tf.mul(da, tf.step(z))
          : l.activation === 'tanh'
            ? tf.mul(da, tf.sub(1, tf.square(a)))
            : da;
      if (l.bOffset !== undefined) pieces.push(tf.sum(dz, 0));
      pieces.push(tf.reshape(tf.matMul(dz, inputs[i] as Tensor2D, true, false), [-1]));
      if (i > 0) da = tf.matMul(dz, weight(p, l));
    }
    return tf.concat(pieces.reverse()) as Tensor1D;
  }

  /** PyTorch's update of `p` given its gradient; returns the new parameters and slots. */
  function update(
    r: ResolvedOptimizer,
    p: Tensor1D,
    grad: Tensor1D,
    slots: Tensor1D[],
    step: number,
    lr: number,
  ): { params: Tensor1D; slots: Tensor1D[] } {
    if (r.kind === 'sgd') {
      let g: Tensor1D = r.weightDecay !== 0 ? tf.add(grad, tf.mul(r.weightDecay, p)) : grad;
      const outSlots: Tensor1D[] = [];
      if (r.momentum !== 0) {
        const buf0 = slots[0] as Tensor1D;
        const b: Tensor1D = step === 0 ? g : tf.add(tf.mul(r.momentum, buf0), tf.mul(1 - r.dampening, g));
        outSlots.push(b);
        g = r.nesterov ? tf.add(g, tf.mul(r.momentum, b)) : b;
      }
      return { params: tf.sub(p, tf.mul(lr, g)), slots: outSlots };
    }
    const t = step + 1;
    const bc1 = 1 - r.beta1 ** t;
    const bc2 = 1 - r.beta2 ** t;
    let p0 = p;
    let g = grad;
    if (r.kind === 'adamw') {
      if (r.weightDecay !== 0) p0 = tf.mul(p, 1 - lr * r.weightDecay);
    } else if (r.weightDecay !== 0) {
      g = tf.add(grad, tf.mul(r.weightDecay, p));
    }
    const m: Tensor1D = tf.add(tf.mul(r.beta1, slots[0] as Tensor1D), tf.mul(1 - r.beta1, g));
    const v: Tensor1D = tf.add(tf.mul(r.beta2, slots[1] as Tensor1D), tf.mul(1 - r.beta2, tf.square(g)));
    const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), r.eps);
    const params: Tensor1D = tf.sub(p0, tf.mul(lr / bc1, tf.div(m, denom)));
    return { params, slots: [m, v] };
  }

  const read = async (t: Tensor): Promise<Float32Array> => {
    // Copy: tfjs may hand back its own storage (or a caller's array a tensor wraps).
    const out = new Float32Array(await t.data());
    t.dispose();
    return out;
  };

  const engine: Engine = {
    name: 'tfjs',
    backend,
    model,

    initOptimizerState(): OptimizerState {
      return zeroOptimizerState(opt, P);
    },

    async trainStep(state: TrainState, batch: Batch, lr: number): Promise<number> {
      live();
      checkParams(state.params);
      checkBatch(batch);
      const nSlots = optimizerSlotCount(opt);
      if (state.opt.slots.length !== nSlots) {
        throw new Error(
          `tfjs engine: optimizer state has ${state.opt.slots.length} slots, expected ${nSlots}`,
        );
      }
      for (const [i, s] of state.opt.slots.entries()) checkParams(s, `optimizer slot ${i}`);
      const step = state.opt.step;
      const out = tf.tidy(() => {
        const p = tf.tensor1d(state.params);
        const x = xTensor(batch.x, 0, batch.size);
        const y = yTensor(batch.y, 0, batch.size);
        const { value, grad } = tf.valueAndGrad((q: Tensor1D) => meanLoss(q, x, y))(p);
        const slots = state.opt.slots.map((s) => tf.tensor1d(s));
        const next = update(opt, p, grad as Tensor1D, slots, step, lr);
        return [value, next.params, ...next.slots] as Tensor[];
      });
      const [value, params, ...slots] = out as [Tensor, Tensor, ...Tensor[]];
      const loss = (await read(value))[0] as number;
      state.params = await read(params);
      state.opt.slots = await Promise.all(slots.map(read));
      state.opt.step = step + 1;
      return loss;
    },

    async evaluate(params: Float32Array, x: Float32Array, y: Float32Array, n: number): Promise<EvalResult> {
      live();
      checkParams(params);
      checkRows(x, y, n);
      let lossSum = 0;
      let correct = 0;
      const p = tf.tensor1d(params);
      try {
        for (let from = 0; from < n; from += TFJS_EVAL_CHUNK) {
          const rows = Math.min(TFJS_EVAL_CHUNK, n - from);
          const [loss, hits] = tf.tidy(() => {
            const yt = yTensor(y, from, rows);
            const z = forward(p, xTensor(x, from, rows)).at(-1) as Tensor2D;
            const sum = tf.sum(rowLoss(z, yt));
            const ok = countsCorrect(model)
              ? tf.sum(tf.cast(tf.equal(tf.argMax(z, 1), tf.argMax(yt, 1)), 'int32'))
              : tf.scalar(0, 'int32');
            return [sum, ok];
          }) as [Tensor, Tensor];
          lossSum += (await read(loss))[0] as number;
          const h = await hits.data();
          hits.dispose();
          correct += h[0] as number;
        }
      } finally {
        p.dispose();
      }
      return { loss: n > 0 ? lossSum / n : Number.NaN, correct, count: n };
    },

    /** One {@link Engine.evaluate} call per point (the reference for the batched ORT path). */
    async evaluateMany(points, x, y, n, options): Promise<EvalResult[]> {
      live();
      checkParamsBatch(points, P, 'tfjs engine: evaluateMany');
      checkRows(x, y, n);
      return evaluateEach(engine.evaluate, points, x, y, n, options);
    },

    async gradient(params: Float32Array, batch: Batch): Promise<{ loss: number; grad: Float32Array }> {
      live();
      checkParams(params);
      checkBatch(batch);
      const [value, grad] = tf.tidy(() => {
        const x = xTensor(batch.x, 0, batch.size);
        const y = yTensor(batch.y, 0, batch.size);
        const r = tf.valueAndGrad((q: Tensor1D) => meanLoss(q, x, y))(tf.tensor1d(params));
        return [r.value, r.grad];
      }) as [Tensor, Tensor];
      const loss = (await read(value))[0] as number;
      return { loss, grad: await read(grad) };
    },

    async hvp(params: Float32Array, batch: Batch, v: Float32Array): Promise<Float32Array> {
      live();
      checkParams(params);
      checkParams(v, 'v');
      checkBatch(batch);
      const hv = tf.tidy(() => {
        const x = xTensor(batch.x, 0, batch.size);
        const y = yTensor(batch.y, 0, batch.size);
        const vt = tf.tensor1d(v);
        const f = (q: Tensor): Tensor => tf.sum(tf.mul(explicitGradient(q as Tensor1D, x, y), vt));
        return tf.grad(f)(tf.tensor1d(params));
      });
      return read(hv);
    },

    async activations(params: Float32Array, x: Float32Array, n: number): Promise<Map<string, Float32Array>> {
      live();
      checkParams(params);
      checkRows(x, undefined, n);
      const hidden = model.layers.slice(0, -1);
      const result = new Map<string, Float32Array>(
        hidden.map((l) => [l.name, new Float32Array(n * l.outputs)] as const),
      );
      const p = tf.tensor1d(params);
      try {
        for (let from = 0; from < n; from += TFJS_EVAL_CHUNK) {
          const rows = Math.min(TFJS_EVAL_CHUNK, n - from);
          const outs = tf.tidy(() => forward(p, xTensor(x, from, rows)).slice(0, -1));
          for (let i = 0; i < outs.length; i++) {
            const l = hidden[i] as (typeof hidden)[number];
            (result.get(l.name) as Float32Array).set(await read(outs[i] as Tensor), from * l.outputs);
          }
        }
      } finally {
        p.dispose();
      }
      return result;
    },

    async dispose(): Promise<void> {
      disposed = true;
    },
  };
  return engine;
}
