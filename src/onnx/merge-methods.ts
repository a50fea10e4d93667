/**
 * Merge rules on flat weight vectors (docs/methods.md §8, docs/merging.md "Merge methods"), in
 * float64, rounded to float32 once. Per-tensor rules (SLERP, TIES's trim) use the layout's slots.
 * The definitions follow mergekit's (`linear`, `slerp`, `task_arithmetic`, `ties`, `dare_linear`,
 * `dare_ties`):
 *
 * - linear: θ = Σ_k w_k θ_k / Σ_k w_k;
 * - SLERP (per tensor a, b): with cos Ω = ⟨a, b⟩ / (‖a‖ ‖b‖), θ = sin((1 − t) Ω) / sin Ω · a +
 *   sin(t Ω) / sin Ω · b, and (1 − t) a + t b when |cos Ω| > 0.9995 (a tensor of norm ≤ 1e-8 is not
 *   normalized, as in mergekit);
 * - task arithmetic: τ_k = θ_k − θ₀, θ = θ₀ + λ Σ_k w_k τ_k;
 * - TIES: each τ_k trimmed per tensor to its ⌊density · n⌋ (at least 1) entries of largest magnitude
 *   (ties broken by position), weighted τ'_k = w_k τ̂_k, a sign elected per entry, s = +1 where
 *   Σ_k τ'_k ≥ 0 else −1, and the disjoint mean θ = θ₀ + λ Σ_k τ'_k [sign τ'_k = s] / Σ_k w_k
 *   [sign τ'_k = s] (a zero entry agrees with no sign; no agreeing entry: 0);
 * - DARE: each entry of τ_k kept with probability density = 1 − p and rescaled by 1 / density
 *   (draws: `Rng.fromSeed(seed).stream('dare', k)`, one uniform per entry in layout order, kept when
 *   u < density), then task arithmetic (`dare`) or TIES's sign election and disjoint mean
 *   (`dare-ties`).
 */
import type { ParameterLayout } from '../model/layout.js';
import { Rng } from '../rng/rng.js';

/** Below this |cos Ω|, SLERP interpolates on the great circle; above it, linearly (mergekit's DOT_THRESHOLD). */
export const SLERP_COLINEAR = 0.9995;

function checkSizes(vectors: readonly Float32Array[], what: string): number {
  const n = vectors[0]?.length ?? 0;
  vectors.forEach((v, k) => {
    if (v.length !== n) throw new Error(`${what}: vector ${k} has ${v.length} entries, vector 0 has ${n}`);
  });
  return n;
}

/** θ = Σ_k w_k θ_k / Σ_k w_k (default: the uniform average). */
export function linearMerge(models: readonly Float32Array[], weights?: readonly number[]): Float32Array {
  if (models.length === 0) throw new Error('linear merge of no models');
  const n = checkSizes(models, 'linear merge');
  const w = weights ?? models.map(() => 1);
  if (w.length !== models.length) throw new Error(`${w.length} weights for ${models.length} models`);
  const total = w.reduce((a, b) => a + b, 0);
  if (!Number.isFinite(total) || total === 0)
    throw new Error(`the weights sum to ${total}; they must not sum to 0`);
  const acc = new Float64Array(n);
  models.forEach((m, k) => {
    const c = (w[k] as number) / total;
    for (let i = 0; i < n; i++) acc[i] = (acc[i] as number) + c * (m[i] as number);
  });
  return Float32Array.from(acc);
}

/** SLERP of one tensor pair (see the module comment); writes into `out` and returns it. */
export function slerpTensor(
  a: Float32Array,
  b: Float32Array,
  t: number,
  out: Float32Array = new Float32Array(a.length),
): Float32Array {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  const norm = (s: number) => {
    const r = Math.sqrt(s);
    return r > 1e-8 ? r : 1;
  };
  const cos = dot / (norm(na) * norm(nb));
  if (Math.abs(cos) > SLERP_COLINEAR) {
    for (let i = 0; i < a.length; i++) out[i] = (1 - t) * (a[i] as number) + t * (b[i] as number);
    return out;
  }
  const omega = Math.acos(cos);
  const sin = Math.sin(omega);
  const s0 = Math.sin((1 - t) * omega) / sin;
  const s1 = Math.sin(t * omega) / sin;
  for (let i = 0; i < a.length; i++) out[i] = s0 * (a[i] as number) + s1 * (b[i] as number);
  return out;
}

/** SLERP of two models, tensor by tensor of `layout`. */
export function slerpMerge(
  a: Float32Array,
  b: Float32Array,
  t: number,
  layout: ParameterLayout,
): Float32Array {
  checkSizes([a, b], 'slerp');
  if (!(t >= 0 && t <= 1)) throw new Error(`slerp: t must be in [0, 1], got ${t}`);
  const out = new Float32Array(a.length);
  for (const s of layout.tensors) {
    const r = (v: Float32Array) => v.subarray(s.offset, s.offset + s.size);
    slerpTensor(r(a), r(b), t, r(out));
  }
  return out;
}

/** Options of the task-vector merges. */
export interface TaskVectorOptions {
  /** λ, the scale of the merged task vector (default 1). */
  readonly scale?: number;
  /** w_k per model (default 1 each). */
  readonly weights?: readonly number[];
}

function taskVectors(base: Float32Array, models: readonly Float32Array[]): Float64Array[] {
  checkSizes([base, ...models], 'task vectors');
  return models.map((m) => {
    const d = new Float64Array(m.length);
    for (let i = 0; i < m.length; i++) d[i] = (m[i] as number) - (base[i] as number);
    return d;
  });
}

function modelWeights(models: readonly unknown[], weights: readonly number[] | undefined): number[] {
  const w = weights ? [...weights] : models.map(() => 1);
  if (w.length !== models.length) throw new Error(`${w.length} weights for ${models.length} models`);
  return w;
}

/** θ₀ + λ Σ_k w_k δ_k, entry by entry. */
function addWeighted(
  base: Float32Array,
  deltas: readonly ArrayLike<number>[],
  w: readonly number[],
  lambda: number,
): Float32Array {
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    let s = 0;
    deltas.forEach((d, k) => {
      s += (w[k] as number) * (d[i] as number);
    });
    out[i] = (base[i] as number) + lambda * s;
  }
  return out;
}

/** θ = θ₀ + λ Σ_k w_k (θ_k − θ₀). */
export function taskArithmetic(
  base: Float32Array,
  models: readonly Float32Array[],
  options: TaskVectorOptions = {},
): Float32Array {
  const w = modelWeights(models, options.weights);
  const deltas = taskVectors(base, models);
  const lambda = options.scale ?? 1;
  return addWeighted(base, deltas, w, lambda);
}

/**
 * Keep the ⌊density · n⌋ (at least 1) entries of largest magnitude of each tensor of `delta`
 * (equal magnitudes: the earlier position first); zero the rest. In place; returns `delta`.
 */
export function trimTopK(delta: Float64Array, density: number, layout: ParameterLayout): Float64Array {
  if (!(density > 0 && density <= 1)) throw new Error(`density must be in (0, 1], got ${density}`);
  if (density === 1) return delta;
  for (const s of layout.tensors) {
    const k = Math.max(1, Math.floor(density * s.size));
    const idx = Array.from({ length: s.size }, (_, i) => i);
    idx.sort(
      (i, j) => Math.abs(delta[s.offset + j] as number) - Math.abs(delta[s.offset + i] as number) || i - j,
    );
    for (let r = k; r < s.size; r++) delta[s.offset + (idx[r] as number)] = 0;
  }
  return delta;
}

/** Sign election and disjoint weighted mean of weighted task vectors (TIES's merge step). */
function disjointMean(weighted: readonly Float64Array[], w: readonly number[], i: number): number {
  let total = 0;
  for (const d of weighted) total += d[i] as number;
  const sign = total >= 0 ? 1 : -1;
  let sum = 0;
  let divisor = 0;
  weighted.forEach((d, k) => {
    const v = d[i] as number;
    if (Math.sign(v) === sign) {
      sum += v;
      divisor += w[k] as number;
    }
  });
  return divisor === 0 ? sum : sum / divisor;
}

/** Options of {@link tiesMerge}. */
export interface TiesOptions extends TaskVectorOptions {
  /** Fraction of each tensor's entries kept by magnitude (default 0.2, TIES's k = 20 %). */
  readonly density?: number;
}

/** TIES-merging (Yadav et al. 2023): trim, elect sign, disjoint mean (see the module comment). */
export function tiesMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  layout: ParameterLayout,
  options: TiesOptions = {},
): Float32Array {
  const w = modelWeights(models, options.weights);
  const deltas = taskVectors(base, models).map((d) => trimTopK(d, options.density ?? 0.2, layout));
  return electAndMerge(base, deltas, w, options.scale ?? 1);
}

function electAndMerge(base: Float32Array, deltas: Float64Array[], w: readonly number[], lambda: number) {
  const weighted = deltas.map((d, k) => d.map((v) => v * (w[k] as number)));
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = (base[i] as number) + lambda * disjointMean(weighted, w, i);
  return out;
}

/** Options of {@link dareMerge}. */
export interface DareOptions extends TaskVectorOptions {
  /** Probability of keeping an entry, 1 − p (default 0.5). */
  readonly density?: number;
  /** Seed of the random drop. */
  readonly seed: number;
  /** Follow the drop with TIES's sign election and disjoint mean (mergekit's `dare_ties`). Default false. */
  readonly ties?: boolean;
}

/** Drop each entry with probability 1 − density and rescale the rest by 1 / density, in place. */
export function dareDrop(delta: Float64Array, density: number, rng: Rng): Float64Array {
  if (!(density > 0 && density <= 1)) throw new Error(`density must be in (0, 1], got ${density}`);
  for (let i = 0; i < delta.length; i++) {
    delta[i] = rng.uniform() < density ? (delta[i] as number) / density : 0;
  }
  return delta;
}

/** DARE (Yu et al. 2024): drop and rescale each task vector, then add them (or TIES-merge them). */
export function dareMerge(
  base: Float32Array,
  models: readonly Float32Array[],
  options: DareOptions,
): Float32Array {
  const w = modelWeights(models, options.weights);
  const density = options.density ?? 0.5;
  const root = Rng.fromSeed(options.seed);
  const deltas = taskVectors(base, models).map((d, k) => dareDrop(d, density, root.stream('dare', k)));
  const lambda = options.scale ?? 1;
  if (options.ties) return electAndMerge(base, deltas, w, lambda);
  return addWeighted(base, deltas, w, lambda);
}

/** One step of a greedy soup: the candidate model, its held-out accuracy alone, and whether it joined. */
export interface SoupStep {
  /** Index of the model among the inputs. */
  readonly model: number;
  /** Held-out accuracy of the model alone. */
  readonly accuracy: number;
  /** Held-out accuracy of the soup with it (the first: the model alone). */
  readonly soupAccuracy: number;
  readonly added: boolean;
}

/**
 * Greedy soup (Wortsman et al. 2022, Algorithm 1): models sorted by held-out accuracy (best first,
 * ties in input order); the best starts the soup; each next model joins when the held-out accuracy
 * of the uniform average of the soup with it does not fall (≥ the soup's so far). `evaluate` gives
 * the held-out accuracy of a weight vector (the caller applies any normalization statistics).
 */
export async function greedySoup(
  models: readonly Float32Array[],
  evaluate: (weights: Float32Array, members: readonly number[]) => Promise<number>,
): Promise<{ weights: Float32Array; ingredients: number[]; steps: SoupStep[] }> {
  if (models.length === 0) throw new Error('greedy soup of no models');
  const acc: number[] = [];
  for (const [k, m] of models.entries()) acc.push(await evaluate(m, [k]));
  const order = models.map((_, k) => k).sort((i, j) => (acc[j] as number) - (acc[i] as number) || i - j);
  const first = order[0] as number;
  let ingredients = [first];
  let weights = models[first] as Float32Array;
  let best = acc[first] as number;
  const steps: SoupStep[] = [{ model: first, accuracy: best, soupAccuracy: best, added: true }];
  for (const k of order.slice(1)) {
    const members = [...ingredients, k];
    const candidate = linearMerge(members.map((i) => models[i] as Float32Array));
    const a = await evaluate(candidate, members);
    const added = a >= best;
    steps.push({ model: k, accuracy: acc[k] as number, soupAccuracy: a, added });
    if (added) {
      ingredients = members;
      weights = candidate;
      best = a;
    }
  }
  return { weights, ingredients, steps };
}
