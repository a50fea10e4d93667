/**
 * Linear interpolation between two networks and the loss/error barrier along it (docs/methods.md §6.2).
 *
 * θ(α) = (1 − α) θ_A + α θ_B is formed in float64 and rounded once to float32, so θ(0) = θ_A and
 * θ(1) = θ_B exactly and the curve's endpoints equal evaluations at the two networks themselves.
 */
import type { Task } from '../data/types.js';
import type { Engine } from '../engine/types.js';
import { countsCorrect, hasNormBuffers } from '../model/graph.js';

/**
 * θ(α) = (1 − α) a + α b, each entry computed in float64 and rounded to float32.
 * α outside [0, 1] extrapolates along the line.
 * @throws if the vectors differ in length or α is not finite.
 */
export function interpolate(a: Float32Array, b: Float32Array, alpha: number): Float32Array {
  if (a.length !== b.length) {
    throw new Error(`interpolate: parameter vectors differ in length (a has ${a.length}, b has ${b.length})`);
  }
  if (!Number.isFinite(alpha)) throw new Error(`interpolate: alpha must be finite, got ${alpha}`);
  const out = new Float32Array(a.length);
  const w = 1 - alpha;
  for (let i = 0; i < a.length; i++) out[i] = w * (a[i] as number) + alpha * (b[i] as number);
  return out;
}

/**
 * Evenly spaced α grid from 0 to 1 inclusive: α_i = i / (points − 1), i = 0 … points − 1.
 * The default 11 points give 0, 0.1, …, 1; the endpoints are exactly 0 and 1.
 * @throws if `points` is not an integer ≥ 2.
 */
export function alphaGrid(points = 11): number[] {
  if (!Number.isInteger(points) || points < 2) {
    throw new Error(`alphaGrid: points must be an integer >= 2, got ${points}`);
  }
  return Array.from({ length: points }, (_, i) => i / (points - 1));
}

/** Loss and error of θ(α) at each α of the grid. */
export interface InterpolationCurve {
  readonly alphas: number[];
  /** Mean loss of θ(α) on the data (the engine's training loss). */
  readonly loss: number[];
  /** Error rate 1 − correct/count; NaN where the data has no classes (see {@link hasAccuracy}). */
  readonly error: number[];
}

/** Examples to evaluate on, row-major as in {@link Engine.evaluate}. */
export interface CurveData {
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly n: number;
  /**
   * What the targets are (`Dataset.task`): accuracy and error are measured for classification only.
   * Default: classification for cross-entropy models, regression for `mse` ones.
   */
  readonly task?: Task;
}

/**
 * Whether accuracy is defined for `engine` on `data`: classification targets (by `data.task`, or a
 * cross-entropy model when the task is not given) and a model whose evaluation counts argmax hits.
 */
export function hasAccuracy(engine: Engine, data: CurveData): boolean {
  const task = data.task ?? (engine.model.loss === 'cross-entropy' ? 'classification' : 'regression');
  return task === 'classification' && countsCorrect(engine.model);
}

/**
 * What happens to BatchNorm's running statistics along a curve (docs/methods.md §6.2): `recompute`
 * them for every point on a data pass ({@link Engine.normStatistics}; the default), or `copy` A's.
 * Models without BatchNorm ignore it.
 */
export interface NormHandling {
  readonly mode: 'recompute' | 'copy';
  /** Examples of the data pass (`recompute`), row-major [n, inputDim]. */
  readonly x: Float32Array;
  readonly n: number;
  /** Rows per batch of the data pass. */
  readonly batch: number;
}

/** Points per {@link Engine.evaluateMany} call of {@link interpolationCurve} (bounds their memory). */
const CURVE_POINTS_PER_CALL = 64;

/**
 * Evaluate loss and error along θ(α) = (1 − α) a + α b at each α (default {@link alphaGrid}()).
 * The points θ(α) go to {@link Engine.evaluateMany} as lists of up to 64 points (on ORT, one
 * batched graph per group of points instead of one call per α for a small model), with the results
 * of one {@link Engine.evaluate} per point, bit for bit.
 */
export async function interpolationCurve(
  engine: Engine,
  a: Float32Array,
  b: Float32Array,
  data: CurveData,
  alphas: readonly number[] = alphaGrid(),
  norm?: NormHandling,
): Promise<InterpolationCurve> {
  const size = engine.model.layout.size;
  if (a.length !== size || b.length !== size) {
    throw new Error(
      `interpolationCurve: the model has ${size} parameters, but a has ${a.length} and b has ${b.length}`,
    );
  }
  if (alphas.length === 0) throw new Error('interpolationCurve: alphas is empty');
  const regression = !hasAccuracy(engine, data);
  const loss: number[] = [];
  const error: number[] = [];
  for (let first = 0; first < alphas.length; first += CURVE_POINTS_PER_CALL) {
    let points = alphas.slice(first, first + CURVE_POINTS_PER_CALL).map((alpha) => interpolate(a, b, alpha));
    if (norm && hasNormBuffers(engine.model)) points = await withNormStatistics(engine, points, a, norm);
    for (const r of await engine.evaluateMany(points, data.x, data.y, data.n)) {
      loss.push(r.loss);
      error.push(regression || r.count === 0 ? Number.NaN : 1 - r.correct / r.count);
    }
  }
  return { alphas: [...alphas], loss, error };
}

/** The points with their BatchNorm running statistics recomputed, or copied from `a`. */
async function withNormStatistics(
  engine: Engine,
  points: Float32Array[],
  a: Float32Array,
  norm: NormHandling,
): Promise<Float32Array[]> {
  if (norm.mode === 'copy') {
    const buffers = engine.model.layout.tensors.filter((t) => t.role === 'buffer');
    return points.map((p) => {
      const out = p.slice();
      for (const t of buffers) out.set(a.subarray(t.offset, t.offset + t.size), t.offset);
      return out;
    });
  }
  if (!engine.normStatistics)
    throw new Error(`the ${engine.name} engine cannot recompute BatchNorm statistics`);
  const out: Float32Array[] = [];
  for (const p of points) out.push(await engine.normStatistics(p, norm.x, norm.n, norm.batch));
  return out;
}

/**
 * How a barrier is measured.
 * - `linear` (Kwok et al. 2025, default): α* = argmax_α L(α);
 *   B = L(α*) − [(1 − α*) L(0) + α* L(1)], the rise above the chord at the highest point.
 * - `midpoint-mean` (Frankle et al. 2020): B = max_α L(α) − ½ (L(0) + L(1)).
 */
export type BarrierConvention = 'linear' | 'midpoint-mean';

/** A barrier's height and where along the path it is reached. */
export interface BarrierResult {
  readonly value: number;
  /** α* = argmax_α L(α) on the grid (the first, if several tie). */
  readonly alphaStar: number;
}

/**
 * Barrier of a curve `values[i]` = L(alphas[i]); `alphas` must start at 0 and end at 1 (the two
 * networks), with L(0) = values[0] and L(1) = values[last]. See {@link BarrierConvention}.
 * Both conventions agree when L(0) = L(1). Returns NaN for value and α* when any value is NaN
 * (e.g. the error curve of an `mse` model).
 * @throws if the arrays differ in length, have fewer than 2 points, or the grid does not run from 0 to 1.
 */
export function barrier(
  values: readonly number[],
  alphas: readonly number[],
  convention: BarrierConvention = 'linear',
): BarrierResult {
  if (values.length !== alphas.length) {
    throw new Error(`barrier: ${values.length} values but ${alphas.length} alphas`);
  }
  if (values.length < 2) throw new Error(`barrier: need at least 2 points, got ${values.length}`);
  const last = alphas.length - 1;
  if (alphas[0] !== 0 || alphas[last] !== 1) {
    throw new Error(`barrier: alphas must run from 0 to 1, got ${alphas[0]} … ${alphas[last]}`);
  }
  if (convention !== 'linear' && convention !== 'midpoint-mean') {
    throw new Error(`barrier: unknown convention '${convention as string}' (linear, midpoint-mean)`);
  }
  if (values.some((v) => Number.isNaN(v))) return { value: Number.NaN, alphaStar: Number.NaN };
  let iStar = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[iStar] as number)) iStar = i;
  const lStar = values[iStar] as number;
  const alphaStar = alphas[iStar] as number;
  const l0 = values[0] as number;
  const l1 = values[last] as number;
  const value =
    convention === 'linear' ? lStar - ((1 - alphaStar) * l0 + alphaStar * l1) : lStar - 0.5 * (l0 + l1);
  return { value, alphaStar };
}

/**
 * Whether two networks are linearly connected: their error barrier (a fraction, not a
 * percentage) is below `threshold` (default 0.02, i.e. 2 percentage points). False for NaN.
 */
export function linearlyConnected(errorBarrier: number, threshold = 0.02): boolean {
  return errorBarrier < threshold;
}
