/**
 * The IR graphs of the engine's jobs, built from a {@link ModelGraphSpec}: forward pass, loss,
 * train step (forward, backward and optimizer update), evaluation, gradient, Hessian-vector
 * product and hidden activations. All take the flat parameter vector `theta` as an input.
 *
 * Shapes are static: a graph is built for one batch size (engines cache one per size).
 */
import { gradients } from './ir/autodiff.js';
import { Graph, type Tensor } from './ir/graph.js';
import type { ModelGraphSpec, ResolvedOptimizer } from './types.js';

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

/** Logits and post-activation hidden outputs of the dense chain. */
function forward(g: Graph, model: ModelGraphSpec, leaves: Leaves, x: Tensor) {
  let h = x;
  let k = 0;
  const hidden: Tensor[] = [];
  model.layers.forEach((layer, i) => {
    const w = leaves.tensors[k++] as Tensor;
    let z = g.gemm(h, w, false, true);
    if (layer.bias) z = g.add(z, leaves.tensors[k++] as Tensor);
    if (layer.activation === 'relu') h = g.relu(z);
    else if (layer.activation === 'tanh') h = g.tanh(z);
    else h = z;
    if (i < model.layers.length - 1) hidden.push(h);
  });
  return { logits: h, hidden };
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
  readonly hidden: Tensor[];
  readonly sum: Tensor;
  readonly mean: Tensor;
}

function lossGraph(model: ModelGraphSpec, batch: number): LossParts {
  const g = new Graph();
  const leaves = flatLeaves(g, model, 'theta');
  const x = g.input('x', [batch, model.inputDim]);
  const y = g.input('y', [batch, model.outputDim]);
  const { logits, hidden } = forward(g, model, leaves, x);
  const sum = summedLoss(g, model, logits, y);
  return { g, leaves, x, y, logits, hidden, sum, mean: g.div(sum, batch) };
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
 * The update follows torch.optim's single-tensor code path operation by operation.
 */
export function trainStepGraph(model: ModelGraphSpec, opt: ResolvedOptimizer, batch: number): JobGraph {
  const { g, leaves, mean } = lossGraph(model, batch);
  const theta = leaves.theta;
  let d = flatten(g, gradients(mean, leaves.tensors));
  const P = [model.layout.size];
  const scalar = (name: string) => g.input(name, []);
  const outputs: Record<string, Tensor> = { loss: mean };
  if (opt.kind === 'sgd') {
    const lr = scalar('lr');
    if (opt.weightDecay) d = g.add(d, g.mul(theta, opt.weightDecay));
    if (opt.momentum > 0) {
      const buf = g.add(g.mul(g.input('momentum', P), opt.momentum), g.mul(d, scalar('keep')));
      outputs.momentum_new = buf;
      d = opt.nesterov ? g.add(d, g.mul(buf, opt.momentum)) : buf;
    }
    outputs.theta_new = g.sub(theta, g.mul(d, lr));
    return { graph: g, outputs };
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
  return { graph: g, outputs };
}

/** Summed loss and (for cross-entropy) the number of correct argmax predictions. */
export function evalGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const { g, sum, logits, y } = lossGraph(model, batch);
  const outputs: Record<string, Tensor> = { lossSum: sum };
  if (model.loss === 'cross-entropy') {
    outputs.correct = g.reduceSum(g.toFloat(g.equal(g.argMax(logits, 1), g.argMax(y, 1))));
  }
  return { graph: g, outputs };
}

/** Mean loss and its gradient as a flat vector. */
export function gradientGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const { g, leaves, mean } = lossGraph(model, batch);
  return { graph: g, outputs: { loss: mean, grad: flatten(g, gradients(mean, leaves.tensors)) } };
}

/** Exact Hessian-vector product: the gradient of ⟨∇L(θ), v⟩ (reverse over reverse). */
export function hvpGraph(model: ModelGraphSpec, batch: number): JobGraph {
  const { g, leaves, mean } = lossGraph(model, batch);
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
  const { hidden } = forward(g, model, leaves, x);
  const outputs: Record<string, Tensor> = {};
  hidden.forEach((h, i) => {
    outputs[(model.layers[i] as { name: string }).name] = h;
  });
  return { graph: g, outputs };
}
