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
 * - {@link bhattacharyyaMatrix} (default backend 'ort'): onnxruntime-node on blocks of `block` (64)
 *   checkpoints, default kernel 'chunks': the samples are processed in chunks of `chunk` (256) at a
 *   time. For each chunk, the sqrt-probabilities of every block are packed sample-major,
 *   [chunk, block, C], into buffers reused for all chunks (no m·N·C array is ever built), and for
 *   every block pair bi ≤ bj one run of {@link bhattacharyyaChunkGraph} computes
 *   a [nc, bu, C] × transpose(b) [nc, C, bv] (batched MatMul, the transpose fused by ORT) → the
 *   coefficients [nc, bu, bv], Clip(·, 1e-12) (≈ 10× faster than ORT's float64 Max with a broadcast
 *   scalar), ReduceProd over `group` (16) samples nc/group apart (the leading axis of
 *   [group, nc/group, bu, bv]: any grouping of samples works, products ≥ 1e-192 cannot underflow),
 *   Log and ReduceSum → [bu, bv]; the chunk results are summed per pair in float64 in JS. The
 *   intermediates of one run are a few MB and stay in cache, where the earlier whole-N graph
 *   (kernel 'blocks', {@link bhattacharyyaBlockGraph}, kept for comparison) made several passes over
 *   [N, 64, 64] float64 tensors of 328 MB per block pair, and packed all m·N·C sqrt-probabilities
 *   up front (page faults alone ≈ 4 ms per MB on the VM). N is padded to a multiple of the group
 *   with samples of coefficient exactly 1; a last, shorter chunk has its own session. ORT's
 *   intra-op threads do not spin (`allow_spinning` 0): with ~10⁵ runs of a few ms, spinning threads
 *   slowed the kernel several-fold whenever the cores were shared. Time and memory at m = 2,000,
 *   N = 10,000, C = 10: docs/performance.md ("Trajectory embeddings").
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
  /**
   * ORT kernel: 'chunks' (default) runs every block pair on chunks of `chunk` samples packed
   * [chunk, block, C] (cache-sized intermediates); 'blocks' is the earlier whole-N graph on
   * [block, N, C] (kept for before/after comparisons in `bench embed --compare`).
   */
  readonly kernel?: 'chunks' | 'blocks';
  /** Samples per ORT run of the 'chunks' kernel (rounded up to a multiple of the product group). Default 256. */
  readonly chunk?: number;
  /** float64: clipped coefficients multiplied per Log in the 'chunks' kernel (1 … 25). Default 16. */
  readonly group?: number;
  /** Progress (done, total): chunks of samples ('chunks' kernel) or block pairs ('blocks'). */
  readonly progress?: (done: number, total: number) => void;
}

/**
 * Append an ONNX op the IR has no builder for (`Max`, `ReduceProd`): the emitter writes any node
 * generically, so a node with the right output shape is all it needs. Kept here, next to its only
 * use, rather than widening the shared IR.
 */
function rawOp(
  g: Graph,
  op: 'Max' | 'Clip' | 'ReduceProd',
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
 * The ORT graph of one block pair on a chunk of `nc` samples: sqrt-probs a [nc, bu, C] and
 * b [nc, bv, C] (the packed layout of the 'chunks' kernel) → logSum [bu, bv] =
 * Σ_n log max(1e-12, Σ_c a_nuc b_nvc), clipped with Clip and with the clipped coefficients of
 * `group` samples nc/group apart multiplied before each Log (float64: group ≤ 25, no underflow).
 */
function bhattacharyyaChunkGraph(
  bu: number,
  bv: number,
  nc: number,
  classes: number,
  group: number,
): JobGraph {
  if (!Number.isInteger(group) || group < 1 || nc % group !== 0) {
    throw new Error(`bhattacharyyaChunkGraph: group ${group} must be a positive divisor of ${nc}`);
  }
  const g = new Graph();
  const a = g.input('a', [nc, bu, classes]);
  const b = g.input('b', [nc, bv, classes]);
  const bc = g.matmul(a, g.transpose(b, [0, 2, 1])); // [nc, bu, bv]
  let clipped = rawOp(g, 'Clip', [bc, g.constant(BC_FLOOR)], [nc, bu, bv]);
  if (group > 1) {
    const grouped = g.reshape(clipped, [group, nc / group, bu, bv]);
    clipped = rawOp(g, 'ReduceProd', [grouped], [nc / group, bu, bv], { axes: [0], keepdims: 0 });
  }
  return { graph: g, outputs: { logSum: g.reduceSum(g.log(clipped), [0]) } };
}

/** Resolved settings shared by the two ORT kernels. */
interface KernelSettings {
  readonly m: number;
  readonly n: number;
  readonly classes: number;
  readonly block: number;
  readonly floatType: FloatType;
  readonly threads: number;
  readonly progress: ((done: number, total: number) => void) | undefined;
}

/**
 * Store the upper-triangle distances −logSum / N of block pair (bi, bj) (logSum [block, block]).
 */
function storeBlock(d: Float64Array, s: ArrayLike<number>, bi: number, bj: number, k: KernelSettings): void {
  const { m, n, block } = k;
  for (let i = 0; i < block; i++) {
    const u = bi * block + i;
    if (u >= m) break;
    for (let j = 0; j < block; j++) {
      const v = bj * block + j;
      if (v >= m) break;
      if (v > u) d[u * m + v] = -(s[i * block + j] as number) / n;
    }
  }
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
  const block = Math.min(options.block ?? 64, m);
  if (!Number.isInteger(block) || block < 1)
    throw new Error(`block must be a positive integer, got ${block}`);
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`threads must be a positive integer, got ${threads}`);
  }
  const settings: KernelSettings = {
    m,
    n,
    classes,
    block,
    floatType: options.floatType ?? 'float64',
    threads,
    progress: options.progress,
  };
  const kernel = options.kernel ?? 'chunks';
  if (kernel === 'blocks') return blocksKernel(probs, settings);
  if (kernel !== 'chunks') throw new Error(`unknown kernel '${kernel as string}'`);
  return chunksKernel(probs, settings, options.chunk ?? DEFAULT_CHUNK, options.group);
}

/** Default samples per ORT run of the 'chunks' kernel. */
const DEFAULT_CHUNK = 256;

/**
 * The 'chunks' kernel (see the module comment): chunk by chunk of samples, pack every block's
 * sqrt-probabilities as [chunk, block, C] into reused buffers, run {@link bhattacharyyaChunkGraph}
 * for every block pair, and sum the chunk results per pair in float64. `progress` counts chunks.
 */
async function chunksKernel(
  probs: readonly ProbabilityArray[],
  k: KernelSettings,
  chunkOption: number,
  groupOption: number | undefined,
): Promise<Float64Array> {
  const { m, n, classes, block, floatType, threads } = k;
  const group = floatType === 'float64' ? (groupOption ?? PRODUCT_GROUP) : 1;
  if (!Number.isInteger(group) || group < 1 || group > 25) {
    throw new Error(`group must be an integer in [1, 25], got ${group}`);
  }
  if (!Number.isInteger(chunkOption) || chunkOption < 1) {
    throw new Error(`chunk must be a positive integer, got ${chunkOption}`);
  }
  const nPad = Math.ceil(n / group) * group;
  const chunk = Math.min(Math.ceil(chunkOption / group) * group, nPad);
  const fullChunks = Math.floor(nPad / chunk);
  const tail = nPad - fullChunks * chunk; // a multiple of group, possibly 0
  const stride = block * classes; // values per sample in a packed block
  const blocks = Math.ceil(m / block);
  const members = Array.from({ length: blocks }, (_, bi) =>
    Array.from({ length: block }, (_, j) => {
      const u = bi * block + j;
      return probs[u < m ? u : 0] as ProbabilityArray; // padding: copies of checkpoint 0
    }),
  );
  // One chunk of every block at a time, in buffers reused for all chunks.
  const buffers = members.map(() =>
    floatType === 'float64' ? new Float64Array(chunk * stride) : new Float32Array(chunk * stride),
  );
  const pairs: [number, number][] = [];
  for (let bi = 0; bi < blocks; bi++) for (let bj = bi; bj < blocks; bj++) pairs.push([bi, bj]);
  const sums = pairs.map(() => new Float64Array(block * block));
  const { emitOnnx } = await import('../engine/onnx/emit.js');
  const { default: ort } = await import('onnxruntime-node');
  // Spinning intra-op threads (ORT's default) wait for each other between the many short ops and
  // slow down badly when the cores are shared.
  const open = (size: number) => {
    const job = bhattacharyyaChunkGraph(block, block, size, classes, group);
    return ort.InferenceSession.create(emitOnnx(job.graph, job.outputs, { floatType }), {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
  };
  const main = await open(chunk);
  const last = tail > 0 ? await open(tail) : null;
  const chunks = fullChunks + (tail > 0 ? 1 : 0);
  try {
    for (let ci = 0; ci < chunks; ci++) {
      const size = ci < fullChunks ? chunk : tail;
      const session = (ci < fullChunks ? main : last) as typeof main;
      members.forEach((ms, bi) => packChunk(buffers[bi] as FloatArray, ms, ci * chunk, size, n, classes));
      const dims = [size, block, classes];
      const tensors = buffers.map((buf) => new ort.Tensor(floatType, buf.subarray(0, size * stride), dims));
      type Tensor64 = (typeof tensors)[number];
      for (let p = 0; p < pairs.length; p++) {
        const [bi, bj] = pairs[p] as [number, number];
        const out = await session.run({ a: tensors[bi] as Tensor64, b: tensors[bj] as Tensor64 });
        const s = out.logSum?.data as FloatArray;
        const acc = sums[p] as Float64Array;
        for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + (s[i] as number);
      }
      k.progress?.(ci + 1, chunks);
    }
  } finally {
    await main.release();
    await last?.release();
  }
  const d = new Float64Array(m * m);
  pairs.forEach(([bi, bj], p) => storeBlock(d, sums[p] as Float64Array, bi, bj, k));
  return finishMatrix(d, m);
}

/**
 * Write sqrt(p) of samples s0 … s0 + size − 1 of `members` (each N × C) into `buf` as
 * [size, members, C]; samples ≥ N are padding with sqrt-probability 1 on class 0 (coefficient
 * exactly 1 against any other padding, adding log 1 = 0).
 */
function packChunk(
  buf: FloatArray,
  members: readonly ProbabilityArray[],
  s0: number,
  size: number,
  n: number,
  classes: number,
): void {
  const stride = members.length * classes;
  for (let j = 0; j < members.length; j++) {
    const p = members[j] as ProbabilityArray;
    for (let s = 0; s < size; s++) {
      const o = s * stride + j * classes;
      const src = (s0 + s) * classes;
      if (s0 + s < n) {
        for (let c = 0; c < classes; c++) buf[o + c] = Math.sqrt(p[src + c] as number);
      } else {
        buf[o] = 1;
        for (let c = 1; c < classes; c++) buf[o + c] = 0;
      }
    }
  }
}

/** The 'blocks' kernel (the earlier design): {@link bhattacharyyaBlockGraph} on whole blocks [block, N, C]. */
async function blocksKernel(probs: readonly ProbabilityArray[], k: KernelSettings): Promise<Float64Array> {
  const { m, n, classes, block, floatType, threads } = k;
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
        storeBlock(d, out.logSum as FloatArray, bi, bj, k);
        k.progress?.(++done, total);
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
