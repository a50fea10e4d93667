/**
 * Distances between two networks' flat parameter vectors (docs/methods.md §6.1).
 *
 * Every function takes Float32Arrays in the order of the model's {@link ParameterLayout} and
 * accumulates in float64: each difference or product of two float32 entries is formed and summed in
 * double precision, so results do not depend on the float32 rounding of partial sums.
 */
import type { ParameterLayout } from '../model/layout.js';
import { tensorView } from '../model/layout.js';

function checkSameLength(a: Float32Array, b: Float32Array, what: string): void {
  if (a.length !== b.length) {
    throw new Error(`${what}: parameter vectors differ in length (a has ${a.length}, b has ${b.length})`);
  }
}

/** Σ (a_i − b_i)² in float64 (no length check: b must be at least as long as a). */
export function sqDiff(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] as number) - (b[i] as number);
    s += d * d;
  }
  return s;
}

/** Σ a_i b_i in float64 (no length check). */
function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Euclidean norm ‖a‖₂ = sqrt(Σ a_i²), accumulated in float64. */
export function l2Norm(a: Float32Array): number {
  return Math.sqrt(dot(a, a));
}

/**
 * Euclidean distance ‖a − b‖₂ = sqrt(Σ_i (a_i − b_i)²) over all parameters, accumulated in float64.
 * @throws if the vectors differ in length.
 */
export function l2Distance(a: Float32Array, b: Float32Array): number {
  checkSameLength(a, b, 'l2Distance');
  return Math.sqrt(sqDiff(a, b));
}

/**
 * Euclidean distance per named tensor: for each tensor t of `layout`,
 * ‖a_t − b_t‖₂ = sqrt(Σ_{i ∈ t} (a_i − b_i)²). Keys are the tensor names (`dense0.weight`, …),
 * in layout order. The squares of the per-tensor values sum to {@link l2Distance}².
 * @throws if the vectors differ in length or do not match `layout.size`.
 */
export function perTensorL2(
  a: Float32Array,
  b: Float32Array,
  layout: ParameterLayout,
): Record<string, number> {
  checkSameLength(a, b, 'perTensorL2');
  if (a.length !== layout.size) {
    throw new Error(
      `perTensorL2: parameter vectors have length ${a.length}, but the layout has ${layout.size} parameters`,
    );
  }
  const out: Record<string, number> = {};
  for (const slot of layout.tensors) {
    out[slot.name] = Math.sqrt(sqDiff(tensorView(a, slot), tensorView(b, slot)));
  }
  return out;
}

/**
 * Scale-free distance ‖a − b‖₂ / sqrt(‖a‖₂ ‖b‖₂): the distance relative to the geometric mean of the
 * two norms. 0 when both vectors are zero; +∞ when exactly one of them is zero.
 * @throws if the vectors differ in length.
 */
export function normalizedL2(a: Float32Array, b: Float32Array): number {
  checkSameLength(a, b, 'normalizedL2');
  const d = Math.sqrt(sqDiff(a, b));
  const na = l2Norm(a);
  const nb = l2Norm(b);
  if (na === 0 && nb === 0) return 0;
  return d / Math.sqrt(na * nb);
}

/**
 * Cosine similarity ⟨a, b⟩ / (‖a‖₂ ‖b‖₂), in [−1, 1]. NaN when either vector is zero
 * (the angle is undefined).
 * @throws if the vectors differ in length.
 */
export function cosineSimilarity(a: Float32Array, b: Float32Array): number {
  checkSameLength(a, b, 'cosineSimilarity');
  const aa = dot(a, a);
  const bb = dot(b, b);
  if (aa === 0 || bb === 0) return Number.NaN;
  const c = dot(a, b) / Math.sqrt(aa * bb);
  // Rounding can push |c| a hair past 1 for (anti)parallel vectors.
  return Math.min(1, Math.max(-1, c));
}

/**
 * Amplification of an initial perturbation ε: ‖θ_A(T) − θ_B(T)‖₂ / ‖ε‖₂, where θ_B(0) = θ_A(0) + ε.
 * `epsNorm` is ‖ε‖₂ (the norm of the perturbation applied at the split).
 * @throws if the vectors differ in length or `epsNorm` is not a positive finite number.
 */
export function amplification(aT: Float32Array, bT: Float32Array, epsNorm: number): number {
  checkSameLength(aT, bT, 'amplification');
  if (!(Number.isFinite(epsNorm) && epsNorm > 0)) {
    throw new Error(`amplification: epsNorm must be a positive finite number, got ${epsNorm}`);
  }
  return Math.sqrt(sqDiff(aT, bT)) / epsNorm;
}
