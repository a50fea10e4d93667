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
 *
 * Layer graphs (`model.net`: CNNs and ResNets) run with tfjs's NHWC convolutions and pooling:
 * the flat NCHW input is transposed to NHWC, conv weights [out, in, kh, kw] to [kh, kw, in, out],
 * and what leaves the engine is NCHW again (a flatten before a dense layer and every activation
 * `activations` returns are [n, C·H·W] in NCHW order, as in the ORT engine). Normalization follows
 * the IR's graphs (src/engine/net-graphs.ts): BatchNorm uses batch statistics in train mode
 * (`trainStep`, `gradient`) and the running statistics in eval mode (`evaluate`, `activations`);
 * `trainStep` writes the updated running statistics (momentum update with the unbiased batch
 * variance, as PyTorch) into their buffer slices of the parameters, where the optimizer's update of
 * those entries is discarded. `hvp` is MLP-only (see {@link createTfjsEngine}).
 */
import type * as TF from '@tensorflow/tfjs';
import type { Batch } from '../../data/types.js';
import { countsCorrect, hiddenOutputs, largestActivation, type ModelGraphSpec } from '../../model/graph.js';
import { tensorSlot } from '../../model/layout.js';
import type { Net, NetNode } from '../../model/net.js';
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

/** Layer graphs evaluate in chunks whose largest activation holds at most this many floats. */
const TFJS_NET_CHUNK_FLOATS = 2 ** 23;

/** How a layer graph's normalization layers compute their statistics (as in net-graphs.ts). */
type NormMode = 'train' | 'eval';

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

/** What {@link createTfjsEngine}'s layer-graph forward pass returns. */
interface NetOutputs {
  /** [n, outputDim]. */
  readonly logits: TF.Tensor2D;
  /** Hidden outputs by name ({@link Net.hidden}), each [n, width] (NCHW order for images). */
  readonly hidden: ReadonlyMap<string, TF.Tensor2D>;
  /** Train mode: the updated BatchNorm running statistics, [C] each, with their layout slots. */
  readonly buffers: readonly {
    readonly offset: number;
    readonly size: number;
    readonly value: TF.Tensor1D;
  }[];
}

/**
 * Create the tfjs engine for `model`.
 *
 * `hvp` is exact reverse-over-reverse: tfjs's nested `tf.grad` silently drops the dependence of
 * a gradient on tensors saved from the forward pass (e.g. tanh's output, log-softmax's softmax),
 * giving wrong second derivatives, so the engine writes the gradient out as explicit backprop
 * in tf ops and lets tfjs differentiate ⟨∇L, v⟩ through that (first-order autodiff only). That
 * explicit backprop is written for dense chains only: `hvp` of a layer graph (`model.net`) throws
 * (the ORT engine's exact HVPs of conv nets are checked against finite differences instead).
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
  const net = model.net;
  const chunkRows = net
    ? Math.max(1, Math.min(TFJS_EVAL_CHUNK, Math.floor(TFJS_NET_CHUNK_FLOATS / largestActivation(model))))
    : TFJS_EVAL_CHUNK;
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

  /**
   * The forward pass of the layer graph `net` on x [n, C·H·W] (NCHW rows), with image activations
   * in NHWC (tfjs's convolution layout). Normalization layers use batch statistics in `train` mode
   * (and return BatchNorm's updated running statistics) and BatchNorm's running statistics in
   * `eval` mode.
   */
  function netOutputs(g: Net, p: Tensor1D, x: Tensor2D, mode: NormMode): NetOutputs {
    const n = x.shape[0];
    const [c0, h0, w0] = g.image;
    const slice = (name: string): Tensor1D => {
      const slot = tensorSlot(model.layout, name);
      return p.slice([slot.offset], [slot.size]);
    };
    const values: Tensor[] = [tf.transpose(tf.reshape(x, [n, c0, h0, w0]), [0, 2, 3, 1])];
    const buffers: { offset: number; size: number; value: Tensor1D }[] = [];
    const value = (id: number): Tensor => values[id] as Tensor;
    /** NHWC [n, H, W, C] → [n, C·H·W] in NCHW order; flat values stay as they are. */
    const nchwRows = (t: Tensor): Tensor2D =>
      t.rank === 4 ? tf.reshape(tf.transpose(t, [0, 3, 1, 2]), [n, -1]) : (t as Tensor2D);

    const layer = (node: Exclude<NetNode, { op: 'input' }>): Tensor => {
      switch (node.op) {
        case 'conv': {
          const { kernel: k, inChannels: i, outChannels: o, pad: q, stride: s } = node;
          const w = tf.transpose(tf.reshape(slice(`${node.name}.weight`), [o, i, k, k]), [2, 3, 1, 0]);
          const pad =
            q === 0
              ? 'valid'
              : ([
                  [0, 0],
                  [q, q],
                  [q, q],
                  [0, 0],
                ] as [[number, number], [number, number], [number, number], [number, number]]);
          const y = tf.conv2d(value(node.input) as TF.Tensor4D, w as TF.Tensor4D, s, pad);
          return node.bias ? tf.add(y, slice(`${node.name}.bias`)) : y;
        }
        case 'norm':
          return norm(node);
        case 'relu':
          return tf.relu(value(node.input));
        case 'pool': {
          const v = value(node.input) as TF.Tensor4D;
          const s = node.size;
          // 'valid' drops trailing rows and columns that do not fill a window, as PyTorch does.
          return node.kind === 'max' ? tf.maxPool(v, s, s, 'valid') : tf.avgPool(v, s, s, 'valid');
        }
        case 'gap':
          return tf.mean(value(node.input), [1, 2]);
        case 'flatten':
          return nchwRows(value(node.input));
        case 'dense': {
          const w = tf.reshape(slice(`${node.name}.weight`), [node.outputs, node.inputs]) as Tensor2D;
          const y = tf.matMul(value(node.input) as Tensor2D, w, false, true);
          return node.bias ? tf.add(y, slice(`${node.name}.bias`)) : y;
        }
        case 'add':
          return tf.add(value(node.inputs[0]), value(node.inputs[1]));
      }
    };

    const norm = (node: Extract<NetNode, { op: 'norm' }>): Tensor => {
      const v = value(node.input) as TF.Tensor4D;
      const scale = slice(`${node.name}.weight`);
      const shift = slice(`${node.name}.bias`);
      const [b, h, w, c] = v.shape;
      const affine = (normalized: Tensor) => tf.add(tf.mul(normalized, scale), shift);
      if (node.kind !== 'batch') {
        const grouped = tf.reshape(v, [b, h, w, node.groups, c / node.groups]);
        const mean = tf.mean(grouped, [1, 2, 4], true);
        const centered = tf.sub(grouped, mean);
        const variance = tf.mean(tf.square(centered), [1, 2, 4], true);
        return affine(tf.reshape(tf.div(centered, tf.sqrt(tf.add(variance, node.eps))), [b, h, w, c]));
      }
      const meanName = `${node.name}.running_mean`;
      const varName = `${node.name}.running_var`;
      if (mode === 'eval') {
        const centered = tf.sub(v, slice(meanName));
        return affine(tf.div(centered, tf.sqrt(tf.add(slice(varName), node.eps))));
      }
      const mean = tf.mean(v, [0, 1, 2]) as Tensor1D;
      const centered = tf.sub(v, mean);
      const variance = tf.mean(tf.square(centered), [0, 1, 2]) as Tensor1D;
      // PyTorch's running statistics: momentum k, the unbiased batch variance.
      const m = b * h * w;
      const k = node.momentum;
      const unbiased = m > 1 ? m / (m - 1) : 1;
      for (const [name, stat, factor] of [
        [meanName, mean, k],
        [varName, variance, unbiased * k],
      ] as const) {
        const slot = tensorSlot(model.layout, name);
        const next = tf.add(tf.mul(slice(name), 1 - k), tf.mul(stat, factor)) as Tensor1D;
        buffers.push({ offset: slot.offset, size: slot.size, value: next });
      }
      return affine(tf.div(centered, tf.sqrt(tf.add(variance, node.eps))));
    };

    for (const node of g.nodes) {
      if (node.op !== 'input') values[node.id] = layer(node);
    }
    const hidden = new Map(g.hidden.map((h) => [h.name, nchwRows(value(h.node))] as const));
    return { logits: value(g.output) as Tensor2D, hidden, buffers };
  }

  /** The model's output [n, outputDim]: the dense chain, or the layer graph in `mode`. */
  const logitsOf = (p: Tensor1D, x: Tensor2D, mode: NormMode): Tensor2D =>
    net ? netOutputs(net, p, x, mode).logits : (forward(p, x).at(-1) as Tensor2D);

  /** Per-row loss [n]: −Σ y·log_softmax(z) or ½ Σ (z − y)². */
  function rowLoss(z: Tensor2D, y: Tensor2D): Tensor1D {
    if (model.loss === 'cross-entropy') return tf.neg(tf.sum<Tensor1D>(tf.mul(y, tf.logSoftmax(z)), 1));
    return tf.mul(0.5, tf.sum<Tensor1D>(tf.square(tf.sub(z, y)), 1));
  }

  /** The mean loss on a batch (a layer graph's normalization layers in train mode). */
  const meanLoss = (p: Tensor1D, x: Tensor2D, y: Tensor2D): TF.Scalar =>
    tf.mean(rowLoss(logitsOf(p, x, 'train'), y));

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

  /**
   * `params` with each buffer slice replaced by its new value: BatchNorm's running statistics are
   * state, not parameters, so the optimizer's update of those entries (from a zero gradient) is
   * discarded, as in the ORT engine's train step.
   */
  function withBuffers(params: Tensor1D, buffers: NetOutputs['buffers']): Tensor1D {
    if (buffers.length === 0) return params;
    const pieces: Tensor1D[] = [];
    let start = 0;
    for (const b of [...buffers].sort((a, c) => a.offset - c.offset)) {
      if (b.offset > start) pieces.push(params.slice([start], [b.offset - start]));
      pieces.push(b.value);
      start = b.offset + b.size;
    }
    if (start < P) pieces.push(params.slice([start], [P - start]));
    return tf.concat(pieces);
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
        // A layer graph's updated BatchNorm running statistics, kept out of valueAndGrad's scope.
        let buffers: NetOutputs['buffers'] = [];
        const loss = (q: Tensor1D): TF.Scalar => {
          if (!net) return meanLoss(q, x, y);
          const f = netOutputs(net, q, x, 'train');
          buffers = f.buffers.map((b) => ({ ...b, value: tf.keep(b.value) }));
          return tf.mean(rowLoss(f.logits, y));
        };
        try {
          const { value, grad } = tf.valueAndGrad(loss)(p);
          const slots = state.opt.slots.map((s) => tf.tensor1d(s));
          const next = update(opt, p, grad as Tensor1D, slots, step, lr);
          return [value, withBuffers(next.params, buffers), ...next.slots] as Tensor[];
        } finally {
          for (const b of buffers) b.value.dispose();
        }
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
        for (let from = 0; from < n; from += chunkRows) {
          const rows = Math.min(chunkRows, n - from);
          const [loss, hits] = tf.tidy(() => {
            const yt = yTensor(y, from, rows);
            const z = logitsOf(p, xTensor(x, from, rows), 'eval');
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
      if (net) {
        throw new Error(
          'tfjs engine: Hessian-vector products of conv nets (CNN, ResNet) are not implemented; use the ort engine',
        );
      }
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
      const hidden = hiddenOutputs(model);
      const result = new Map<string, Float32Array>(
        hidden.map((h) => [h.name, new Float32Array(n * h.width)] as const),
      );
      if (hidden.length === 0) return result;
      const p = tf.tensor1d(params);
      try {
        for (let from = 0; from < n; from += chunkRows) {
          const rows = Math.min(chunkRows, n - from);
          const outs = tf.tidy(() => {
            const xs = xTensor(x, from, rows);
            if (!net) return forward(p, xs).slice(0, -1);
            const acts = netOutputs(net, p, xs, 'eval').hidden;
            return hidden.map((h) => acts.get(h.name) as Tensor2D);
          });
          for (let i = 0; i < outs.length; i++) {
            const h = hidden[i] as (typeof hidden)[number];
            (result.get(h.name) as Float32Array).set(await read(outs[i] as Tensor), from * h.width);
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
