/**
 * The IR graphs of the engine's jobs, built from a {@link ModelGraphSpec}: forward pass, loss,
 * train step (forward, backward and optimizer update), evaluation, gradient, Hessian-vector
 * product and hidden activations. All take the flat parameter vector `theta` as an input.
 *
 * Shapes are static: a graph is built for one batch size (engines cache one per size).
 */

import { countsCorrect, type ModelGraphSpec } from '../model/graph.js';
import { gradients } from './ir/autodiff.js';
import { Graph, type Tensor } from './ir/graph.js';
import { type NetForward, type NormMode, netForward } from './net-graphs.js';
import type { ResolvedOptimizer } from './types.js';

/** A graph and its named outputs, ready for {@link emitOnnx}. */
export interface JobGraph {
  readonly graph: Graph;
  readonly outputs: Readonly<Record<string, Tensor>>;
}

interface Leaves {
  readonly theta: Tensor;
  /** One tensor per layout slot, in layout order, shaped as the slot. */
  readonly tensors: Tensor[];
}

/** Slice the flat input `name` into the layout's tensors. */
function flatLeaves(g: Graph, model: ModelGraphSpec, name: string): Leaves {
  const theta = g.input(name, [model.layout.size]);
  const tensors = model.layout.tensors.map((slot) =>
    g.reshape(g.slice(theta, slot.offset, slot.offset + slot.size), slot.shape),
  );
  return { theta, tensors };
}

/** Flatten per-tensor values (gradients) back into one vector in layout order. */
function flatten(g: Graph, tensors: readonly Tensor[]): Tensor {
  const flat = tensors.map((t) => g.reshape(t, [t.node.shape.reduce((a, b) => a * b, 1)]));
  return flat.length === 1 ? (flat[0] as Tensor) : g.concat(flat);
}

interface Forward {
  /** [batch, outputDim]. */
  readonly logits: Tensor;
  /** Hidden outputs by layer name, each [batch, width] (a conv layer's width is C·H·W, NCHW order). */
  readonly hidden: ReadonlyMap<string, Tensor>;
  /** A layer graph's forward pass (absent for dense chains). */
  readonly net?: NetForward;
}

/**
 * Logits and post-activation hidden outputs of the model: the dense chain, or the layer graph with
 * its normalization layers in `mode` (a dense chain has none).
 */
function forward(g: Graph, model: ModelGraphSpec, leaves: Leaves, x: Tensor, mode: NormMode): Forward {
  if (model.net) {
    const leaf = (k: number) => {
      const t = leaves.tensors[k] as Tensor;
      return g.reshape(t, [1, ...t.node.shape]);
    };
    const net = netForward(g, model.net, model.layout, leaf, x, 1, mode);
    const batch = x.node.shape[0] as number;
    const flat = (t: Tensor) => g.reshape(t, [batch, t.node.shape.reduce((a, b) => a * b, 1) / batch]);
    const hidden = new Map([...net.hidden].map(([name, t]) => [name, flat(t)]));
    return { logits: g.reshape(net.logits, [batch, model.outputDim]), hidden, net };
  }
  let h = x;
  let k = 0;
  const hidden = new Map<string, Tensor>();
  model.layers.forEach((layer, i) => {
    const w = leaves.tensors[k++] as Tensor;
    let z = g.gemm(h, w, false, true);
    if (layer.bias) z = g.add(z, leaves.tensors[k++] as Tensor);
    if (layer.activation === 'relu') h = g.relu(z);
    else if (layer.activation === 'tanh') h = g.tanh(z);
    else h = z;
    if (i < model.layers.length - 1) hidden.set(layer.name, h);
  });
  return { logits: h, hidden };
}

/**
 * `theta_new` with BatchNorm's running statistics (layout buffers) replaced by their train-mode
 * update: the optimizer leaves buffers alone (their rows of the update are discarded).
 * `runs` absent: theta is [P]; else [runs, P].
 */
function withBuffers(
  g: Graph,
  model: ModelGraphSpec,
  thetaNew: Tensor,
  buffers: ReadonlyMap<number, Tensor>,
  runs?: number,
): Tensor {
  if (buffers.size === 0) return thetaNew;
  const axis = runs === undefined ? 0 : 1;
  const pieces: Tensor[] = [];
  let start = 0;
  const flush = (end: number) => {
    if (end > start) pieces.push(g.slice(thetaNew, start, end, axis));
  };
  model.layout.tensors.forEach((slot, k) => {
    const b = buffers.get(k);
    if (!b) return;
    flush(slot.offset);
    pieces.push(g.reshape(b, runs === undefined ? [slot.size] : [runs, slot.size]));
    start = slot.offset + slot.size;
  });
  flush(model.layout.size);
  return g.concat(pieces, axis);
}

/** Per-example losses summed over the batch (a scalar). */
function summedLoss(g: Graph, model: ModelGraphSpec, logits: Tensor, y: Tensor): Tensor {
  if (model.loss === 'mse') {
    const r = g.sub(logits, y);
    return g.mul(g.reduceSum(g.mul(r, r)), 0.5);
  }
  return g.neg(g.reduceSum(g.mul(y, g.logSoftmax(logits))));
}

interface LossParts {
  readonly g: Graph;
  readonly leaves: Leaves;
  readonly x: Tensor;
  readonly y: Tensor;
  readonly logits: Tensor;
  readonly net?: NetForward;
  readonly sum: Tensor;
  readonly mean: Tensor;
}

/**
 * The loss on one batch. Normalization layers use batch statistics in `train` mode (training, and
 * the gradients and Hessian-vector products of the training loss) and BatchNorm's running
 * statistics in `eval` mode (evaluation).
 */
function lossGraph(model: ModelGraphSpec, batch: number, mode: NormMode): LossParts {
  const g = new Graph();
  const leaves = flatLeaves(g, model, 'theta');
  const x = g.input('x', [batch, model.inputDim]);
  const y = g.input('y', [batch, model.outputDim]);
  const { logits, net } = forward(g, model, leaves, x, mode);
  const sum = summedLoss(g, model, logits, y);
  return { g, leaves, x, y, logits, sum, mean: g.div(sum, batch), ...(net ? { net } : {}) };
}

/** Names of the optimizer-state inputs/outputs of the train-step graph, in slot order. */
export function slotNames(opt: ResolvedOptimizer): string[] {
  if (opt.kind === 'sgd') return opt.momentum > 0 ? ['momentum'] : [];
  return ['expAvg', 'expAvgSq'];
}

/**
 * Scalar inputs of the train-step graph besides the learning rate, computed on the host in
 * float64 exactly as PyTorch computes them in Python before casting to the parameter type.
 */
export function stepScalars(opt: ResolvedOptimizer, lr: number, step: number): Record<string, number> {
  if (opt.kind === 'sgd') {
    // torch.optim.SGD starts the momentum buffer as a clone of the first update (no dampening).
    return opt.momentum > 0 ? { lr, keep: step === 0 ? 1 : 1 - opt.dampening } : { lr };
  }
  const t = step + 1;
  const scalars: Record<string, number> = {
    stepSize: lr / (1 - opt.beta1 ** t),
    bc2Sqrt: Math.sqrt(1 - opt.beta2 ** t),
  };
  if (opt.kind === 'adamw') scalars.decay = 1 - lr * opt.weightDecay;
  return scalars;
}

/**
 * One optimizer step. Inputs: theta, x, y, the slots ({@link slotNames}) and the step scalars
 * ({@link stepScalars}). Outputs: loss (before the update), theta_new and `<slot>_new`.
 * The update follows torch.optim's single-tensor code path operation by operation (plain SGD:
 * see {@link scaledByLr}).
 */
export function trainStepGraph(model: ModelGraphSpec, opt: ResolvedOptimizer, batch: number): JobGraph {
  const { g, leaves, mean, logits, net } = lossGraph(model, batch, 'train');
  const scaled = scaledByLr(opt);
  const outputs: Record<string, Tensor> = { loss: mean };
  const d = flatten(
    g,
    scaled ? lrGradients(g, mean, logits, leaves.tensors) : gradients(mean, leaves.tensors),
  );
  optimizerUpdate(g, opt, leaves.theta, d, outputs, scaled);
  if (net) outputs.theta_new = withBuffers(g, model, outputs.theta_new as Tensor, net.buffers);
  return { graph: g, outputs };
}

/**
 * Whether the train-step graphs differentiate lr · loss instead of the loss (the backward pass
 * then yields lr · ∇ directly): plain SGD (no momentum, no weight decay), whose update
 * θ − lr · ∇ then takes one element-wise pass over the flat vector instead of two. The product with
 * lr moves from the end of the backward pass to its start (∂loss/∂logits, [batch, out]), which
 * changes float rounding only (about one ulp of each update).
 */
function scaledByLr(opt: ResolvedOptimizer): boolean {
  return opt.kind === 'sgd' && opt.momentum === 0 && !opt.weightDecay;
}

/**
 * lr · ∂loss/∂wrt for the `lr` input (declared here), with lr applied once to ∂loss/∂logits: the
 * loss depends on the parameters through the logits only, so the backward pass runs from the
 * logits seeded with lr · ∂loss/∂logits (the loss head's backward has constant seeds, which
 * onnxruntime folds).
 */
function lrGradients(g: Graph, loss: Tensor, logits: Tensor, wrt: readonly Tensor[]): Tensor[] {
  const [dLogits] = gradients(loss, [logits]) as [Tensor];
  return gradients(logits, wrt, g.mul(dLogits, g.input('lr', [])));
}

/**
 * The element-wise optimizer update of `theta` given its gradient `d` (same shape, any shape).
 * Declares the slot inputs ({@link slotNames}, shaped like theta) and the scalar step inputs
 * ({@link stepScalars}), and adds `theta_new` and `<slot>_new` to `outputs`. The update follows
 * torch.optim's single-tensor code path operation by operation, except that with `lrScaled`
 * (plain SGD, {@link scaledByLr}) `grad` is already lr · ∇ (the graph declared the `lr` input).
 */
function optimizerUpdate(
  g: Graph,
  opt: ResolvedOptimizer,
  theta: Tensor,
  grad: Tensor,
  outputs: Record<string, Tensor>,
  lrScaled = false,
): void {
  let d = grad;
  const P = theta.node.shape;
  const scalar = (name: string) => g.input(name, []);
  if (lrScaled) {
    outputs.theta_new = g.sub(theta, d);
    return;
  }
  if (opt.kind === 'sgd') {
    const lr = scalar('lr');
    if (opt.weightDecay) d = g.add(d, g.mul(theta, opt.weightDecay));
    if (opt.momentum > 0) {
      const buf = g.add(g.mul(g.input('momentum', P), opt.momentum), g.mul(d, scalar('keep')));
      outputs.momentum_new = buf;
      d = opt.nesterov ? g.add(d, g.mul(buf, opt.momentum)) : buf;
    }
    outputs.theta_new = g.sub(theta, g.mul(d, lr));
    return;
  }
  let p = theta;
  if (opt.kind === 'adamw') p = g.mul(p, scalar('decay'));
  else if (opt.weightDecay) d = g.add(d, g.mul(theta, opt.weightDecay));
  const m = g.add(g.mul(g.input('expAvg', P), opt.beta1), g.mul(d, 1 - opt.beta1));
  const v = g.add(g.mul(g.input('expAvgSq', P), opt.beta2), g.mul(g.mul(d, d), 1 - opt.beta2));
  const denom = g.add(g.div(g.sqrt(v), scalar('bc2Sqrt')), opt.eps);
  outputs.theta_new = g.sub(p, g.mul(g.div(m, denom), scalar('stepSize')));
  outputs.expAvg_new = m;
  outputs.expAvgSq_new = v;
}

/**
 * One optimizer step of `runs` independent copies ("lock-step twins") of the model on one shared
 * batch, in one graph with batched weights.
 *
 * Inputs: `theta` [runs, P] (row r is run r's flat parameter vector in layout order), `x`
 * [batch, inputDim] and `y` [batch, outputDim] (shared by all runs), the slots ({@link slotNames})
 * shaped [runs, P] like theta, and the scalar step inputs ({@link stepScalars}), which are common to
 * all runs (same step count, same learning rate). Outputs: `loss` [runs] (each run's batch-mean
 * loss before the update), `theta_new` and `<slot>_new`, each [runs, P].
 *
 * Run r's weight of a layer is theta[r, slot] reshaped to [runs, out, in] and multiplied with a
 * broadcasting MatMul ([batch, in] · [runs, in, out] → [runs, batch, out] for the first layer);
 * biases are [runs, 1, out]. Differentiating the sum of the runs' mean losses gives every run its
 * own gradient, and the update is {@link trainStepGraph}'s element-wise update, so run r's result
 * equals a single-run step up to the summation order of the matrix products.
 */
export function lockstepTrainStepGraph(
  model: ModelGraphSpec,
  opt: ResolvedOptimizer,
  batch: number,
  runs: number,
): JobGraph {
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
  const g = new Graph();
  const P = model.layout.size;
  const theta = g.input('theta', [runs, P]);
  const leaves = model.layout.tensors.map((slot) => {
    const rows = g.slice(theta, slot.offset, slot.offset + slot.size, 1);
    // A bias [out] becomes [runs, 1, out] so it broadcasts over the batch axis.
    const shape = slot.shape.length === 1 ? [runs, 1, ...slot.shape] : [runs, ...slot.shape];
    return g.reshape(rows, shape);
  });
  const x = g.input('x', [batch, model.inputDim]);
  const y = g.input('y', [batch, model.outputDim]);
  let h = x;
  let k = 0;
  let buffers: ReadonlyMap<number, Tensor> = new Map();
  if (model.net) {
    const shaped = (i: number) =>
      g.reshape(leaves[i] as Tensor, [runs, ...(model.layout.tensors[i]?.shape ?? [])]);
    const net = netForward(g, model.net, model.layout, shaped, x, runs, 'train');
    h = net.logits;
    buffers = net.buffers;
  } else {
    for (const layer of model.layers) {
      const w = leaves[k++] as Tensor;
      let z = g.matmul(h, g.transpose(w, [0, 2, 1]));
      if (layer.bias) z = g.add(z, leaves[k++] as Tensor);
      if (layer.activation === 'relu') h = g.relu(z);
      else if (layer.activation === 'tanh') h = g.tanh(z);
      else h = z;
    }
  }
  // Per-run summed loss over [batch, out], as summedLoss does for one run.
  let sum: Tensor;
  if (model.loss === 'mse') {
    const r = g.sub(h, y);
    sum = g.mul(g.reduceSum(g.mul(r, r), [1, 2]), 0.5);
  } else {
    sum = g.neg(g.reduceSum(g.mul(y, g.logSoftmax(h)), [1, 2]));
  }
  const mean = g.div(sum, batch);
  const scaled = scaledByLr(opt);
  const total = g.reduceSum(mean);
  const grads = scaled ? lrGradients(g, total, h, leaves) : gradients(total, leaves);
  const flat = grads.map((t) => g.reshape(t, [runs, t.node.shape.slice(1).reduce((a, b) => a * b, 1)]));
  const d = flat.length === 1 ? (flat[0] as Tensor) : g.concat(flat, 1);
  const outputs: Record<string, Tensor> = { loss: mean };
  optimizerUpdate(g, opt, theta, d, outputs, scaled);
  outputs.theta_new = withBuffers(g, model, outputs.theta_new as Tensor, buffers, runs);
  return { graph: g, outputs };
}

/**
 * Summed loss and, for models with two or more outputs (either loss), the number of examples whose
 * argmax output equals the argmax target: a classifier's correct predictions, also when it is
 * trained with squared error on one-hot targets.
 */
export function evalGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const { g, sum, logits, y } = lossGraph(model, batch, 'eval');
  const outputs: Record<string, Tensor> = { lossSum: sum };
  if (countsCorrect(model)) {
    outputs.correct = g.reduceSum(g.toFloat(g.equal(g.argMax(logits, 1), g.argMax(y, 1))));
  }
  return { graph: g, outputs };
}

/**
 * Loss sums and correct counts of `points` weight vectors on one batch of `batch` examples, in one
 * graph (`Engine.evaluateMany`). Row-major throughout, as {@link lockstepTrainStepGraph}: point b's
 * layer is [batch, in] · [in, out] as a broadcasting MatMul over a leading point axis
 * ([points, batch, out]); biases are [points, 1, out].
 *
 * - `vectors` absent (the **points** form): input `theta` [points, P], row b point b's flat vector.
 *   Each point's arithmetic is {@link evalGraph}'s, operation for operation: the batched MatMul
 *   runs the same MLAS kernel with the same inner dimension per point, and each point's loss terms
 *   are sliced into their own [batch, outputDim] tensor before the same full ReduceSum (a reduction
 *   over one axis of [points, batch · out] sums misaligned rows in another order). With the same
 *   batch (rows per call) as evaluate, results are bit-identical to it (tested).
 * - `vectors` = K (the **combination** form): inputs `vectors` [K, P] and `coef` [points, K]; point
 *   b is Σ_k coef[b, k] · vectors[k]. The first layer is linear in its weights, so it runs as one
 *   Gemm of x with the K stacked first-layer weights ([batch, in] · [in, K · out], biases added),
 *   then mixed per point ([points, K] · [K, batch · out]); every other tensor is mixed in float32
 *   ([points, K] · [K, size]). For K ≪ points this removes most of the first layer's cost; results
 *   equal the points form within float32 rounding.
 *
 * Inputs also `x` [batch, inputDim], `y` [batch, outputDim]. Outputs: `lossSum` [points] (each
 * point's summed loss, as evalGraph's), and (as evalGraph) `correct` [points].
 */
export function evalManyGraph(
  model: ModelGraphSpec,
  batch: number,
  points: number,
  vectors?: number,
): JobGraph {
  if (!Number.isInteger(points) || points < 1) {
    throw new Error(`points must be a positive integer, got ${points}`);
  }
  if (vectors !== undefined && (!Number.isInteger(vectors) || vectors < 1)) {
    throw new Error(`vectors must be a positive integer, got ${vectors}`);
  }
  if (model.net)
    throw new Error('evalManyGraph: dense chains only (a layer graph is evaluated point by point)');
  const g = new Graph();
  const P = model.layout.size;
  const B = points;
  const shaped = (t: Tensor, shape: readonly number[]) =>
    g.reshape(t, shape.length === 1 ? [B, 1, ...shape] : [B, ...shape]);
  let leaf: (k: number) => Tensor;
  let firstLayer: ((x: Tensor) => Tensor) | undefined;
  if (vectors === undefined) {
    const theta = g.input('theta', [B, P]);
    leaf = (k) => {
      const slot = model.layout.tensors[k] as (typeof model.layout.tensors)[number];
      return shaped(g.slice(theta, slot.offset, slot.offset + slot.size, 1), slot.shape);
    };
  } else {
    const K = vectors;
    const vecs = g.input('vectors', [K, P]);
    const coef = g.input('coef', [B, K]);
    const part = (k: number) => {
      const slot = model.layout.tensors[k] as (typeof model.layout.tensors)[number];
      return { slot, rows: g.slice(vecs, slot.offset, slot.offset + slot.size, 1) };
    };
    leaf = (k) => {
      const { slot, rows } = part(k);
      return shaped(g.gemm(coef, rows), slot.shape);
    };
    firstLayer = (x) => {
      const layer = model.layers[0] as (typeof model.layers)[number];
      const out = layer.outputs;
      const w = part(0);
      let zk = g.gemm(x, g.reshape(w.rows, [K * out, layer.inputs]), false, true);
      if (layer.bias) zk = g.add(zk, g.reshape(part(1).rows, [K * out]));
      const byVector = g.reshape(g.transpose(g.reshape(zk, [batch, K, out]), [1, 0, 2]), [K, batch * out]);
      return g.reshape(g.gemm(coef, byVector), [B, batch, out]);
    };
  }
  const x = g.input('x', [batch, model.inputDim]);
  const y = g.input('y', [batch, model.outputDim]);
  let h = x;
  let k = 0;
  model.layers.forEach((layer, i) => {
    let z: Tensor;
    if (i === 0 && firstLayer) {
      z = firstLayer(x);
      k += layer.bias ? 2 : 1;
    } else {
      z = g.matmul(h, g.transpose(leaf(k++), [0, 2, 1]));
      if (layer.bias) z = g.add(z, leaf(k++));
    }
    if (layer.activation === 'relu') h = g.relu(z);
    else if (layer.activation === 'tanh') h = g.tanh(z);
    else h = z;
  });
  let terms: Tensor;
  if (model.loss === 'mse') {
    const r = g.sub(h, y);
    terms = g.mul(r, r);
  } else {
    terms = g.mul(y, g.logSoftmax(h));
  }
  let sum: Tensor;
  if (vectors === undefined) {
    // Per point, the same full ReduceSum of a [batch, out] tensor of its own as evalGraph's.
    const sums = Array.from({ length: B }, (_, b) =>
      g.reshape(g.reduceSum(g.reshape(g.slice(terms, b, b + 1, 0), [batch, model.outputDim])), [1]),
    );
    sum = B === 1 ? (sums[0] as Tensor) : g.concat(sums);
  } else {
    sum = g.reduceSum(terms, [1, 2]);
  }
  const outputs: Record<string, Tensor> = {
    lossSum: model.loss === 'mse' ? g.mul(sum, 0.5) : g.neg(sum),
  };
  if (countsCorrect(model)) {
    outputs.correct = g.reduceSum(g.toFloat(g.equal(g.argMax(h, 2), g.argMax(y, 1))), [1]);
  }
  return { graph: g, outputs };
}

/**
 * Each BatchNorm layer's batch mean and biased batch variance (train-mode statistics) on one batch,
 * as outputs `<layer>.mean` and `<layer>.var` [C] (for recomputing running statistics on data).
 */
export function normStatsGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const g = new Graph();
  const leaves = flatLeaves(g, model, 'theta');
  const x = g.input('x', [batch, model.inputDim]);
  const { net } = forward(g, model, leaves, x, 'train');
  const outputs: Record<string, Tensor> = {};
  for (const [name, stats] of net?.batchStats ?? []) {
    const c = stats.mean.node.shape[1] as number;
    outputs[`${name}.mean`] = g.reshape(stats.mean, [c]);
    outputs[`${name}.var`] = g.reshape(stats.variance, [c]);
  }
  return { graph: g, outputs };
}

/** Mean loss and its gradient as a flat vector. */
export function gradientGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const { g, leaves, mean } = lossGraph(model, batch, 'train');
  return { graph: g, outputs: { loss: mean, grad: flatten(g, gradients(mean, leaves.tensors)) } };
}

/** Exact Hessian-vector product: the gradient of ⟨∇L(θ), v⟩ (reverse over reverse). */
export function hvpGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const { g, leaves, mean } = lossGraph(model, batch, 'train');
  const grads = gradients(mean, leaves.tensors);
  const v = flatLeaves(g, model, 'v');
  const inner = grads
    .map((gk, k) => g.reduceSum(g.mul(gk, v.tensors[k] as Tensor)))
    .reduce((a, b) => g.add(a, b));
  return { graph: g, outputs: { hv: flatten(g, gradients(inner, leaves.tensors)) } };
}

/** Post-activation outputs of every hidden layer, named after the layer. */
export function activationsGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const g = new Graph();
  const leaves = flatLeaves(g, model, 'theta');
  const x = g.input('x', [batch, model.inputDim]);
  const { hidden } = forward(g, model, leaves, x, 'eval');
  return { graph: g, outputs: Object.fromEntries(hidden) };
}

/**
 * Model outputs of one forward pass on [batch, inputDim] inputs (the same pass as the other jobs):
 * - `kind` 'probs': the softmax `probs` [batch, outputDim] of a cross-entropy model,
 *   exp(logSoftmax(logits)) (each row sums to 1 within rounding);
 * - `kind` 'raw': the raw outputs `outputs` [batch, outputDim] — logits of a classifier, the
 *   predictions (Gaussian means) of an mse model.
 * @throws for 'probs' of an mse model (its outputs are not class scores).
 */
export function outputsGraph(model: ModelGraphSpec, batch: number, kind: 'probs' | 'raw'): JobGraph {
  if (kind === 'probs' && model.loss !== 'cross-entropy') {
    throw new Error(`probabilities need a cross-entropy model, got loss '${model.loss}'`);
  }
  const g = new Graph();
  const leaves = flatLeaves(g, model, 'theta');
  const x = g.input('x', [batch, model.inputDim]);
  const { logits } = forward(g, model, leaves, x, 'eval');
  return {
    graph: g,
    outputs: kind === 'probs' ? { probs: g.exp(g.logSoftmax(logits)) } : { outputs: logits },
  };
}
