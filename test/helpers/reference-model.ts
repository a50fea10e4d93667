/**
 * A plain-JS float64 reference of the model, its loss and PyTorch's optimizer updates, for checking
 * engines (which compute in float32) against. Everything here is written for clarity, not speed.
 */

import type { Batch } from '../../src/data/types.js';
import { type OptimizerSpec, resolveOptimizer } from '../../src/engine/types.js';
import type { ModelGraphSpec } from '../../src/model/graph.js';
import { tensorSlot } from '../../src/model/layout.js';
import type { Activation } from '../../src/model/spec.js';

type Params = Float64Array | Float32Array;

/** Optimizer state in float64: the step count and flat slot vectors, as in {@link OptimizerState}. */
export interface ReferenceOptimizerState {
  step: number;
  slots: Float64Array[];
}

/** Deterministic PRNG for tests (mulberry32): returns a function giving uniforms in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Float32Array of `n` uniforms in [lo, hi) from `rand`. */
export function uniformArray(rand: () => number, n: number, lo = -1, hi = 1): Float32Array {
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());
}

/** A random batch for `model`: uniform inputs; one-hot targets for cross-entropy, uniform for mse. */
export function randomBatch(model: ModelGraphSpec, size: number, rand: () => number): Batch {
  const x = uniformArray(rand, size * model.inputDim);
  let y: Float32Array;
  if (model.loss === 'cross-entropy') {
    y = new Float32Array(size * model.outputDim);
    for (let i = 0; i < size; i++) y[i * model.outputDim + Math.floor(rand() * model.outputDim)] = 1;
  } else {
    y = uniformArray(rand, size * model.outputDim);
  }
  return { x, y, size };
}

function act(a: Activation, z: number): number {
  if (a === 'relu') return Math.max(z, 0);
  if (a === 'tanh') return Math.tanh(z);
  return z;
}

/**
 * Float64 forward pass on `n` rows of `x`: post-activation outputs of each hidden layer and of the
 * output layer, row-major [n, width].
 */
export function referenceForward(
  model: ModelGraphSpec,
  params: Params,
  x: Float32Array | Float64Array,
  n: number,
): { hidden: Float64Array[]; output: Float64Array } {
  let h = Float64Array.from(x.subarray(0, n * model.inputDim));
  const outs: Float64Array[] = [];
  for (const layer of model.layers) {
    const w = tensorSlot(model.layout, `${layer.name}.weight`);
    const b = layer.bias ? tensorSlot(model.layout, `${layer.name}.bias`) : undefined;
    const next = new Float64Array(n * layer.outputs);
    for (let r = 0; r < n; r++) {
      for (let o = 0; o < layer.outputs; o++) {
        let s = b ? (params[b.offset + o] as number) : 0;
        for (let i = 0; i < layer.inputs; i++) {
          s += (h[r * layer.inputs + i] as number) * (params[w.offset + o * layer.inputs + i] as number);
        }
        next[r * layer.outputs + o] = act(layer.activation, s);
      }
    }
    outs.push(next);
    h = next;
  }
  return { hidden: outs.slice(0, -1), output: h };
}

/** Mean loss of the batch in float64 (cross-entropy with a stable log-sum-exp, or ½·squared error). */
export function referenceLoss(model: ModelGraphSpec, params: Params, batch: Batch): number {
  const { output } = referenceForward(model, params, batch.x, batch.size);
  const k = model.outputDim;
  let total = 0;
  for (let r = 0; r < batch.size; r++) {
    const z = output.subarray(r * k, (r + 1) * k);
    const y = batch.y.subarray(r * k, (r + 1) * k);
    if (model.loss === 'cross-entropy') {
      let max = -Infinity;
      for (const v of z) max = Math.max(max, v);
      let se = 0;
      for (const v of z) se += Math.exp(v - max);
      const lse = max + Math.log(se);
      for (let j = 0; j < k; j++) total -= (y[j] as number) * ((z[j] as number) - lse);
    } else {
      for (let j = 0; j < k; j++) total += 0.5 * ((z[j] as number) - (y[j] as number)) ** 2;
    }
  }
  return total / batch.size;
}

/** Gradient of {@link referenceLoss} by central finite differences in float64. */
export function referenceGradientFD(
  model: ModelGraphSpec,
  params: Params,
  batch: Batch,
  h = 1e-6,
): Float64Array {
  const p = Float64Array.from(params);
  const grad = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    const p0 = p[i] as number;
    p[i] = p0 + h;
    const up = referenceLoss(model, p, batch);
    p[i] = p0 - h;
    const down = referenceLoss(model, p, batch);
    p[i] = p0;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

/** A fresh float64 optimizer state with the slot count the optimizer keeps (see zeroOptimizerState). */
export function referenceOptimizerState(opt: OptimizerSpec, paramCount: number): ReferenceOptimizerState {
  const r = resolveOptimizer(opt);
  const count = r.kind === 'sgd' ? (r.momentum > 0 ? 1 : 0) : 2;
  return { step: 0, slots: Array.from({ length: count }, () => new Float64Array(paramCount)) };
}

/**
 * One optimizer step in float64 with PyTorch's update equations (torch.optim.SGD / Adam / AdamW,
 * amsgrad off, maximize off). Updates `params` and `state` in place (`state.step` increments).
 * `lr` is the learning rate of this step (the spec's `lr` is ignored, as in Engine.trainStep).
 */
export function referenceOptimizerStep(
  opt: OptimizerSpec,
  params: Float64Array,
  grad: Float64Array | Float32Array,
  state: ReferenceOptimizerState,
  lr: number,
): void {
  const r = resolveOptimizer(opt);
  const n = params.length;
  if (r.kind === 'sgd') {
    const buf = state.slots[0];
    for (let i = 0; i < n; i++) {
      const p = params[i] as number;
      let g = (grad[i] as number) + r.weightDecay * p;
      if (r.momentum !== 0) {
        if (!buf) throw new Error('SGD with momentum needs one slot');
        const b = state.step === 0 ? g : r.momentum * (buf[i] as number) + (1 - r.dampening) * g;
        buf[i] = b;
        g = r.nesterov ? g + r.momentum * b : b;
      }
      params[i] = p - lr * g;
    }
    state.step += 1;
    return;
  }
  const [m, v] = state.slots;
  if (!m || !v) throw new Error('Adam/AdamW need two slots');
  const t = state.step + 1;
  const bc1 = 1 - r.beta1 ** t;
  const bc2 = 1 - r.beta2 ** t;
  for (let i = 0; i < n; i++) {
    let p = params[i] as number;
    let g = grad[i] as number;
    if (r.kind === 'adamw') p = p * (1 - lr * r.weightDecay);
    else g = g + r.weightDecay * p;
    const mi = r.beta1 * (m[i] as number) + (1 - r.beta1) * g;
    const vi = r.beta2 * (v[i] as number) + (1 - r.beta2) * g * g;
    m[i] = mi;
    v[i] = vi;
    params[i] = p - (lr / bc1) * (mi / (Math.sqrt(vi) / Math.sqrt(bc2) + r.eps));
  }
  state.step = t;
}
