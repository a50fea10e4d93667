/**
 * PCA of weight trajectories (Li et al. 2018; docs/methods.md §10.1).
 *
 * Rows are x_t = θ_t − θ_ref for all checkpoints of all runs (T rows, P parameters). The reference
 * is `'mean'` (default: the mean checkpoint, i.e. ordinary centred PCA), `'first'` (the first
 * checkpoint) or a given vector. With a fixed reference the decomposition is of the second moment
 * about θ_ref (no further centring), so the directions describe displacement from θ_ref.
 *
 * With P ≫ T the P × P covariance is never formed: the T × T Gram matrix G = X Xᵀ (float64,
 * accumulated over chunks of 4,096 parameters) is decomposed, G = Σ λ_k u_k u_kᵀ. Then
 * coordinates are x_tk = sqrt(λ_k) u_tk, the unit components are c_k = Xᵀ u_k / sqrt(λ_k), and the
 * explained variance ratio is λ_k / trace(G) = λ_k / Σ_t ‖x_t‖². Cost O(T² P) time, O(T² + 4096 T)
 * memory, plus O(k T P) for the components.
 */
import { symmetricEigen } from './eigen.js';

/** Options of {@link trajectoryPca}. */
export interface TrajectoryPcaOptions {
  /** Number of components k. Default 2 (or the number of checkpoints when smaller). */
  components?: number;
  /** θ_ref: 'mean' (default), 'first', or a parameter vector. */
  reference?: Float32Array | 'first' | 'mean';
}

/** A PCA of a weight trajectory: coordinates of the checkpoints, components, explained variance. */
export interface TrajectoryPca {
  /** T × k row-major coordinates of the checkpoints. */
  readonly coordinates: Float64Array;
  readonly checkpoints: number;
  /** λ_k / trace(G) for the k components (sums to ≤ 1). */
  readonly explainedVarianceRatio: number[];
  /** λ_k: squared singular values of X (sum of squared coordinates along axis k). */
  readonly eigenvalues: number[];
  /** The k unit principal directions c_k (length P each). */
  readonly components: Float64Array[];
  /** θ_ref (float64, length P). */
  readonly reference: Float64Array;
}

const CHUNK = 4096;

/** Weight-trajectory PCA via the T × T Gram matrix (see the module comment). */
export function trajectoryPca(
  checkpoints: readonly Float32Array[],
  options: TrajectoryPcaOptions = {},
): TrajectoryPca {
  const t = checkpoints.length;
  if (t === 0) throw new Error('trajectoryPca: no checkpoints');
  const p = (checkpoints[0] as Float32Array).length;
  checkpoints.forEach((c, i) => {
    if (c.length !== p)
      throw new Error(`trajectoryPca: checkpoint ${i} has ${c.length} parameters, expected ${p}`);
  });
  const k = options.components ?? Math.min(2, t);
  if (!Number.isInteger(k) || k < 1 || k > t) {
    throw new Error(`trajectoryPca: components must be an integer in [1, ${t}], got ${k}`);
  }
  const ref = referenceOf(checkpoints, p, options.reference ?? 'mean');
  // G = X Xᵀ over parameter chunks (lower triangle, then mirrored).
  const g = new Float64Array(t * t);
  const block = new Float64Array(t * CHUNK);
  for (let start = 0; start < p; start += CHUNK) {
    const len = Math.min(CHUNK, p - start);
    for (let r = 0; r < t; r++) {
      const c = checkpoints[r] as Float32Array;
      const o = r * CHUNK;
      for (let j = 0; j < len; j++) block[o + j] = (c[start + j] as number) - (ref[start + j] as number);
    }
    for (let a = 0; a < t; a++) {
      const oa = a * CHUNK;
      for (let b = 0; b <= a; b++) {
        const ob = b * CHUNK;
        let s = 0;
        for (let j = 0; j < len; j++) s += (block[oa + j] as number) * (block[ob + j] as number);
        g[a * t + b] = (g[a * t + b] as number) + s;
      }
    }
  }
  let trace = 0;
  for (let a = 0; a < t; a++) {
    trace += g[a * t + a] as number;
    for (let b = 0; b < a; b++) g[b * t + a] = g[a * t + b] as number;
  }
  const eig = symmetricEigen(g, t, (values) => [...values.keys()].reverse().slice(0, k));
  const eigenvalues = eig.selected.map((i) => Math.max(0, eig.values[i] as number));
  const coordinates = new Float64Array(t * k);
  const directions: Float64Array[] = [];
  eig.vectors.forEach((u, c) => {
    const s = Math.sqrt(eigenvalues[c] as number);
    for (let r = 0; r < t; r++) coordinates[r * k + c] = (u[r] as number) * s;
    const dir = new Float64Array(p);
    if (s > 0) {
      for (let r = 0; r < t; r++) {
        const ur = (u[r] as number) / s;
        const cr = checkpoints[r] as Float32Array;
        for (let j = 0; j < p; j++)
          dir[j] = (dir[j] as number) + ur * ((cr[j] as number) - (ref[j] as number));
      }
    }
    directions.push(dir);
  });
  return {
    coordinates,
    checkpoints: t,
    explainedVarianceRatio: eigenvalues.map((l) => (trace > 0 ? l / trace : 0)),
    eigenvalues,
    components: directions,
    reference: ref,
  };
}

function referenceOf(
  checkpoints: readonly Float32Array[],
  p: number,
  reference: Float32Array | 'first' | 'mean',
): Float64Array {
  if (reference === 'first') return Float64Array.from(checkpoints[0] as Float32Array);
  if (reference === 'mean') {
    const ref = new Float64Array(p);
    for (const c of checkpoints) for (let j = 0; j < p; j++) ref[j] = (ref[j] as number) + (c[j] as number);
    for (let j = 0; j < p; j++) ref[j] = (ref[j] as number) / checkpoints.length;
    return ref;
  }
  if (reference.length !== p) {
    throw new Error(`trajectoryPca: reference has ${reference.length} parameters, expected ${p}`);
  }
  return Float64Array.from(reference);
}

/** Coordinates (k numbers) of a parameter vector θ in the basis: c_kᵀ (θ − θ_ref), in float64. */
export function pcaProject(pca: TrajectoryPca, theta: Float32Array | Float64Array): number[] {
  const p = pca.reference.length;
  if (theta.length !== p) throw new Error(`pcaProject: expected ${p} parameters, got ${theta.length}`);
  return pca.components.map((dir) => {
    let s = 0;
    for (let j = 0; j < p; j++)
      s += (dir[j] as number) * ((theta[j] as number) - (pca.reference[j] as number));
    return s;
  });
}
