/**
 * The weight vectors of `Engine.evaluateMany` ({@link ParamsBatch}): how many there are, checks,
 * forming one point of a {@link ParamsCombination}, and evaluateMany as a loop over `evaluate`
 * (the tfjs engine's, and the reference the batched ORT path is tested against).
 */
import type { EvalResult, EvaluateManyOptions, ParamsBatch, ParamsCombination } from './types.js';

/** Whether `points` is a {@link ParamsCombination} (else a list of points). */
export function isCombination(points: ParamsBatch): points is ParamsCombination {
  return 'coefficients' in points;
}

/** Number of points in `points`. */
export function pointCount(points: ParamsBatch): number {
  return isCombination(points) ? points.coefficients.length : points.length;
}

/**
 * Throw unless every point (or vector) has `size` entries and, for a combination, there is at least
 * one vector and every coefficient row has one finite coefficient per vector.
 */
export function checkParamsBatch(points: ParamsBatch, size: number, who: string): void {
  if (!isCombination(points)) {
    points.forEach((p, i) => {
      if (p.length !== size) throw new Error(`${who}: point ${i} has ${p.length} values, expected ${size}`);
    });
    return;
  }
  const { vectors, coefficients } = points;
  if (vectors.length === 0) throw new Error(`${who}: a combination needs at least one vector`);
  vectors.forEach((v, k) => {
    if (v.length !== size) throw new Error(`${who}: vector ${k} has ${v.length} values, expected ${size}`);
  });
  coefficients.forEach((row, i) => {
    if (row.length !== vectors.length) {
      throw new Error(
        `${who}: coefficient row ${i} has ${row.length} values, expected one per vector (${vectors.length})`,
      );
    }
    for (const c of row) {
      if (!Number.isFinite(c)) throw new Error(`${who}: coefficient row ${i} has a non-finite value ${c}`);
    }
  });
}

/**
 * Point `i` as float32: a list's own array, or Σ_k c_ik v_k of a combination, accumulated in float64
 * from k = 0 up (c_i0 · v_0, then + c_i1 · v_1, …) and rounded once to float32. So [1, a, b] ·
 * [θ, d₁, d₂] is fround(θ + a d₁ + b d₂) and [1 − α, α] · [θ_A, θ_B] is fround((1 − α) θ_A + α θ_B),
 * the same arithmetic as the loss surfaces and `interpolate` (barrier.ts).
 */
export function paramsPoint(points: ParamsBatch, i: number): Float32Array {
  if (!isCombination(points)) return points[i] as Float32Array;
  const row = points.coefficients[i] as readonly number[];
  const first = points.vectors[0] as Float32Array | Float64Array;
  const acc = new Float64Array(first.length);
  const c0 = row[0] as number;
  for (let j = 0; j < acc.length; j++) acc[j] = c0 * (first[j] as number);
  for (let k = 1; k < row.length; k++) {
    const c = row[k] as number;
    const v = points.vectors[k] as Float32Array | Float64Array;
    for (let j = 0; j < acc.length; j++) acc[j] = (acc[j] as number) + c * (v[j] as number);
  }
  return Float32Array.from(acc);
}

/** evaluateMany as one `evaluate` call per point, in order (points formed by {@link paramsPoint}). */
export async function evaluateEach(
  evaluate: (params: Float32Array, x: Float32Array, y: Float32Array, n: number) => Promise<EvalResult>,
  points: ParamsBatch,
  x: Float32Array,
  y: Float32Array,
  n: number,
  options: EvaluateManyOptions = {},
): Promise<EvalResult[]> {
  const total = pointCount(points);
  const results: EvalResult[] = [];
  for (let i = 0; i < total; i++) {
    results.push(await evaluate(paramsPoint(points, i), x, y, n));
    options.onProgress?.(i + 1, total);
  }
  return results;
}
