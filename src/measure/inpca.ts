/**
 * InPCA (intensive PCA; Quinn et al. 2019, Mao et al. 2024) of a trajectory distance matrix
 * (docs/methods.md §10.3).
 *
 * Given the m × m matrix D of Bhattacharyya distances d (not d²) between checkpoints,
 * W = −½ J D J with J = I − 11ᵀ/m (double centring: W_ij = −½ (D_ij − r_i − r_j + g), r = row means,
 * g = grand mean). W is symmetric but indefinite. Its eigenpairs (λ_k, v_k) are sorted by |λ_k|
 * descending; coordinates are x_ik = v_ik sqrt(|λ_k|). Negative λ give time-like axes: the embedded
 * squared distance is Σ_k sign(λ_k) (x_ik − x_jk)², which equals D_ij when all axes are kept.
 *
 * Explained stress of the first k axes: 1 − sqrt(1 − Σ_{i≤k} λ_i² / Σ_all λ_i²), with
 * Σ_all λ² = ‖W‖_F² computed directly from W.
 *
 * Out-of-sample projection ({@link inpcaProject}): for a new point with distances δ (m-vector) to the
 * embedded points, w_j = −½ (δ_j − mean(δ) − r_j + g) (the row W would gain) and
 * x_k = v_kᵀ w / (sign(λ_k) sqrt(|λ_k|)). For a point of the embedding, δ = D_i· gives w = W_i·
 * and v_kᵀ W_i· = λ_k v_ik, so it lands on x_ik exactly (up to rounding).
 *
 * Cost: up to m = 200, the full eigen-decomposition ({@link symmetricEigen}, ≈ (4/3) m³ flops plus
 * O(k m²)); above, the k eigenpairs of largest |λ| by Lanczos with full reorthogonalisation
 * ({@link largestMagnitudeEigen}, O(j m²) for j ≈ tens of steps), and the full `spectrum` only when
 * it is read.
 */
import type { Matrix } from './cka.js';
import { largestMagnitudeEigen, symmetricEigen } from './eigen.js';

/** Options of {@link inpca}. */
export interface InpcaOptions {
  /** Number of axes kept (k). Default 3 (or m when smaller). */
  components?: number;
}

/** An InPCA embedding of m points. */
export interface InpcaEmbedding {
  /** m × k row-major coordinates x_ik = v_ik sqrt(|λ_k|). */
  readonly coordinates: Float64Array;
  /** Number of points m. */
  readonly points: number;
  /** Number of axes k. */
  readonly components: number;
  /** The k eigenvalues of W kept, signed, sorted by |λ| descending. */
  readonly eigenvalues: number[];
  /** explainedStress[k] = explained stress of the first k + 1 axes. */
  readonly explainedStress: number[];
  /** Σ_all λ² = ‖W‖_F². */
  readonly totalSquaredEigenvalues: number;
  /**
   * All m eigenvalues of W, signed, sorted by |λ| descending. Above 200 points this is computed on
   * first access ((4/3) m³ flops: ≈ 12 s at m = 2,000), not by {@link inpca} itself.
   */
  readonly spectrum: Float64Array;
  /** The k unit eigenvectors v_k of W (length m each). */
  readonly vectors: Float64Array[];
  /** Row means r of D (for projection). */
  readonly rowMeans: Float64Array;
  /** Grand mean g of D (for projection). */
  readonly grandMean: number;
}

/**
 * InPCA embedding of the m × m distance matrix `d` (symmetric, zero diagonal; only symmetry within
 * 1e-9 relative is checked). See the module comment.
 */
export function inpca(d: Matrix, options: InpcaOptions = {}): InpcaEmbedding {
  const m = d.rows;
  if (d.cols !== m) throw new Error(`inpca: distance matrix must be square, got ${d.rows} × ${d.cols}`);
  if (d.data.length !== m * m) throw new Error(`inpca: expected ${m * m} values, got ${d.data.length}`);
  if (m < 1) throw new Error('inpca: no points');
  const k = options.components ?? Math.min(3, m);
  if (!Number.isInteger(k) || k < 1 || k > m) {
    throw new Error(`inpca: components must be an integer in [1, ${m}], got ${k}`);
  }
  const data = d.data;
  let scale = 0;
  for (let i = 0; i < m * m; i++) {
    const v = data[i] as number;
    if (!Number.isFinite(v))
      throw new Error(`inpca: non-finite distance at (${Math.floor(i / m)}, ${i % m})`);
    scale = Math.max(scale, Math.abs(v));
  }
  for (let i = 0; i < m; i++) {
    for (let j = i + 1; j < m; j++) {
      if (Math.abs((data[i * m + j] as number) - (data[j * m + i] as number)) > 1e-9 * scale) {
        throw new Error(`inpca: distance matrix is not symmetric at (${i}, ${j})`);
      }
    }
  }
  const rowMeans = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < m; j++) s += data[i * m + j] as number;
    rowMeans[i] = s / m;
  }
  let grandMean = 0;
  for (let i = 0; i < m; i++) grandMean += rowMeans[i] as number;
  grandMean /= m;
  const w = new Float64Array(m * m);
  let frob = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      const v =
        -0.5 * ((data[i * m + j] as number) - (rowMeans[i] as number) - (rowMeans[j] as number) + grandMean) +
        0; // + 0 turns −0 into +0
      w[i * m + j] = v;
      frob += v * v;
    }
  }
  let eigenvalues: number[];
  let vectors: Float64Array[];
  let spectrum: Float64Array | null = null;
  if (m <= FULL_SOLVE_MAX) {
    const eig = symmetricEigen(w, m, (values) => byMagnitude(values).slice(0, k));
    spectrum = Float64Array.from(byMagnitude(eig.values), (i) => eig.values[i] as number);
    eigenvalues = eig.selected.map((i) => eig.values[i] as number);
    vectors = eig.vectors;
  } else {
    ({ values: eigenvalues, vectors } = largestMagnitudeEigen(w, m, k));
  }
  const coordinates = new Float64Array(m * k);
  vectors.forEach((v, c) => {
    const s = Math.sqrt(Math.abs(eigenvalues[c] as number));
    for (let i = 0; i < m; i++) coordinates[i * k + c] = (v[i] as number) * s;
  });
  const explainedStress: number[] = [];
  let cum = 0;
  for (const lambda of eigenvalues) {
    cum += lambda * lambda;
    const frac = frob > 0 ? Math.min(1, cum / frob) : 0;
    explainedStress.push(1 - Math.sqrt(1 - frac));
  }
  return {
    coordinates,
    points: m,
    components: k,
    eigenvalues,
    explainedStress,
    totalSquaredEigenvalues: frob,
    // All m eigenvalues cost the (4/3) m³ tridiagonalisation: above FULL_SOLVE_MAX points they are
    // computed on first access only (W is kept for that).
    get spectrum(): Float64Array {
      if (spectrum === null) {
        const values = symmetricEigen(w, m).values;
        spectrum = Float64Array.from(byMagnitude(values), (i) => values[i] as number);
      }
      return spectrum;
    },
    vectors,
    rowMeans,
    grandMean,
  };
}

/**
 * Largest m solved by the full {@link symmetricEigen} (all eigenvalues at once); above it the k
 * eigenpairs come from {@link largestMagnitudeEigen} (Lanczos, O(j m²)) and `spectrum` is lazy.
 */
const FULL_SOLVE_MAX = 200;

/** Indices of `values` sorted by |value| descending (ties: larger signed value first). */
function byMagnitude(values: Float64Array): number[] {
  return [...values.keys()].sort(
    (a, b) =>
      Math.abs(values[b] as number) - Math.abs(values[a] as number) ||
      (values[b] as number) - (values[a] as number),
  );
}

/**
 * Out-of-sample coordinates (k numbers) of a new checkpoint from its distances `dNew` to the m
 * embedded points (see the module comment). Axes with λ = 0 get coordinate 0.
 */
export function inpcaProject(embedding: InpcaEmbedding, dNew: ArrayLike<number>): number[] {
  const m = embedding.points;
  if (dNew.length !== m) throw new Error(`inpcaProject: expected ${m} distances, got ${dNew.length}`);
  let mean = 0;
  for (let j = 0; j < m; j++) mean += dNew[j] as number;
  mean /= m;
  const w = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    w[j] = -0.5 * ((dNew[j] as number) - mean - (embedding.rowMeans[j] as number) + embedding.grandMean) + 0;
  }
  return embedding.vectors.map((v, k) => {
    const lambda = embedding.eigenvalues[k] as number;
    if (lambda === 0) return 0;
    let s = 0;
    for (let j = 0; j < m; j++) s += (v[j] as number) * (w[j] as number);
    return s / (Math.sign(lambda) * Math.sqrt(Math.abs(lambda)));
  });
}

/**
 * Embedded squared distance Σ_k sign(λ_k) (x_ik − x_jk)² between two coordinate vectors of an
 * embedding (equal to d_ij when all axes with λ ≠ 0 are kept).
 */
export function inpcaSquaredDistance(
  embedding: InpcaEmbedding,
  x: ArrayLike<number>,
  y: ArrayLike<number>,
): number {
  let s = 0;
  for (let k = 0; k < embedding.components; k++) {
    const dx = (x[k] as number) - (y[k] as number);
    s += Math.sign(embedding.eigenvalues[k] as number) * dx * dx;
  }
  return s;
}

/**
 * Successive eigenvalue ratios |λ_{k+1}| / |λ_k| of an embedding's spectrum (sorted by |λ|
 * descending): how fast the "hyper-ribbon" thins from one axis to the next. Axis k + 1's extent is
 * sqrt of the ratio times axis k's (coordinates scale with sqrt|λ|). A ratio after a zero eigenvalue
 * is 0. Length: max(0, eigenvalues.length − 1).
 */
export function widthRatios(eigenvalues: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let k = 0; k + 1 < eigenvalues.length; k++) {
    const a = Math.abs(eigenvalues[k] as number);
    out.push(a === 0 ? 0 : Math.abs(eigenvalues[k + 1] as number) / a);
  }
  return out;
}
