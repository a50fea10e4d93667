/**
 * Loss surfaces around one network (Li et al. 2018; METHODS.md §6 "Geometry around one network";
 * docs/methods.md has no section for it yet): loss and accuracy on a line or a plane through θ.
 *
 * - Directions: random Gaussian directions with filter normalization ({@link filterNormalize}), or
 *   the top two PCA directions of a training trajectory ({@link pcaPlane}, Li et al. §7, using the
 *   weight PCA of docs/methods.md §10.1).
 * - 1-D: L(θ + α d) along a direction, or L((1 − α) θ_A + α θ_B) along the line to another network,
 *   computed exactly as the interpolation curve of docs/methods.md §6.2 ({@link lossLine}).
 * - 2-D: L(θ + a d₁ + b d₂) on a grid, default 51 × 51 on [−1, 1]² ({@link lossSurface}).
 *
 * Every point is formed in float64 (θ_i + a d₁_i + b d₂_i) and rounded once to float32; at a = b = 0
 * it is θ itself. Directions are float64 vectors in the flat {@link ParameterLayout} order.
 *
 * The algorithms take an evaluation callback ({@link ParamsEvaluator}); bind one to an engine and a
 * data set with `engineEvaluator` (sensitivity.ts). Cost, when the evaluator has a batch method
 * (`many`; engineEvaluator's is `Engine.evaluateMany`):
 * - a surface goes to it as one combination, vectors [θ, d₁, d₂] and a row [1, a, b] per grid point.
 *   The ORT engine then computes the first layer, most of an MLP's work, once per vector (three wide
 *   GEMMs per group of up to 64 points) and mixes it per point; the other layers run as batched
 *   MatMuls. Results equal one evaluation per point within float32 rounding (relative loss
 *   difference below 1e-5; docs/performance.md, "Batched evaluation", has the speed-up);
 * - a line goes to it as lists of points formed here, evaluated with exactly the arithmetic of
 *   one call per point (so `lossLine` to θ_B stays the interpolation curve, bit for bit).
 * Without `many`, each point is one evaluator call, made one after another (`Engine.evaluate` runs
 * the compiled evaluation session on all examples, in chunks of 2,048 rows on ORT).
 */
import type { ParameterLayout } from '../model/layout.js';
import { Rng } from '../rng/rng.js';
import { alphaGrid, interpolate } from './barrier.js';
import { trajectoryPca } from './pca.js';
import { evaluatePoints, type ParamsEvaluator } from './sensitivity.js';

/**
 * What a filter-normalized direction holds in 1-D tensors (biases):
 * - `zero` (default): nothing, as Li et al. 2018 do (their `ignore='biasbn'`: bias and batch-norm
 *   directions are zeroed, so the surface moves the weight matrices only);
 * - `copy`: the tensor's own weights, d_b = θ_b (Li et al.'s code without `ignore`);
 * - `normalize`: the whole 1-D tensor is treated as one filter, d_b ← d_b · ‖θ_b‖ / ‖d_b‖.
 */
export type BiasDirection = 'zero' | 'copy' | 'normalize';

/** Options of {@link filterNormalize}. */
export interface FilterNormalizeOptions {
  /** 1-D tensors (biases). Default `zero`. */
  readonly biases?: BiasDirection;
}

/**
 * Filter normalization (Li et al. 2018, §4), in place: for each tensor of rank ≥ 2 in `layout`, each
 * row r (an output unit of a dense layer's [out, in] weight; a filter of a convolution) is rescaled to
 * the norm of the same row of θ, d_r ← d_r · ‖θ_r‖ / ‖d_r‖ (a zero row of d stays zero). 1-D tensors
 * follow `biases` ({@link BiasDirection}). Norms are computed in float64. Returns `direction`.
 * @throws if the vectors' lengths differ from the layout's size, or `biases` is unknown.
 */
export function filterNormalize(
  direction: Float64Array,
  theta: Float32Array | Float64Array,
  layout: ParameterLayout,
  options: FilterNormalizeOptions = {},
): Float64Array {
  const biases = options.biases ?? 'zero';
  if (biases !== 'zero' && biases !== 'copy' && biases !== 'normalize') {
    throw new Error(`filterNormalize: unknown biases '${biases as string}' (zero, copy, normalize)`);
  }
  if (direction.length !== layout.size || theta.length !== layout.size) {
    throw new Error(
      `filterNormalize: the layout has ${layout.size} parameters, but the direction has ${direction.length} and θ ${theta.length}`,
    );
  }
  for (const t of layout.tensors) {
    if (t.shape.length >= 2) {
      const rows = t.shape[0] as number;
      const len = t.size / rows;
      for (let r = 0; r < rows; r++) rescale(direction, theta, t.offset + r * len, len);
    } else if (biases === 'zero') {
      direction.fill(0, t.offset, t.offset + t.size);
    } else if (biases === 'copy') {
      for (let i = t.offset; i < t.offset + t.size; i++) direction[i] = theta[i] as number;
    } else {
      rescale(direction, theta, t.offset, t.size);
    }
  }
  return direction;
}

/** d[start, start+len) ← d · ‖θ[start, start+len)‖ / ‖d[start, start+len)‖ (unchanged when ‖d‖ = 0). */
function rescale(d: Float64Array, theta: Float32Array | Float64Array, start: number, len: number): void {
  let dd = 0;
  let tt = 0;
  for (let i = start; i < start + len; i++) {
    dd += (d[i] as number) ** 2;
    tt += (theta[i] as number) ** 2;
  }
  if (dd === 0) return;
  const s = Math.sqrt(tt) / Math.sqrt(dd);
  for (let i = start; i < start + len; i++) d[i] = (d[i] as number) * s;
}

/** Options of {@link randomDirection}. */
export interface RandomDirectionOptions extends FilterNormalizeOptions {
  /** Seed of the direction streams, an integer in [0, 2^53). Default 0. */
  readonly seed?: number;
  /** `filter` (default): {@link filterNormalize}; `none`: the raw N(0, 1) draw. */
  readonly normalization?: 'filter' | 'none';
}

/**
 * Random direction number `index` around θ: one N(0, 1) deviate per parameter (layout order) from
 * the stream `Rng.fromSeed(seed).stream('eval').stream('direction', index)` (docs/methods.md §1), then
 * filter-normalized ({@link filterNormalize}) unless `normalization: 'none'`. The 2-D surfaces use
 * indices 0 and 1; a direction depends only on (seed, index, θ, layout, options).
 * @throws for a bad seed or index, or as {@link filterNormalize}.
 */
export function randomDirection(
  theta: Float32Array | Float64Array,
  layout: ParameterLayout,
  index: number,
  options: RandomDirectionOptions = {},
): Float64Array {
  const seed = options.seed ?? 0;
  const normalization = options.normalization ?? 'filter';
  if (normalization !== 'filter' && normalization !== 'none') {
    throw new Error(`randomDirection: unknown normalization '${normalization as string}' (filter, none)`);
  }
  if (!Number.isSafeInteger(index) || index < 0) {
    throw new Error(`randomDirection: index must be an integer >= 0, got ${index}`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`randomDirection: seed must be an integer in [0, 2^53), got ${seed}`);
  }
  if (theta.length !== layout.size) {
    throw new Error(`randomDirection: the layout has ${layout.size} parameters, θ has ${theta.length}`);
  }
  const d = Rng.fromSeed(seed)
    .stream('eval')
    .stream('direction', index)
    .fillNormal(new Float64Array(layout.size));
  return normalization === 'filter' ? filterNormalize(d, theta, layout, options) : d;
}

/**
 * `points` evenly spaced values from `lo` to `hi` inclusive: ((points − 1 − i)·lo + i·hi) / (points − 1),
 * so the endpoints are exact and a symmetric range has an exact 0 in the middle (odd `points`).
 * Default: 51 points on [−1, 1].
 * @throws if `points` is not an integer ≥ 2 or an end is not finite.
 */
export function surfaceAxis(lo = -1, hi = 1, points = 51): number[] {
  if (!Number.isInteger(points) || points < 2) {
    throw new Error(`surfaceAxis: points must be an integer >= 2, got ${points}`);
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    throw new Error(`surfaceAxis: the range must be finite, got [${lo}, ${hi}]`);
  }
  const m = points - 1;
  return Array.from({ length: points }, (_, i) => ((m - i) * lo + i * hi) / m);
}

/** A line through weight space: along a direction from θ, or from θ to another network θ_B. */
export type LineSpec = { readonly direction: Float32Array | Float64Array } | { readonly to: Float32Array };

/** Loss and accuracy at each α of a line. */
export interface LossLine {
  readonly alphas: number[];
  readonly loss: number[];
  /** Accuracy in [0, 1]; NaN for regression data. */
  readonly accuracy: number[];
}

/**
 * Loss and accuracy along a line ({@link LineSpec}): θ + α d for `{ direction: d }` (default α:
 * {@link surfaceAxis}(), 51 points on [−1, 1]), or (1 − α) θ + α θ_B for `{ to: θ_B }` (default α:
 * {@link alphaGrid}(), 0, 0.1, …, 1), formed by {@link interpolate} so that the curve is the one
 * `interpolationCurve` (barrier.ts) gives (its error = 1 − accuracy). Evaluations run in α order
 * (through `evaluate.many` in lists of up to 64 points when the evaluator has it).
 * @throws if a vector's length differs from θ's, α is empty or not finite.
 */
export async function lossLine(
  evaluate: ParamsEvaluator,
  theta: Float32Array,
  line: LineSpec,
  alphas?: readonly number[],
): Promise<LossLine> {
  const toB = 'to' in line;
  const other = toB ? line.to : line.direction;
  if (other.length !== theta.length) {
    throw new Error(
      `lossLine: θ has ${theta.length} parameters, but the ${toB ? 'target' : 'direction'} has ${other.length}`,
    );
  }
  const grid = [...(alphas ?? (toB ? alphaGrid() : surfaceAxis()))];
  if (grid.length === 0) throw new Error('lossLine: alphas is empty');
  for (const a of grid) if (!Number.isFinite(a)) throw new Error(`lossLine: alpha must be finite, got ${a}`);
  const results = await evaluatePoints(evaluate, grid.length, (k) => {
    const a = grid[k] as number;
    return toB ? interpolate(theta, line.to, a) : planePoint(theta, line.direction, a, null, 0);
  });
  return { alphas: grid, loss: results.map((r) => r.loss), accuracy: results.map((r) => r.accuracy) };
}

/** θ + a d1 + b d2 in float64, rounded once to float32 (d2 may be absent). */
function planePoint(
  theta: Float32Array,
  d1: Float32Array | Float64Array,
  a: number,
  d2: Float32Array | Float64Array | null,
  b: number,
): Float32Array {
  const out = new Float32Array(theta.length);
  if (d2) {
    for (let i = 0; i < theta.length; i++) {
      out[i] = (theta[i] as number) + a * (d1[i] as number) + b * (d2[i] as number);
    }
  } else {
    for (let i = 0; i < theta.length; i++) out[i] = (theta[i] as number) + a * (d1[i] as number);
  }
  return out;
}

/** Grid and progress options of {@link lossSurface}. */
export interface SurfaceGridOptions {
  /** Coefficients a of d₁ (columns). Default {@link surfaceAxis}() (51 points on [−1, 1]). */
  readonly x?: readonly number[];
  /** Coefficients b of d₂ (rows). Default {@link surfaceAxis}(). */
  readonly y?: readonly number[];
  /**
   * Called with the number of points done and the total: after each point, or, with a batched
   * evaluator (`many`), as it reports (the ORT engine: after each group of up to 64 points).
   */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Loss and accuracy on a grid of the plane θ + a d₁ + b d₂. */
export interface LossSurface {
  /** Coefficients of d₁ (one per column). */
  readonly x: number[];
  /** Coefficients of d₂ (one per row). */
  readonly y: number[];
  /** loss[j][i] = L(θ + x[i] d₁ + y[j] d₂): rows follow y, columns x (the layout contour plots take). */
  readonly loss: number[][];
  /** accuracy[j][i] at the same point; NaN for regression data. */
  readonly accuracy: number[][];
}

/**
 * Loss and accuracy at θ + a d₁ + b d₂ for every a in `x` and b in `y` (default 51 × 51 on [−1, 1]²),
 * each point formed in float64 and rounded once to float32. Without `evaluate.many`, points are
 * evaluated one after another, row by row; with it, the whole grid goes to it in one call as the
 * combination [θ, d₁, d₂] · [1, a, b] (see the module comment for the cost and the tolerance).
 * @throws if a direction's length differs from θ's or an axis is empty or not finite.
 */
export async function lossSurface(
  evaluate: ParamsEvaluator,
  theta: Float32Array,
  d1: Float32Array | Float64Array,
  d2: Float32Array | Float64Array,
  options: SurfaceGridOptions = {},
): Promise<LossSurface> {
  if (d1.length !== theta.length || d2.length !== theta.length) {
    throw new Error(
      `lossSurface: θ has ${theta.length} parameters, but the directions have ${d1.length} and ${d2.length}`,
    );
  }
  const x = checkAxis('x', options.x ?? surfaceAxis());
  const y = checkAxis('y', options.y ?? surfaceAxis());
  const total = x.length * y.length;
  const loss: number[][] = [];
  const accuracy: number[][] = [];
  if (evaluate.many) {
    const coefficients = y.flatMap((b) => x.map((a) => [1, a, b]));
    const results = await evaluate.many({ vectors: [theta, d1, d2], coefficients }, options.onProgress);
    if (results.length !== total) {
      throw new Error(`lossSurface: the evaluator returned ${results.length} results for ${total} points`);
    }
    for (let j = 0; j < y.length; j++) {
      const row = results.slice(j * x.length, (j + 1) * x.length);
      loss.push(row.map((r) => r.loss));
      accuracy.push(row.map((r) => r.accuracy));
    }
    return { x, y, loss, accuracy };
  }
  let done = 0;
  for (const b of y) {
    const lossRow: number[] = [];
    const accRow: number[] = [];
    for (const a of x) {
      const r = await evaluate(planePoint(theta, d1, a, d2, b));
      lossRow.push(r.loss);
      accRow.push(r.accuracy);
      options.onProgress?.(++done, total);
    }
    loss.push(lossRow);
    accuracy.push(accRow);
  }
  return { x, y, loss, accuracy };
}

function checkAxis(name: string, axis: readonly number[]): number[] {
  if (axis.length === 0) throw new Error(`lossSurface: axis ${name} is empty`);
  for (const v of axis) {
    if (!Number.isFinite(v)) throw new Error(`lossSurface: axis ${name} has a non-finite value ${v}`);
  }
  return [...axis];
}

/** Options of {@link randomPlaneSurface}. */
export interface RandomPlaneOptions extends RandomDirectionOptions, SurfaceGridOptions {}

/** What the two directions of a surface are. */
export interface RandomPlaneDirections {
  readonly kind: 'random';
  readonly seed: number;
  readonly normalization: 'filter' | 'none';
  readonly biases: BiasDirection;
  /** Stream paths of d₁ and d₂ under the seed. */
  readonly streams: [string, string];
  /** ‖d₁‖, ‖d₂‖ (float64). */
  readonly norms: [number, number];
  /** cos ∠(d₁, d₂): near 0 for random directions in many dimensions. */
  readonly cosine: number;
}

/** A surface on a random filter-normalized plane, with its directions. */
export interface RandomPlaneSurface extends LossSurface {
  readonly d1: Float64Array;
  readonly d2: Float64Array;
  readonly directions: RandomPlaneDirections;
}

/**
 * Li et al.'s 2-D surface: d₁ = {@link randomDirection}(θ, layout, 0), d₂ = randomDirection(…, 1)
 * (filter-normalized, biases zeroed by default), then {@link lossSurface} on the grid (default
 * 51 × 51 on [−1, 1]²).
 */
export async function randomPlaneSurface(
  evaluate: ParamsEvaluator,
  theta: Float32Array,
  layout: ParameterLayout,
  options: RandomPlaneOptions = {},
): Promise<RandomPlaneSurface> {
  const d1 = randomDirection(theta, layout, 0, options);
  const d2 = randomDirection(theta, layout, 1, options);
  const surface = await lossSurface(evaluate, theta, d1, d2, options);
  const n1 = Math.sqrt(dot(d1, d1));
  const n2 = Math.sqrt(dot(d2, d2));
  return {
    ...surface,
    d1,
    d2,
    directions: {
      kind: 'random',
      seed: options.seed ?? 0,
      normalization: options.normalization ?? 'filter',
      biases: options.biases ?? 'zero',
      streams: ['eval/direction/0', 'eval/direction/1'],
      norms: [n1, n2],
      cosine: n1 > 0 && n2 > 0 ? dot(d1, d2) / (n1 * n2) : Number.NaN,
    },
  };
}

function dot(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Options of {@link pcaPlane}. */
export interface PcaPlaneOptions {
  /**
   * What the PCA decomposes: `final` (default, Li et al. 2018 §7) the rows θ_t − θ_final, uncentred;
   * `mean` ordinary centred PCA of the checkpoints (what sklearn's PCA in Li et al.'s code computes on
   * those rows). The plane passes through θ_final either way.
   */
  readonly reference?: 'final' | 'mean';
}

/** The plane of a trajectory's top two PCA directions through its final point. */
export interface PcaPlane {
  /** θ_final (the last checkpoint, a copy): the plane's origin. */
  readonly origin: Float32Array;
  /** The two orthonormal principal directions c₁, c₂ (float64, length P). */
  readonly d1: Float64Array;
  readonly d2: Float64Array;
  /** coordinates[t] = [c₁ᵀ(θ_t − θ_final), c₂ᵀ(θ_t − θ_final)] for every checkpoint t (the last is [0, 0]). */
  readonly coordinates: Array<[number, number]>;
  /** Explained variance ratios of c₁ and c₂ (about the reference). */
  readonly explainedVarianceRatio: [number, number];
  readonly reference: 'final' | 'mean';
}

/**
 * The top-2 PCA plane of a trajectory (Li et al. 2018 §7): {@link trajectoryPca} of the checkpoints
 * about θ_final (or their mean, {@link PcaPlaneOptions.reference}), its two unit components as
 * directions, and every checkpoint's coordinates in the plane through θ_final ({@link projectOntoPlane}).
 * PCA directions are orthonormal and not filter-normalized, so coordinates are Euclidean distances in
 * weight space; a trajectory lying in a 2-D plane through θ_final is reconstructed exactly (up to
 * float64 rounding) as θ_final + x c₁ + y c₂.
 * @throws for fewer than 3 checkpoints, checkpoints of different lengths, or a trajectory that does
 * not span two dimensions about the reference (second eigenvalue ≤ 1e-12 times the first).
 */
export function pcaPlane(checkpoints: readonly Float32Array[], options: PcaPlaneOptions = {}): PcaPlane {
  const reference = options.reference ?? 'final';
  if (reference !== 'final' && reference !== 'mean') {
    throw new Error(`pcaPlane: unknown reference '${reference as string}' (final, mean)`);
  }
  if (checkpoints.length < 3) {
    throw new Error(`pcaPlane: needs at least 3 checkpoints, got ${checkpoints.length}`);
  }
  const origin = Float32Array.from(checkpoints[checkpoints.length - 1] as Float32Array);
  const pca = trajectoryPca(checkpoints, {
    components: 2,
    reference: reference === 'final' ? origin : 'mean',
  });
  const [l1, l2] = pca.eigenvalues as [number, number];
  // A second eigenvalue at rounding level (≤ 1e-12 λ₁) means the rows span one dimension only.
  if (!(l1 > 0) || !(l2 > 1e-12 * l1)) {
    throw new Error(`pcaPlane: the trajectory does not span two dimensions (eigenvalues ${l1}, ${l2})`);
  }
  const [d1, d2] = pca.components as [Float64Array, Float64Array];
  const plane = {
    origin,
    d1,
    d2,
    coordinates: [] as Array<[number, number]>,
    explainedVarianceRatio: [pca.explainedVarianceRatio[0], pca.explainedVarianceRatio[1]] as [
      number,
      number,
    ],
    reference,
  };
  for (const c of checkpoints) plane.coordinates.push(projectOntoPlane(plane, c));
  return plane;
}

/**
 * Coordinates of θ in a {@link PcaPlane}: [c₁ᵀ(θ − θ_final), c₂ᵀ(θ − θ_final)] in float64 (the
 * orthogonal projection, as the directions are orthonormal).
 * @throws if θ's length differs from the plane's.
 */
export function projectOntoPlane(
  plane: Pick<PcaPlane, 'origin' | 'd1' | 'd2'>,
  theta: Float32Array | Float64Array,
): [number, number] {
  const { origin, d1, d2 } = plane;
  if (theta.length !== origin.length) {
    throw new Error(`projectOntoPlane: expected ${origin.length} parameters, got ${theta.length}`);
  }
  let x = 0;
  let y = 0;
  for (let i = 0; i < origin.length; i++) {
    const v = (theta[i] as number) - (origin[i] as number);
    x += (d1[i] as number) * v;
    y += (d2[i] as number) * v;
  }
  return [x, y];
}

/** Options of {@link pcaSurface}. */
export interface PcaSurfaceOptions extends PcaPlaneOptions, SurfaceGridOptions {
  /** Grid points per axis when `x` / `y` are not given. Default 51. */
  readonly points?: number;
  /**
   * Padding of the default axes: each axis spans the checkpoints' coordinates (and 0), widened by
   * this fraction of its extent on both sides. Default 0.2.
   */
  readonly margin?: number;
}

/** A loss surface on a trajectory's PCA plane, with the plane (and the path's coordinates). */
export interface PcaSurface extends LossSurface {
  readonly plane: PcaPlane;
}

/**
 * Li et al.'s trajectory plot: {@link pcaPlane} of the checkpoints, then {@link lossSurface} around
 * θ_final on that plane. Default axes cover the path ({@link PcaSurfaceOptions.margin}) with `points`
 * (51) values each; `plane.coordinates` places every checkpoint on the same axes.
 * @throws as {@link pcaPlane} and {@link lossSurface}, or for a bad `points` / `margin`.
 */
export async function pcaSurface(
  evaluate: ParamsEvaluator,
  checkpoints: readonly Float32Array[],
  options: PcaSurfaceOptions = {},
): Promise<PcaSurface> {
  const margin = options.margin ?? 0.2;
  const points = options.points ?? 51;
  if (!(margin >= 0 && Number.isFinite(margin))) {
    throw new Error(`pcaSurface: margin must be a finite number >= 0, got ${margin}`);
  }
  const plane = pcaPlane(checkpoints, options);
  const axis = (k: 0 | 1) => {
    const vs = plane.coordinates.map((c) => c[k]);
    const lo = Math.min(0, ...vs);
    const hi = Math.max(0, ...vs);
    const pad = margin * (hi - lo);
    return surfaceAxis(lo - pad, hi + pad, points);
  };
  const surface = await lossSurface(evaluate, plane.origin, plane.d1, plane.d2, {
    ...options,
    x: options.x ?? axis(0),
    y: options.y ?? axis(1),
  });
  return { ...surface, plane };
}
