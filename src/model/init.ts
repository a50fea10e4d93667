/**
 * Weight initialization: fill a flat parameter vector tensor by tensor from a model's init scheme.
 */
import type { Rng } from '../rng/rng.js';
import { type ParameterLayout, tensorView } from './layout.js';
import type { InitSpec } from './spec.js';

/** A norm layer's shift (`norm{i}.bias`): zero under every scheme. */
const isNormBias = (name: string): boolean => /^norm\d+\.bias$/.test(name);

/**
 * Initial parameters for `layout` under `init`, drawn from `rng` (normally
 * `Rng.fromSeed(seed).stream('init')`).
 *
 * Each tensor draws from its own sub-stream `rng.stream(slot.name)`, so adding, removing or resizing
 * one tensor leaves the others unchanged. `pytorch` draws U(−1/√fanIn, 1/√fanIn) for weights and
 * biases; every other scheme draws N(0, slot.initStd²), and tensors with initStd 0 (zeros, and biases
 * without `biasStd`) stay zero. Whatever the scheme, a norm layer's scale (role `scale`) and
 * BatchNorm's running variance start at 1, its bias and running mean at 0, as in PyTorch.
 */
export function initParams(layout: ParameterLayout, init: InitSpec, rng: Rng): Float32Array {
  const flat = new Float32Array(layout.size);
  for (const slot of layout.tensors) {
    const view = tensorView(flat, slot);
    if (slot.role === 'scale' || slot.role === 'buffer' || isNormBias(slot.name)) {
      if (slot.role === 'scale' || slot.name.endsWith('.running_var')) view.fill(1);
    } else if (init.kind === 'pytorch') {
      const bound = 1 / Math.sqrt(slot.fanIn);
      rng.stream(slot.name).fillUniform(view, -bound, bound);
    } else if (slot.initStd > 0) {
      rng.stream(slot.name).fillNormal(view, slot.initStd);
    }
  }
  return flat;
}
