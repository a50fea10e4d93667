/**
 * Centered kernel alignment (docs/methods.md §8; Kornblith et al. 2019), with the debiased estimator
 * (unbiased HSIC of Song et al. 2012), minibatch CKA (Nguyen et al. 2021) and angular CKA
 * (Williams et al. 2021).
 *
 * All accumulation is in float64 whatever the input storage.
 *
 * Forms and cost (n examples, p and q features):
 * - Linear CKA (biased or debiased) uses the feature-space form when n > p and n > q
 *   (`linearForm: 'auto'`): centre the columns, form XᵀX, YᵀY and XᵀY. Time O(n(p² + q² + pq)),
 *   memory O(np + nq + p² + q² + pq); no n × n matrix is formed. The debiased feature-space value
 *   is the same Song et al. estimator expressed through these products (equal to the Gram form up
 *   to rounding; see the tests).
 * - Otherwise (RBF kernel, or linear with n ≤ max(p, q), or `linearForm: 'gram'`) the kernel form is
 *   used: two n × n Float64Array Gram matrices, time O(n²(p + q)), memory 2 · 8n² bytes
 *   (n = 5000: 400 MB). RBF additionally copies the n(n−1)/2 upper-triangle distances (4n² bytes)
 *   to take the median. Keep n ≲ 5000 for the kernel form.
 *
 * Centring of Gram matrices subtracts row and column means (H = I − 11ᵀ/n is never formed).
 *
 * RBF: K_ij = exp(−d²_ij / (2 τ² median(d²))), τ = `rbfThreshold` (0.5 by default). The median is
 * taken over all n² entries of the squared-distance matrix, zero diagonal included, as in
 * Kornblith's code (`medianIncludesDiagonal: true`); with `false` it is over the off-diagonal
 * entries only. d²_ij is computed as Σ_a (x_ia − x_ja)² (no cancellation, never negative). If the
 * median is 0 (more than half of the pairs coincide) the bandwidth → 0 limit is used:
 * K_ij = 1 where d²_ij = 0, else 0.
 *
 * Degenerate inputs (defined results, never NaN):
 * - A zero-variance representation (all rows identical, e.g. every column constant) has a zero
 *   centred Gram matrix, so HSIC(K, K) = 0 and the CKA ratio is 0/0. It is defined as 0. The same
 *   applies whenever a denominator is ≤ 0 (for the debiased estimator, HSIC₁(K, K) ≥ 0 in exact
 *   arithmetic; a rounding-level non-positive value is treated as 0).
 * - Individual constant columns are centred to exact zeros in the feature-space form and so simply
 *   contribute nothing; the result is finite and equals that of the representation with the
 *   column removed.
 * - Non-finite input values are an error.
 *
 * Products (linear kernel): by default the feature-form cross-products and the linear Gram matrices
 * are float64 GEMMs on onnxruntime (`src/measure/gemm.ts`; docs/methods.md §8 says why float64);
 * `backend: 'js'` keeps the original plain-JS loops as the reference. Centring, the debiased
 * pieces and every sum stay in JS float64.
 */
import { gemm, scratchFloat64 } from './gemm.js';

/** Row-major matrix: `rows` examples × `cols` features. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float32Array | Float64Array;
}

/** The kernel CKA compares representations with: linear, or Gaussian RBF. */
export type CkaKernel = 'linear' | 'rbf';

/** Options of {@link cka}. */
export interface CkaOptions {
  /** Kernel; default 'linear'. */
  kernel?: CkaKernel;
  /** Use the unbiased HSIC estimator (Song et al. 2012); requires n ≥ 4. Default false. */
  debiased?: boolean;
  /** RBF bandwidth multiplier τ: σ² = τ² · median(d²). Default 0.5. */
  rbfThreshold?: number;
  /** Whether the RBF median includes the n zero diagonal entries of d² (Kornblith). Default true. */
  medianIncludesDiagonal?: boolean;
  /**
   * Linear kernel only: 'auto' (default) uses the feature-space form when n > p and n > q, else the
   * Gram form; 'feature' / 'gram' force one (for testing or benchmarking).
   */
  linearForm?: 'auto' | 'feature' | 'gram';
  /**
   * Linear kernel only: how the cross-products (feature form) or the Gram matrices (Gram form) are
   * computed. 'gemm' (default): float64 products on onnxruntime's GEMM ({@link gemm}); 'js': the
   * original plain-JS float64 loops (the reference). Equal up to float64 rounding.
   */
  backend?: 'gemm' | 'js';
}

/** Options of {@link minibatchCka}: those of {@link cka} but `debiased` (minibatch CKA is always unbiased). */
export type MinibatchCkaOptions = Omit<CkaOptions, 'debiased'>;

/** Angular CKA = arccos(clip(v, −1, 1)), a metric on representations (Williams et al. 2021). */
export function angularCka(value: number): number {
  if (Number.isNaN(value)) throw new Error('angularCka: value is NaN');
  return Math.acos(Math.min(1, Math.max(-1, value)));
}

/** CKA between two representations of the same n examples. */
export function cka(x: Matrix, y: Matrix, options: CkaOptions = {}): number {
  checkPair(x, y, 'cka');
  const debiased = options.debiased ?? false;
  const n = x.rows;
  if (debiased && n < 4) {
    throw new Error(`cka: the debiased estimator requires n >= 4 examples, got n = ${n}`);
  }
  const t = hsicTerms(x, y, options, debiased);
  return ratio(t.xy, t.xx, t.yy);
}

/**
 * Minibatch CKA (Nguyen et al. 2021): Σ_b HSIC₁(K_b, L_b) / sqrt(Σ_b HSIC₁(K_b, K_b) · Σ_b HSIC₁(L_b, L_b))
 * with the unbiased HSIC₁. All batches must have the same number of examples (≥ 4) and the same
 * feature counts.
 */
export function minibatchCka(
  batches: ReadonlyArray<readonly [Matrix, Matrix]>,
  options: MinibatchCkaOptions = {},
): number {
  if (batches.length === 0) throw new Error('minibatchCka: no batches');
  const first = batches[0]!;
  const n = first[0].rows;
  const p = first[0].cols;
  const q = first[1].cols;
  if (n < 4) throw new Error(`minibatchCka: the unbiased HSIC requires batches of n >= 4 examples, got ${n}`);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  batches.forEach(([bx, by], b) => {
    checkPair(bx, by, `minibatchCka (batch ${b})`);
    if (bx.rows !== n) {
      throw new Error(
        `minibatchCka: batches must have equal size; batch 0 has ${n} rows, batch ${b} has ${bx.rows}`,
      );
    }
    if (bx.cols !== p || by.cols !== q) {
      throw new Error(
        `minibatchCka: feature counts must be constant; batch 0 is ${p}/${q}, batch ${b} is ${bx.cols}/${by.cols}`,
      );
    }
    const t = hsicTerms(bx, by, options, true);
    sxy += t.xy;
    sxx += t.xx;
    syy += t.yy;
  });
  return ratio(sxy, sxx, syy);
}

// ---------------------------------------------------------------------------------------------

interface HsicTerms {
  xy: number;
  xx: number;
  yy: number;
}

function ratio(xy: number, xx: number, yy: number): number {
  if (!(xx > 0) || !(yy > 0)) return 0;
  const r = xy / Math.sqrt(xx * yy);
  return Number.isFinite(r) ? r : 0;
}

function shape(m: Matrix): string {
  return `${m.rows}x${m.cols}`;
}

function checkMatrix(m: Matrix, name: string): void {
  if (!Number.isInteger(m.rows) || !Number.isInteger(m.cols) || m.rows < 1 || m.cols < 1) {
    throw new Error(`${name}: invalid shape ${shape(m)}`);
  }
  if (m.data.length !== m.rows * m.cols) {
    throw new Error(`${name}: shape ${shape(m)} needs ${m.rows * m.cols} values, data has ${m.data.length}`);
  }
  const d = m.data;
  for (let i = 0; i < d.length; i++) {
    if (!Number.isFinite(d[i]!)) throw new Error(`${name}: non-finite value at flat index ${i}`);
  }
}

function checkPair(x: Matrix, y: Matrix, ctx: string): void {
  checkMatrix(x, `${ctx}: x`);
  checkMatrix(y, `${ctx}: y`);
  if (x.rows !== y.rows) {
    throw new Error(
      `${ctx}: x and y must have the same number of rows (examples); x is ${shape(x)}, y is ${shape(y)}`,
    );
  }
}

/** True when all rows are identical (zero-variance representation). */
function allRowsEqual(m: Matrix): boolean {
  const { rows, cols, data } = m;
  for (let i = 1; i < rows; i++) {
    const o = i * cols;
    for (let a = 0; a < cols; a++) if (data[o + a] !== data[a]) return false;
  }
  return true;
}

/**
 * HSIC terms (up to a common positive factor) for the pair, biased or unbiased. A zero-variance
 * side contributes exactly 0 to its terms.
 */
function hsicTerms(x: Matrix, y: Matrix, options: CkaOptions, debiased: boolean): HsicTerms {
  const kernel = options.kernel ?? 'linear';
  if (kernel !== 'linear' && kernel !== 'rbf') throw new Error(`cka: unknown kernel '${String(kernel)}'`);
  const constX = allRowsEqual(x);
  const constY = allRowsEqual(y);
  if (constX && constY) return { xy: 0, xx: 0, yy: 0 };
  const n = x.rows;
  const form = options.linearForm ?? 'auto';
  if (form !== 'auto' && form !== 'feature' && form !== 'gram')
    throw new Error(`cka: unknown linearForm '${form}'`);
  const useFeature =
    kernel === 'linear' && (form === 'feature' || (form === 'auto' && n > x.cols && n > y.cols));
  const backend = options.backend ?? 'gemm';
  if (backend !== 'gemm' && backend !== 'js') throw new Error(`cka: unknown backend '${String(backend)}'`);
  const gram = backend === 'gemm' ? linearGramGemm : linearGram;
  let t: HsicTerms;
  if (useFeature) {
    t = backend === 'gemm' ? featureTermsGemm(x, y, debiased) : featureTerms(x, y, debiased);
  } else {
    const k = kernel === 'linear' ? gram(x) : rbfGram(x, options);
    const l = kernel === 'linear' ? gram(y) : rbfGram(y, options);
    t = debiased ? unbiasedGramTerms(k, l, n) : biasedGramTerms(k, l, n);
  }
  if (constX) t = { xy: 0, xx: 0, yy: t.yy };
  if (constY) t = { xy: 0, xx: t.xx, yy: 0 };
  return t;
}

// ---- feature-space form ---------------------------------------------------------------------

/**
 * Column-centred float64 copy in column-major layout (feature a occupies [a·n, (a+1)·n)).
 * Exactly constant columns become exact zeros.
 */
function centreColumns(m: Matrix): Float64Array {
  const { rows, cols, data } = m;
  const out = new Float64Array(rows * cols);
  for (let a = 0; a < cols; a++) {
    let s = 0;
    let constant = true;
    const v0 = data[a]!;
    for (let i = 0; i < rows; i++) {
      const v = data[i * cols + a]!;
      s += v;
      if (v !== v0) constant = false;
    }
    if (constant) continue;
    let mean = s / rows;
    // one correction pass (mean of the residuals) for accuracy with large offsets
    let r = 0;
    for (let i = 0; i < rows; i++) r += data[i * cols + a]! - mean;
    mean += r / rows;
    const o = a * rows;
    for (let i = 0; i < rows; i++) out[o + i] = data[i * cols + a]! - mean;
  }
  return out;
}

/**
 * AᵀB (p×q, row-major) from column-major A (p columns of length n) and B (q columns). Dot products
 * in 2×4 register tiles. With `symmetric` (A = B), only tiles touching the upper triangle are
 * computed and the lower triangle is mirrored.
 */
function crossProduct(
  a: Float64Array,
  b: Float64Array,
  n: number,
  p: number,
  q: number,
  symmetric: boolean,
): Float64Array {
  const g = new Float64Array(p * q);
  const pEnd = p - (p % 2);
  const qEnd = q - (q % 4);
  for (let r = 0; r < p; r += 2) {
    const two = r < pEnd;
    const r0 = r * n;
    const r1 = two ? r0 + n : r0;
    const cStart = symmetric ? r - (r % 4) : 0;
    for (let c = cStart; c < q; c += 4) {
      if (c < qEnd && two) {
        const c0 = c * n;
        const c1 = c0 + n;
        const c2 = c1 + n;
        const c3 = c2 + n;
        let s00 = 0;
        let s01 = 0;
        let s02 = 0;
        let s03 = 0;
        let s10 = 0;
        let s11 = 0;
        let s12 = 0;
        let s13 = 0;
        for (let i = 0; i < n; i++) {
          const x0 = a[r0 + i]!;
          const x1 = a[r1 + i]!;
          const y0 = b[c0 + i]!;
          const y1 = b[c1 + i]!;
          const y2 = b[c2 + i]!;
          const y3 = b[c3 + i]!;
          s00 += x0 * y0;
          s01 += x0 * y1;
          s02 += x0 * y2;
          s03 += x0 * y3;
          s10 += x1 * y0;
          s11 += x1 * y1;
          s12 += x1 * y2;
          s13 += x1 * y3;
        }
        const o0 = r * q + c;
        const o1 = o0 + q;
        g[o0] = s00;
        g[o0 + 1] = s01;
        g[o0 + 2] = s02;
        g[o0 + 3] = s03;
        g[o1] = s10;
        g[o1 + 1] = s11;
        g[o1 + 2] = s12;
        g[o1 + 3] = s13;
      } else {
        const rEnd = two ? r + 2 : r + 1;
        const cStop = Math.min(c + 4, q);
        for (let rr = r; rr < rEnd; rr++) {
          for (let cc = c; cc < cStop; cc++) g[rr * q + cc] = dotAt(a, rr * n, b, cc * n, n);
        }
      }
    }
  }
  if (symmetric) for (let r = 0; r < p; r++) for (let c = 0; c < r; c++) g[r * q + c] = g[c * q + r]!;
  return g;
}

function dotAt(a: Float64Array, oa: number, b: Float64Array, ob: number, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[oa + i]! * b[ob + i]!;
  return s;
}

function sumSquares(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return s;
}

/** Row squared norms s_i and column sums u of a column-major n×p matrix. */
function rowNormsAndColSums(c: Float64Array, n: number, p: number): { s: Float64Array; u: Float64Array } {
  const s = new Float64Array(n);
  const u = new Float64Array(p);
  for (let a = 0; a < p; a++) {
    const o = a * n;
    let t = 0;
    for (let i = 0; i < n; i++) {
      const v = c[o + i]!;
      s[i] = s[i]! + v * v;
      t += v;
    }
    u[a] = t;
  }
  return { s, u };
}

/** K̃1 = X(Xᵀ1) − s for column-major X: row sums of the zero-diagonal linear Gram matrix. */
function gramRowSums(c: Float64Array, n: number, p: number, s: Float64Array, u: Float64Array): Float64Array {
  const r = new Float64Array(n);
  for (let a = 0; a < p; a++) {
    const o = a * n;
    const ua = u[a]!;
    if (ua === 0) continue;
    for (let i = 0; i < n; i++) r[i] = r[i]! + c[o + i]! * ua;
  }
  for (let i = 0; i < n; i++) r[i] = r[i]! - s[i]!;
  return r;
}

function featureTerms(x: Matrix, y: Matrix, debiased: boolean): HsicTerms {
  const n = x.rows;
  const p = x.cols;
  const q = y.cols;
  const xc = centreColumns(x);
  const yc = centreColumns(y);
  const gxx = sumSquares(crossProduct(xc, xc, n, p, p, true)); // ‖XᵀX‖²_F = ⟨K, K⟩
  const gyy = sumSquares(crossProduct(yc, yc, n, q, q, true));
  const gxy = sumSquares(crossProduct(xc, yc, n, p, q, false)); // ‖XᵀY‖²_F = ⟨K, L⟩
  if (!debiased) return { xy: gxy, xx: gxx, yy: gyy };
  // Song et al. pieces with K = XcXcᵀ and its diagonal zeroed: K̃ = K − diag(s), s_i = ‖x_i‖².
  // Xcᵀ1 ≈ 0 after centring; it is kept so the expressions are exact for any input.
  const { s: sx, u: ux } = rowNormsAndColSums(xc, n, p);
  const { s: sy, u: uy } = rowNormsAndColSums(yc, n, q);
  const rx = gramRowSums(xc, n, p, sx, ux);
  const ry = gramRowSums(yc, n, q, sy, uy);
  const sumKx = sumSquares(ux) - sumOf(sx); // 1ᵀK̃1
  const sumKy = sumSquares(uy) - sumOf(sy);
  return {
    xy: hsic1(gxy - dot(sx, sy), sumKx, sumKy, dot(rx, ry), n),
    xx: hsic1(gxx - dot(sx, sx), sumKx, sumKx, dot(rx, rx), n),
    yy: hsic1(gyy - dot(sy, sy), sumKy, sumKy, dot(ry, ry), n),
  };
}

/**
 * Column-centred float64 copy in the input's row-major layout (the GEMM path): the same means as
 * {@link centreColumns} (sums in row order, one correction pass); exactly constant columns become
 * exact zeros.
 */
function centreColumnsRowMajor(m: Matrix, scratch: string): Float64Array {
  const { rows, cols, data } = m;
  const sum = new Float64Array(cols);
  const constant = new Uint8Array(cols).fill(1);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let a = 0; a < cols; a++) {
      const v = data[o + a]!;
      sum[a] = sum[a]! + v;
      if (v !== data[a]) constant[a] = 0;
    }
  }
  const mean = new Float64Array(cols);
  for (let a = 0; a < cols; a++) mean[a] = sum[a]! / rows;
  const r = new Float64Array(cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let a = 0; a < cols; a++) r[a] = r[a]! + (data[o + a]! - mean[a]!);
  }
  for (let a = 0; a < cols; a++) mean[a] = mean[a]! + r[a]! / rows;
  const out = scratchFloat64(scratch, rows * cols);
  for (let i = 0; i < rows; i++) {
    const o = i * cols;
    for (let a = 0; a < cols; a++) out[o + a] = constant[a] ? 0 : data[o + a]! - mean[a]!;
  }
  return out;
}

/** Row squared norms s_i, column sums u and K̃1 = X(Xᵀ1) − s of a row-major n×p matrix. */
function rowMajorPieces(
  c: Float64Array,
  n: number,
  p: number,
): { s: Float64Array; u: Float64Array; r: Float64Array } {
  const s = new Float64Array(n);
  const u = new Float64Array(p);
  for (let i = 0; i < n; i++) {
    const o = i * p;
    let t = 0;
    for (let a = 0; a < p; a++) {
      const v = c[o + a]!;
      t += v * v;
      u[a] = u[a]! + v;
    }
    s[i] = t;
  }
  const r = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * p;
    let t = 0;
    for (let a = 0; a < p; a++) t += c[o + a]! * u[a]!;
    r[i] = t - s[i]!;
  }
  return { s, u, r };
}

/** {@link featureTerms} with the three cross-products XᵀX, YᵀY, XᵀY as float64 GEMMs. */
function featureTermsGemm(x: Matrix, y: Matrix, debiased: boolean): HsicTerms {
  const n = x.rows;
  const p = x.cols;
  const q = y.cols;
  const xc = centreColumnsRowMajor(x, 'cka.x');
  const yc = centreColumnsRowMajor(y, 'cka.y');
  const gxx = sumSquares(gemm(xc, xc, { m: p, k: n, n: p, transA: true }));
  const gyy = sumSquares(gemm(yc, yc, { m: q, k: n, n: q, transA: true }));
  const gxy = sumSquares(gemm(xc, yc, { m: p, k: n, n: q, transA: true }));
  if (!debiased) return { xy: gxy, xx: gxx, yy: gyy };
  const { s: sx, u: ux, r: rx } = rowMajorPieces(xc, n, p);
  const { s: sy, u: uy, r: ry } = rowMajorPieces(yc, n, q);
  const sumKx = sumSquares(ux) - sumOf(sx);
  const sumKy = sumSquares(uy) - sumOf(sy);
  return {
    xy: hsic1(gxy - dot(sx, sy), sumKx, sumKy, dot(rx, ry), n),
    xx: hsic1(gxx - dot(sx, sx), sumKx, sumKx, dot(rx, rx), n),
    yy: hsic1(gyy - dot(sy, sy), sumKy, sumKy, dot(ry, ry), n),
  };
}

function sumOf(v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]!;
  return s;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/**
 * Unbiased HSIC (Song et al. 2012) from its pieces, for zero-diagonal K̃, L̃:
 * [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − 2/(n−2) · 1ᵀK̃L̃1] / (n(n−3)).
 */
function hsic1(trKL: number, sumK: number, sumL: number, rowDot: number, n: number): number {
  return (trKL + (sumK * sumL) / ((n - 1) * (n - 2)) - (2 / (n - 2)) * rowDot) / (n * (n - 3));
}

// ---- kernel (Gram) form ---------------------------------------------------------------------

function toFloat64(m: Matrix): Float64Array {
  return m.data instanceof Float64Array ? m.data : Float64Array.from(m.data);
}

/** K = XXᵀ (n×n, float64). */
function linearGram(m: Matrix): Float64Array {
  const { rows: n, cols: p } = m;
  const x = toFloat64(m);
  const k = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const oi = i * p;
    for (let j = i; j < n; j++) {
      const oj = j * p;
      let s = 0;
      for (let a = 0; a < p; a++) s += x[oi + a]! * x[oj + a]!;
      k[i * n + j] = s;
      k[j * n + i] = s;
    }
  }
  return k;
}

/** K = XXᵀ (n×n, float64) as one float64 GEMM, mirrored so that it is exactly symmetric. */
function linearGramGemm(m: Matrix): Float64Array {
  const { rows: n, cols: p } = m;
  const x = toFloat64(m);
  const k = gemm(x, x, { m: n, k: p, n, transB: true });
  // Mirror the upper triangle in 64 × 64 tiles (a plain column walk over n² entries misses cache).
  const T = 64;
  for (let i0 = 0; i0 < n; i0 += T) {
    for (let j0 = i0; j0 < n; j0 += T) {
      const iEnd = Math.min(i0 + T, n);
      const jEnd = Math.min(j0 + T, n);
      for (let i = i0; i < iEnd; i++) {
        for (let j = Math.max(j0, i + 1); j < jEnd; j++) k[j * n + i] = k[i * n + j]!;
      }
    }
  }
  return k;
}

/** RBF Gram matrix; see the module comment for the bandwidth and the median convention. */
function rbfGram(m: Matrix, options: CkaOptions): Float64Array {
  const tau = options.rbfThreshold ?? 0.5;
  if (!(tau > 0) || !Number.isFinite(tau))
    throw new Error(`cka: rbfThreshold must be a positive number, got ${tau}`);
  const includeDiag = options.medianIncludesDiagonal ?? true;
  const { rows: n, cols: p } = m;
  const x = toFloat64(m);
  const k = new Float64Array(n * n);
  const upper = new Float64Array((n * (n - 1)) / 2);
  let u = 0;
  for (let i = 0; i < n; i++) {
    const oi = i * p;
    for (let j = i + 1; j < n; j++) {
      const oj = j * p;
      let s = 0;
      for (let a = 0; a < p; a++) {
        const d = x[oi + a]! - x[oj + a]!;
        s += d * d;
      }
      k[i * n + j] = s;
      k[j * n + i] = s;
      upper[u++] = s;
    }
  }
  const med = medianOfDistances(upper, n, includeDiag);
  if (med > 0) {
    const scale = -1 / (2 * tau * tau * med);
    for (let i = 0; i < k.length; i++) k[i] = Math.exp(k[i]! * scale);
  } else {
    for (let i = 0; i < k.length; i++) k[i] = k[i] === 0 ? 1 : 0;
  }
  return k; // diagonal entries held d²_ii = 0 and map to 1 in both branches
}

/**
 * Median of the n×n squared-distance matrix from its upper triangle `upper` (each off-diagonal value
 * occurs twice; the diagonal contributes n zeros when included). Reorders `upper`.
 */
export function medianOfDistances(upper: Float64Array, n: number, includeDiag: boolean): number {
  const z = includeDiag ? n : 0;
  const total = z + 2 * upper.length;
  if (total === 0) return 0;
  // element k of the sorted multiset (zeros first; all d² ≥ 0)
  const lo = Math.floor((total - 1) / 2);
  const hi = Math.floor(total / 2);
  const idx = (k: number): number => (k < z ? -1 : Math.floor((k - z) / 2));
  const jLo = idx(lo);
  const jHi = idx(hi);
  let vLo = 0;
  let vHi = 0;
  if (jLo >= 0) vLo = quickselect(upper, jLo);
  if (jHi >= 0) {
    if (jHi === jLo) vHi = vLo;
    else if (jLo >= 0) {
      // jHi = jLo + 1: smallest element right of the selected position
      let mn = Number.POSITIVE_INFINITY;
      for (let i = jLo + 1; i < upper.length; i++) if (upper[i]! < mn) mn = upper[i]!;
      vHi = mn;
    } else vHi = quickselect(upper, jHi);
  }
  return lo === hi ? vLo : (vLo + vHi) / 2;
}

/** k-th smallest (0-based) of `a`, partially reordering it so that a[k] holds it and a[k+1..] ≥ it. */
function quickselect(a: Float64Array, k: number): number {
  let left = 0;
  let right = a.length - 1;
  while (right > left) {
    // median of three pivot
    const mid = left + ((right - left) >> 1);
    const x = a[left]!;
    const y = a[mid]!;
    const w = a[right]!;
    const pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), w));
    let i = left;
    let j = right;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) right = j;
    else if (k >= i) left = i;
    else return a[k]!;
  }
  return a[k]!;
}

/** Centre a symmetric n×n Gram matrix in place: K − r1ᵀ − 1rᵀ + m (r = row means, m = grand mean). */
function centreGram(k: Float64Array, n: number): void {
  const r = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * n;
    for (let j = 0; j < n; j++) s += k[o + j]!;
    r[i] = s / n;
    total += s;
  }
  const m = total / (n * n);
  for (let i = 0; i < n; i++) {
    const o = i * n;
    const ri = r[i]! - m;
    for (let j = 0; j < n; j++) k[o + j] = k[o + j]! - ri - r[j]!;
  }
}

function biasedGramTerms(k: Float64Array, l: Float64Array, n: number): HsicTerms {
  centreGram(k, n);
  centreGram(l, n);
  let xy = 0;
  let xx = 0;
  let yy = 0;
  for (let i = 0; i < k.length; i++) {
    const a = k[i]!;
    const b = l[i]!;
    xy += a * b;
    xx += a * a;
    yy += b * b;
  }
  return { xy, xx, yy };
}

function unbiasedGramTerms(k: Float64Array, l: Float64Array, n: number): HsicTerms {
  const rk = new Float64Array(n);
  const rl = new Float64Array(n);
  let trKL = 0;
  let trKK = 0;
  let trLL = 0;
  let sumK = 0;
  let sumL = 0;
  for (let i = 0; i < n; i++) {
    const o = i * n;
    let sk = 0;
    let sl = 0;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const a = k[o + j]!;
      const b = l[o + j]!;
      sk += a;
      sl += b;
      trKL += a * b;
      trKK += a * a;
      trLL += b * b;
    }
    rk[i] = sk;
    rl[i] = sl;
    sumK += sk;
    sumL += sl;
  }
  return {
    xy: hsic1(trKL, sumK, sumL, dot(rk, rl), n),
    xx: hsic1(trKK, sumK, sumK, dot(rk, rk), n),
    yy: hsic1(trLL, sumL, sumL, dot(rl, rl), n),
  };
}
