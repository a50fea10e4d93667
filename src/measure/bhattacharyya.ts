/**
 * Bhattacharyya distance between checkpoints seen as distributions of their softmax outputs on a
 * fixed set of N examples (docs/methods.md §10.2, InPCA of Mao et al. 2024 / Quinn et al. 2019):
 *
 *   d(u, v) = −(1/N) Σ_n log max(1e-12, Σ_c sqrt(p_u^n(c) p_v^n(c))).
 *
 * d ≥ 0 in exact arithmetic (the Bhattacharyya coefficient of two distributions is ≤ 1); tiny
 * negatives from rounding are clamped to 0 and d(u, u) is exactly 0.
 *
 * Two implementations of the m × m matrix:
 * - {@link bhattacharyyaMatrixJs}: plain JS float64, one pass over the m(m−1)/2 pairs with sqrt(p)
 *   precomputed: m(m−1)/2 · N logarithms (≈ 100 ns per pair and sample on the 2-vCPU VM; fine for
 *   m ≲ 200 at N = 10,000).
 * - {@link bhattacharyyaMatrix} (default backend 'ort'): onnxruntime-node on blocks of checkpoints.
 *   For a block pair (bu, bv) the graph ({@link bhattacharyyaBlockGraph}) takes sqrt-probabilities
 *   [bu, N, C] and [bv, N, C], transposes them to [N, bu, C] and [N, C, bv], multiplies them
 *   (batched MatMul over n → the coefficients [N, bu, bv]), clips with Max(·, 1e-12), and sums the
 *   Log over N. In float64 the clipped coefficients of 16 consecutive samples are first multiplied
 *   (ReduceProd; ≥ 1e-192, no underflow) so only N/16 logarithms are taken per pair: ORT's float64
 *   Log is the slowest op of the graph (measured ≈ 2.4× faster than a relu-based clip and one Log per
 *   sample; float32 is still ≈ 2× faster, see below). N is padded to a multiple of 16 with samples of
 *   coefficient exactly 1. Only blocks on or above the diagonal are computed; all sqrt-probabilities
 *   are packed once (m·N·C values in the float type, one array per block). Time and
 *   memory at m = 2,000, N = 10,000, C = 10: docs/performance.md ("Trajectory embeddings").
 *
 * Precision: the 'ort' backend in float64 (default) agrees with the JS float64 version to rounding
 * (≈1e-16 absolute). float32 (`floatType: 'float32'`, one Log per sample) has errors ~1e-7 in the
 * coefficients, i.e. absolute errors ~1e-7 in d — too coarse for the small distances between
 * consecutive checkpoints of one run.
 *
 * Note that float32 softmax rows sum to 1 only within ~1e-7, so even two copies of the same outputs
 * have d = −mean_n log Σ_c p_n(c) ≈ 1e-8 rather than 0 (the diagonal is set to exactly 0).
 *
 * Regression (mse) checkpoints have no softmax; {@link gaussianBhattacharyya} and
 * {@link gaussianBhattacharyyaMatrix} read their predictions as Gaussians N(ŷ, s²) instead.
 */
import { availableParallelism } from 'node:os';
import { Graph, type Node, type Tensor } from '../engine/ir/graph.js';
import type { JobGraph } from '../engine/model-graphs.js';
import type { FloatType } from '../engine/onnx/emit.js';
import type { FloatArray, OrtJob } from '../engine/ort/session.js';
import type { Matrix } from './cka.js';
import { sqDiff } from './distance.js';

/** Lower clip of the per-sample Bhattacharyya coefficient before the logarithm. */
export const BC_FLOOR = 1e-12;

/** One checkpoint's softmax outputs: N × C row-major (row n = the distribution on example n). */
export type ProbabilityArray = Float32Array | Float64Array;

/**
 * Per-sample-averaged Bhattacharyya distance between two N × C probability matrices (rows =
 * examples, columns = classes), accumulated in float64. `options.classes`, when given, must equal
 * the column count (a guard for flat data of the wrong shape).
 * @throws if the shapes differ, the matrix is empty, or a value is negative or non-finite.
 */
export function bhattacharyya(p: Matrix, q: Matrix, options: { classes?: number } = {}): number {
  if (p.rows !== q.rows || p.cols !== q.cols) {
    throw new Error(`bhattacharyya: shapes differ (${p.rows} × ${p.cols} vs ${q.rows} × ${q.cols})`);
  }
  if (options.classes !== undefined && options.classes !== p.cols) {
    throw new Error(`bhattacharyya: expected ${options.classes} classes, got ${p.cols} columns`);
  }
  checkProbs(p.data, p.rows * p.cols, 'bhattacharyya (p)');
  checkProbs(q.data, q.rows * q.cols, 'bhattacharyya (q)');
  if (p.rows === 0 || p.cols === 0) throw new Error('bhattacharyya: empty input');
  if (p.data === q.data) return 0;
  const c = p.cols;
  let acc = 0;
  for (let n = 0; n < p.rows; n++) {
    let s = 0;
    for (let k = n * c; k < n * c + c; k++) s += Math.sqrt((p.data[k] as number) * (q.data[k] as number));
    acc += Math.log(Math.max(s, BC_FLOOR));
  }
  const d = -acc / p.rows;
  return Math.max(d, 0);
}

function checkProbs(data: ProbabilityArray, size: number, what: string): void {
  if (data.length !== size) throw new Error(`${what}: expected ${size} values, got ${data.length}`);
  for (let i = 0; i < size; i++) {
    const v = data[i] as number;
    if (!(v >= 0) || v === Number.POSITIVE_INFINITY) {
      throw new Error(`${what}: probabilities must be finite and >= 0, found ${v} at ${i}`);
    }
  }
}

function checkAll(probs: readonly ProbabilityArray[], n: number, classes: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) throw new Error(`${what}: n must be a positive integer, got ${n}`);
  if (!Number.isInteger(classes) || classes < 1) {
    throw new Error(`${what}: classes must be a positive integer, got ${classes}`);
  }
  probs.forEach((p, i) => checkProbs(p, n * classes, `${what} (checkpoint ${i})`));
}

/** Fill the diagonal with 0, clamp negatives, mirror the upper triangle to the lower. */
function finishMatrix(d: Float64Array, m: number): Float64Array {
  for (let u = 0; u < m; u++) {
    d[u * m + u] = 0;
    for (let v = u + 1; v < m; v++) {
      const x = d[u * m + v] as number;
      const y = Math.max(x, 0);
      d[u * m + v] = y;
      d[v * m + u] = y;
    }
  }
  return d;
}

/**
 * The m × m Bhattacharyya distance matrix (row-major Float64Array) of m checkpoints' softmax
 * outputs, each an N × C row-major array, in plain JS float64 (the reference for
 * {@link bhattacharyyaMatrix}). Cost: m(m−1)/2 · N logarithms and m(m−1)/2 · N · C multiply-adds.
 */
export function bhattacharyyaMatrixJs(
  probs: readonly ProbabilityArray[],
  n: number,
  classes: number,
): Float64Array {
  checkAll(probs, n, classes, 'bhattacharyyaMatrixJs');
  const m = probs.length;
  const roots = probs.map((p) => Float64Array.from(p, Math.sqrt));
  const d = new Float64Array(m * m);
  const size = n * classes;
  for (let u = 0; u < m; u++) {
    const a = roots[u] as Float64Array;
    for (let v = u + 1; v < m; v++) {
      const b = roots[v] as Float64Array;
      let acc = 0;
      for (let o = 0; o < size; o += classes) {
        let s = 0;
        for (let k = o; k < o + classes; k++) s += (a[k] as number) * (b[k] as number);
        acc += Math.log(Math.max(s, BC_FLOOR));
      }
      d[u * m + v] = -acc / n;
    }
  }
  return finishMatrix(d, m);
}

/** Options of {@link bhattacharyyaMatrix}. */
export interface BhattacharyyaMatrixOptions {
  /** 'ort' (default): onnxruntime-node on checkpoint blocks; 'js': {@link bhattacharyyaMatrixJs}. */
  readonly backend?: 'ort' | 'js';
  /** ORT intra-op threads. Default: all available cores. */
  readonly threads?: number;
  /** Checkpoints per block (the ORT graph's bu = bv). Default 64 (or m when smaller). */
  readonly block?: number;
  /** Float type of the ORT graph. Default 'float64' (see the module comment). */
  readonly floatType?: FloatType;
  /** Called after each block pair with (done, total). */
  readonly progress?: (done: number, total: number) => void;
}

/**
 * Append an ONNX op the IR has no builder for (`Max`, `ReduceProd`): the emitter writes any node
 * generically, so a node with the right output shape is all it needs. Kept here, next to its only
 * use, rather than widening the shared IR.
 */
function rawOp(
  g: Graph,
  op: 'Max' | 'ReduceProd',
  inputs: readonly Tensor[],
  shape: readonly number[],
  attrs: Record<string, number | number[]> = {},
): Tensor {
  const node: Node = { id: g.nodes.length, op, inputs, attrs, shape: [...shape], dtype: 'float' };
  g.nodes.push(node);
  return { graph: g, node };
}

/** Samples multiplied together before one Log in the float64 graph (1e-12¹⁶ = 1e-192 > 2.2e-308). */
const PRODUCT_GROUP = 16;

/**
 * The ORT graph of one block pair: sqrt-probs a [bu, N, C] and b [bv, N, C] → logSum [bu, bv] =
 * Σ_n log max(1e-12, Σ_c a_unc b_vnc). With `group` > 1 (N divisible by it), the clipped
 * coefficients of `group` consecutive samples are multiplied before one Log (ReduceProd): exact
 * up to rounding as long as 1e-12^group does not underflow (float64: group ≤ 25).
 */
function bhattacharyyaBlockGraph(bu: number, bv: number, n: number, classes: number, group = 1): JobGraph {
  if (!Number.isInteger(group) || group < 1 || n % group !== 0) {
    throw new Error(`bhattacharyyaBlockGraph: group ${group} must be a positive divisor of n = ${n}`);
  }
  const g = new Graph();
  const a = g.input('a', [bu, n, classes]);
  const b = g.input('b', [bv, n, classes]);
  const bc = g.matmul(g.transpose(a, [1, 0, 2]), g.transpose(b, [1, 2, 0])); // [N, bu, bv]
  let clipped = rawOp(g, 'Max', [bc, g.constant(BC_FLOOR)], [n, bu, bv]);
  if (group > 1) {
    const grouped = g.reshape(clipped, [n / group, group, bu, bv]);
    clipped = rawOp(g, 'ReduceProd', [grouped], [n / group, bu, bv], { axes: [1], keepdims: 0 });
  }
  return { graph: g, outputs: { logSum: g.reduceSum(g.log(clipped), [0]) } };
}

/**
 * The m × m Bhattacharyya distance matrix (row-major Float64Array, symmetric, zero diagonal) of m
 * checkpoints' softmax outputs, each an N × C row-major array — the fast path (see the module
 * comment). Equal to {@link bhattacharyyaMatrixJs} up to rounding (float64 graph).
 */
export async function bhattacharyyaMatrix(
  probs: readonly ProbabilityArray[],
  n: number,
  classes: number,
  options: BhattacharyyaMatrixOptions = {},
): Promise<Float64Array> {
  if ((options.backend ?? 'ort') === 'js') return bhattacharyyaMatrixJs(probs, n, classes);
  checkAll(probs, n, classes, 'bhattacharyyaMatrix');
  const m = probs.length;
  if (m === 0) return new Float64Array(0);
  const floatType = options.floatType ?? 'float64';
  const threads = options.threads ?? availableParallelism();
  const block = Math.min(options.block ?? 64, m);
  if (!Number.isInteger(block) || block < 1)
    throw new Error(`block must be a positive integer, got ${block}`);
  // float64: multiply PRODUCT_GROUP coefficients per Log; N is padded to a multiple of it with
  // samples whose coefficient is exactly 1 (sqrt-probability 1 on class 0 in both), adding log 1 = 0.
  const group = floatType === 'float64' ? PRODUCT_GROUP : 1;
  const nPad = Math.ceil(n / group) * group;
  const size = n * classes;
  const sizePad = nPad * classes;
  // Pack sqrt-probabilities once, one array per block (no single huge allocation); pad the last
  // block with copies of checkpoint 0 (their distances are discarded).
  const blocks = Math.ceil(m / block);
  const packed: FloatArray[] = [];
  for (let bi = 0; bi < blocks; bi++) {
    const buf =
      floatType === 'float64' ? new Float64Array(block * sizePad) : new Float32Array(block * sizePad);
    for (let j = 0; j < block; j++) {
      const u = bi * block + j;
      const p = probs[u < m ? u : 0] as ProbabilityArray;
      const o = j * sizePad;
      for (let i = 0; i < size; i++) buf[o + i] = Math.sqrt(p[i] as number);
      for (let i = size; i < sizePad; i += classes) buf[o + i] = 1;
    }
    packed.push(buf);
  }
  const { OrtJob } = await import('../engine/ort/session.js');
  const job: OrtJob = await OrtJob.create(bhattacharyyaBlockGraph(block, block, nPad, classes, group), {
    threads,
    floatType,
  });
  const d = new Float64Array(m * m);
  const total = (blocks * (blocks + 1)) / 2;
  let done = 0;
  try {
    for (let bi = 0; bi < blocks; bi++) {
      const a = packed[bi] as FloatArray;
      for (let bj = bi; bj < blocks; bj++) {
        const b = packed[bj] as FloatArray;
        const out = await job.run({
          a: { data: a, dims: [block, nPad, classes] },
          b: { data: b, dims: [block, nPad, classes] },
        });
        const s = out.logSum as Float32Array | Float64Array;
        for (let i = 0; i < block; i++) {
          const u = bi * block + i;
          if (u >= m) break;
          for (let j = 0; j < block; j++) {
            const v = bj * block + j;
            if (v >= m) break;
            if (v > u) d[u * m + v] = -(s[i * block + j] as number) / n;
          }
        }
        options.progress?.(++done, total);
      }
    }
  } finally {
    await job.dispose();
  }
  return finishMatrix(d, m);
}

/**
 * Bhattacharyya distance between two checkpoints of a regression (mse) model seen as Gaussian
 * predictive distributions N(μ^n, s² I) on N examples, averaged per sample:
 *
 *   d(u, v) = (1/N) Σ_n ‖μ_u^n − μ_v^n‖² / (8 s²)
 *
 * (the Bhattacharyya distance of two Gaussians with one shared covariance Σ is
 * (μ₁ − μ₂)ᵀ Σ⁻¹ (μ₁ − μ₂) / 8). `mu` and `nu` are N × D row-major means; `sigma` is s (default 1,
 * the unit-variance likelihood behind the squared loss). d is a scaled squared Euclidean distance, so
 * InPCA of these distances is classical MDS of the predictions: every eigenvalue is ≥ 0 and the
 * embedding equals PCA of the prediction vectors μ / sqrt(8 s² N) (see docs/methods.md §10.2).
 */
export function gaussianBhattacharyya(mu: Matrix, nu: Matrix, options: { sigma?: number } = {}): number {
  if (mu.rows !== nu.rows || mu.cols !== nu.cols) {
    throw new Error(
      `gaussianBhattacharyya: shapes differ (${mu.rows} × ${mu.cols} vs ${nu.rows} × ${nu.cols})`,
    );
  }
  if (mu.rows === 0 || mu.cols === 0) throw new Error('gaussianBhattacharyya: empty input');
  const scale = gaussianScale(options.sigma, mu.rows);
  checkMeans(mu.data, mu.rows * mu.cols, 'gaussianBhattacharyya (mu)');
  checkMeans(nu.data, nu.rows * nu.cols, 'gaussianBhattacharyya (nu)');
  return sqDiff(mu.data, nu.data) * scale;
}

/** 1 / (8 s² N), after checking s. */
function gaussianScale(sigma: number | undefined, n: number): number {
  const s = sigma ?? 1;
  if (!(s > 0) || !Number.isFinite(s)) throw new Error(`sigma must be a positive number, got ${s}`);
  return 1 / (8 * s * s * n);
}

function checkMeans(data: ProbabilityArray, size: number, what: string): void {
  if (data.length !== size) throw new Error(`${what}: expected ${size} values, got ${data.length}`);
  for (let i = 0; i < size; i++) {
    if (!Number.isFinite(data[i] as number)) throw new Error(`${what}: non-finite output ${data[i]} at ${i}`);
  }
}

/**
 * The m × m Gaussian-output Bhattacharyya distance matrix ({@link gaussianBhattacharyya}) of m
 * checkpoints' predictions, each an N × D row-major array: row-major Float64Array, symmetric, zero
 * diagonal. Computed from the differences themselves in float64 (not from a Gram matrix, which
 * would cancel catastrophically for the close checkpoints of one run): m(m−1)/2 · N · D
 * multiply-adds.
 */
export function gaussianBhattacharyyaMatrix(
  means: readonly ProbabilityArray[],
  n: number,
  outputs: number,
  options: { sigma?: number } = {},
): Float64Array {
  if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
  if (!Number.isInteger(outputs) || outputs < 1) {
    throw new Error(`outputs must be a positive integer, got ${outputs}`);
  }
  const scale = gaussianScale(options.sigma, n);
  means.forEach((mu, i) => checkMeans(mu, n * outputs, `gaussianBhattacharyyaMatrix (checkpoint ${i})`));
  const m = means.length;
  const wide = means.map((mu) => Float64Array.from(mu));
  const d = new Float64Array(m * m);
  for (let u = 0; u < m; u++) {
    for (let v = u + 1; v < m; v++) {
      d[u * m + v] = sqDiff(wide[u] as Float64Array, wide[v] as Float64Array) * scale;
    }
  }
  return finishMatrix(d, m);
}
