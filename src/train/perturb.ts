/**
 * Perturbations of a network's weights, for twin training (docs/methods.md §5).
 *
 * The size of a perturbation is given relative to the network's initialization: with σ = 1 the
 * noise has the norm a fresh initialization is expected to have,
 *
 *   ‖ε‖₂ = σ · sqrt(Σ_k s_k² n_k)   over the tensors k the mask selects,
 *
 * where s_k is tensor k's init standard deviation (layout `initStd`) and n_k its size. The
 * direction is drawn per kind:
 * - `gaussian`: ε̂_k ~ N(0, s_k²) entrywise (zero-initialized tensors get no noise), restricted to a
 *   random `fraction` of the selected entries when given (at least one entry: the "single weight" case);
 * - `batch`: ε̂ = the gradient of the loss on one extra minibatch (drawn by the caller from a
 *   separate seed stream), masked the same way.
 * σ = 0 leaves every weight bit-for-bit unchanged (the control twin).
 */
import type { ParameterLayout } from '../model/layout.js';
import type { Rng } from '../rng/rng.js';

/** Which entries a perturbation may touch. */
export interface PerturbationScope {
  /** Regular expression on tensor names (e.g. `weight$` to leave biases alone). Default: all tensors. */
  readonly mask?: string;
  /** Fraction of the selected entries to perturb, in (0, 1]; at least one entry. Default 1. */
  readonly fraction?: number;
}

/** A perturbation vector and its norm. */
export interface Perturbation {
  readonly epsilon: Float32Array;
  /** ‖ε‖₂ computed in float64 over the float32 entries. */
  readonly norm: number;
  /** The norm asked for: σ · sqrt(Σ_k s_k² n_k). */
  readonly targetNorm: number;
  /** Number of entries that may be non-zero. */
  readonly entries: number;
}

function selectedTensors(layout: ParameterLayout, mask?: string) {
  let re: RegExp | undefined;
  if (mask !== undefined) {
    try {
      re = new RegExp(mask);
    } catch (e) {
      throw new Error(
        `perturbation.mask: not a valid regular expression '${mask}' (${(e as Error).message})`,
      );
    }
  }
  const chosen = layout.tensors.filter((t) => !re || re.test(t.name));
  if (chosen.length === 0) {
    throw new Error(
      `perturbation.mask '${mask}' selects no tensor (has ${layout.tensors.map((t) => t.name).join(', ')})`,
    );
  }
  return chosen;
}

/** σ · sqrt(Σ_k s_k² n_k) over the tensors the mask selects. */
export function initScaleNorm(layout: ParameterLayout, sigma: number, mask?: string): number {
  return sigma * Math.sqrt(selectedTensors(layout, mask).reduce((s, t) => s + t.initStd ** 2 * t.size, 0));
}

/** A 0/1 mask over the flat vector: selected tensors, then a random `fraction` of their entries. */
function entryMask(layout: ParameterLayout, scope: PerturbationScope, rng: Rng): Uint8Array {
  const fraction = scope.fraction ?? 1;
  if (!(fraction > 0 && fraction <= 1))
    throw new Error(`perturbation.fraction must be in (0, 1], got ${fraction}`);
  const selected = new Uint8Array(layout.size);
  const candidates: number[] = [];
  for (const t of selectedTensors(layout, scope.mask)) {
    for (let i = t.offset; i < t.offset + t.size; i++) candidates.push(i);
  }
  if (fraction === 1) {
    for (const i of candidates) selected[i] = 1;
    return selected;
  }
  const count = Math.max(1, Math.round(fraction * candidates.length));
  const order = rng.stream('fraction').permutation(candidates.length);
  for (let k = 0; k < count; k++) selected[candidates[order[k] as number] as number] = 1;
  return selected;
}

/** Scale `direction` (float64, already masked) to `targetNorm`; a zero direction stays zero. */
function rescale(direction: Float64Array, targetNorm: number, entries: number): Perturbation {
  let sq = 0;
  for (const v of direction) sq += v * v;
  const scale = sq > 0 ? targetNorm / Math.sqrt(sq) : 0;
  const epsilon = Float32Array.from(direction, (v) => v * scale);
  let norm = 0;
  for (const v of epsilon) norm += v * v;
  return { epsilon, norm: Math.sqrt(norm), targetNorm, entries };
}

/** Gaussian perturbation of size σ (relative to the init norm), drawn from `rng`. */
export function gaussianPerturbation(
  layout: ParameterLayout,
  sigma: number,
  rng: Rng,
  scope: PerturbationScope = {},
): Perturbation {
  if (!(sigma >= 0)) throw new Error(`perturbation.sigma must be ≥ 0, got ${sigma}`);
  const mask = entryMask(layout, scope, rng);
  const direction = new Float64Array(layout.size);
  for (const t of layout.tensors) {
    const noise = new Float64Array(t.size);
    rng.stream('gaussian', t.offset).fillNormal(noise, t.initStd);
    for (let i = 0; i < t.size; i++) direction[t.offset + i] = mask[t.offset + i] ? (noise[i] as number) : 0;
  }
  return rescale(
    direction,
    initScaleNorm(layout, sigma, scope.mask),
    mask.reduce((a, b) => a + b, 0),
  );
}

/** Perturbation along a minibatch gradient, of size σ (relative to the init norm). */
export function gradientPerturbation(
  layout: ParameterLayout,
  sigma: number,
  gradient: Float32Array,
  rng: Rng,
  scope: PerturbationScope = {},
): Perturbation {
  if (!(sigma >= 0)) throw new Error(`perturbation.sigma must be ≥ 0, got ${sigma}`);
  if (gradient.length !== layout.size) {
    throw new Error(`gradient has ${gradient.length} values, expected ${layout.size}`);
  }
  const mask = entryMask(layout, scope, rng);
  const direction = Float64Array.from(gradient, (g, i) => (mask[i] ? g : 0));
  return rescale(
    direction,
    initScaleNorm(layout, sigma, scope.mask),
    mask.reduce((a, b) => a + b, 0),
  );
}

/** θ + ε as a new vector; entries where ε is 0 keep their exact bits (so σ = 0 copies θ bit for bit). */
export function applyPerturbation(params: Float32Array, perturbation: Perturbation): Float32Array {
  const { epsilon } = perturbation;
  if (epsilon.length !== params.length) {
    throw new Error(`perturbation has ${epsilon.length} values, params ${params.length}`);
  }
  return params.map((p, i) => (epsilon[i] === 0 ? p : p + (epsilon[i] as number)));
}
