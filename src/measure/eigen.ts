/**
 * Symmetric eigen-decomposition for the trajectory embeddings (docs/methods.md §10.4): all eigenvalues and
 * the eigenvectors of a chosen few, in float64.
 *
 * Why our own solver: ml-matrix's `EigenvalueDecomposition` (a JAMA port: tred2 + tql2) always
 * accumulates all m eigenvectors through `Matrix.get/set` calls — ≈ 9m³ flops on boxed 2-D arrays,
 * minutes at m = 2,000 — while InPCA and weight PCA need only k ≪ m eigenvectors. Here:
 * 1. Householder tridiagonalisation (EISPACK tred2 without accumulating Q; the reflectors are kept)
 *    on a flat row-major Float64Array, lower triangle only, with a row-oriented symmetric
 *    matrix-vector product so every inner loop is contiguous: ≈ (4/3) m³ flops.
 * 2. All eigenvalues of the tridiagonal matrix by the implicit QL method with Wilkinson shifts
 *    (EISPACK tql1 / Numerical Recipes tqli without vectors): O(m²).
 * 3. Eigenvectors of the k wanted eigenvalues by inverse iteration on the tridiagonal matrix (LU with
 *    partial pivoting, as LAPACK dstein), re-orthogonalised against the vectors of nearby
 *    eigenvalues (|Δλ| ≤ 1e-3 ‖T‖), then back-transformed by the stored reflectors: O(k m²).
 *
 * {@link largestMagnitudeEigen} skips step 1 when only the k eigenpairs of largest |λ| are needed
 * (InPCA above 200 points): Lanczos with full reorthogonalisation, O(j m²) for j steps.
 */

/** Eigenvalues (all m, ascending) and the requested unit eigenvectors. */
export interface SymmetricEigen {
  /** All eigenvalues, ascending. */
  readonly values: Float64Array;
  /** Indices into `values` of the computed vectors, in the order requested. */
  readonly selected: readonly number[];
  /** Unit eigenvectors (length m) for `selected`, sign fixed so the largest-|·| entry is positive. */
  readonly vectors: Float64Array[];
}

/**
 * Eigen-decomposition of the symmetric m × m row-major matrix `a` (only its lower triangle is read;
 * `a` is not modified). `select(values)` picks which eigenvectors to compute from the ascending
 * eigenvalues (default: none).
 */
export function symmetricEigen(
  a: Float64Array | Float32Array,
  m: number,
  select: (values: Float64Array) => readonly number[] = () => [],
): SymmetricEigen {
  if (a.length !== m * m) throw new Error(`symmetricEigen: expected ${m * m} values, got ${a.length}`);
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i] as number)) throw new Error(`symmetricEigen: non-finite entry at ${i}`);
  }
  if (m === 0) return { values: new Float64Array(0), selected: [], vectors: [] };
  const w = Float64Array.from(a);
  const d = new Float64Array(m);
  const e = new Float64Array(m); // e[i] couples i and i − 1
  const h = new Float64Array(m); // reflector scale of row i (0: none)
  tridiagonalize(w, m, d, e, h);
  const values = Float64Array.from(d);
  const off = Float64Array.from(e);
  tridiagonalEigenvalues(values, off);
  values.sort();
  const selected = [...select(values)];
  let tnorm = 0;
  for (let i = 0; i < m; i++) {
    tnorm = Math.max(tnorm, Math.abs(d[i] as number) + Math.abs(e[i] as number) + Math.abs(e[i + 1] ?? 0));
  }
  const vectors: Float64Array[] = [];
  const tridiagonalVectors: Float64Array[] = [];
  const lambdas: number[] = [];
  for (const idx of selected) {
    const lambda = values[idx];
    if (lambda === undefined) throw new Error(`symmetricEigen: selected index ${idx} out of range`);
    const near = tridiagonalVectors.filter(
      (_, j) => Math.abs((lambdas[j] as number) - lambda) <= 1e-3 * tnorm,
    );
    const y = inverseIteration(d, e, lambda, tnorm, near, vectors.length);
    const x = backTransform(w, m, h, y);
    fixSign(x);
    vectors.push(x);
    tridiagonalVectors.push(y);
    lambdas.push(lambda);
  }
  return { values, selected, vectors };
}

/**
 * Householder reduction of the lower triangle of `a` to tridiagonal form (d, e); reflector i (acting
 * on indices 0..i−1) is left in row i of `a` with scale h[i].
 */
function tridiagonalize(a: Float64Array, m: number, d: Float64Array, e: Float64Array, h: Float64Array): void {
  const p = new Float64Array(m);
  for (let i = m - 1; i > 0; i--) {
    const l = i - 1;
    const ri = i * m;
    let hh = 0;
    if (l > 0) {
      let scale = 0;
      for (let k = 0; k <= l; k++) scale += Math.abs(a[ri + k] as number);
      if (scale === 0) {
        e[i] = a[ri + l] as number;
      } else {
        for (let k = 0; k <= l; k++) {
          const v = (a[ri + k] as number) / scale;
          a[ri + k] = v;
          hh += v * v;
        }
        const f = a[ri + l] as number;
        const g = f >= 0 ? -Math.sqrt(hh) : Math.sqrt(hh);
        e[i] = scale * g;
        hh -= f * g;
        a[ri + l] = f - g;
        // p = A u / H over the leading (l+1) block, lower triangle read row by row.
        p.fill(0, 0, l + 1);
        for (let j = 0; j <= l; j++) {
          const rj = j * m;
          const uj = a[ri + j] as number;
          let s = 0;
          for (let k = 0; k < j; k++) {
            const ajk = a[rj + k] as number;
            s += ajk * (a[ri + k] as number);
            p[k] = (p[k] as number) + ajk * uj;
          }
          p[j] = (p[j] as number) + s + (a[rj + j] as number) * uj;
        }
        let f2 = 0;
        for (let j = 0; j <= l; j++) {
          const pj = (p[j] as number) / hh;
          p[j] = pj;
          f2 += pj * (a[ri + j] as number);
        }
        const kk = f2 / (hh + hh);
        for (let j = 0; j <= l; j++) p[j] = (p[j] as number) - kk * (a[ri + j] as number);
        // A ← A − u qᵀ − q uᵀ on the lower triangle.
        for (let j = 0; j <= l; j++) {
          const rj = j * m;
          const uj = a[ri + j] as number;
          const qj = p[j] as number;
          for (let k = 0; k <= j; k++) {
            a[rj + k] = (a[rj + k] as number) - (uj * (p[k] as number) + qj * (a[ri + k] as number));
          }
        }
      }
    } else {
      e[i] = a[ri + l] as number;
    }
    h[i] = hh;
  }
  e[0] = 0;
  for (let i = 0; i < m; i++) d[i] = a[i * m + i] as number;
}

/** Implicit QL with shifts on (d, e) in place; on return d holds the eigenvalues (unsorted). */
function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): void {
  const n = d.length;
  for (let i = 1; i < n; i++) e[i - 1] = e[i] as number;
  e[n - 1] = 0;
  for (let l = 0; l < n; l++) {
    let iter = 0;
    let m: number;
    do {
      for (m = l; m < n - 1; m++) {
        const dd = Math.abs(d[m] as number) + Math.abs(d[m + 1] as number);
        if (Math.abs(e[m] as number) <= Number.EPSILON * dd) break;
      }
      if (m !== l) {
        if (iter++ === 100) throw new Error('symmetricEigen: QL iteration did not converge');
        let g = ((d[l + 1] as number) - (d[l] as number)) / (2 * (e[l] as number));
        let r = Math.hypot(g, 1);
        g = (d[m] as number) - (d[l] as number) + (e[l] as number) / (g + (g >= 0 ? r : -r));
        let s = 1;
        let c = 1;
        let p = 0;
        let i: number;
        let underflow = false;
        for (i = m - 1; i >= l; i--) {
          const f = s * (e[i] as number);
          const b = c * (e[i] as number);
          r = Math.hypot(f, g);
          e[i + 1] = r;
          if (r === 0) {
            d[i + 1] = (d[i + 1] as number) - p;
            e[m] = 0;
            underflow = true;
            break;
          }
          s = f / r;
          c = g / r;
          g = (d[i + 1] as number) - p;
          r = ((d[i] as number) - g) * s + 2 * c * b;
          p = s * r;
          d[i + 1] = g + p;
          g = c * r - b;
        }
        if (underflow) continue;
        d[l] = (d[l] as number) - p;
        e[l] = g;
        e[m] = 0;
      }
    } while (m !== l);
  }
}

/**
 * Unit eigenvector of the tridiagonal (d, e) (e[i] couples i, i−1) for eigenvalue `lambda`: a few
 * steps of inverse iteration, orthogonalised against `against` (vectors of nearby eigenvalues).
 */
function inverseIteration(
  d: Float64Array,
  e: Float64Array,
  lambda: number,
  tnorm: number,
  against: readonly Float64Array[],
  salt: number,
): Float64Array {
  const n = d.length;
  const eps = Number.EPSILON * (tnorm > 0 ? tnorm : 1); // T = 0: any positive shift works
  // LU of T − λI with partial pivoting (dgttrf): rows hold diagonal u0, super u1, super-super u2.
  const u0 = new Float64Array(n);
  const u1 = new Float64Array(n);
  const u2 = new Float64Array(n);
  const mult = new Float64Array(n);
  const swap = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    u0[i] = (d[i] as number) - lambda;
    u1[i] = i + 1 < n ? (e[i + 1] as number) : 0;
    u2[i] = 0;
  }
  for (let i = 0; i < n - 1; i++) {
    const sub = e[i + 1] as number; // T[i+1][i]
    if (Math.abs(u0[i] as number) >= Math.abs(sub)) {
      const piv = (u0[i] as number) === 0 ? eps : (u0[i] as number);
      u0[i] = piv;
      const f = sub / piv;
      mult[i] = f;
      u0[i + 1] = (u0[i + 1] as number) - f * (u1[i] as number);
    } else {
      // swap rows i and i+1
      swap[i] = 1;
      const f = (u0[i] as number) / sub;
      mult[i] = f;
      const r0 = u1[i] as number; // row i: [u0, u1, 0]; row i+1: [sub, d_{i+1}-λ, e_{i+2}]
      const nextDiag = u0[i + 1] as number;
      const nextSup = u1[i + 1] as number;
      u0[i] = sub;
      u1[i] = nextDiag;
      u2[i] = nextSup;
      u0[i + 1] = r0 - f * nextDiag;
      u1[i + 1] = -f * nextSup;
    }
  }
  if ((u0[n - 1] as number) === 0) u0[n - 1] = eps;
  for (let i = 0; i < n; i++) if (Math.abs(u0[i] as number) < eps) u0[i] = u0[i]! < 0 ? -eps : eps;
  const x = new Float64Array(n);
  let seed = 0x9e3779b9 ^ (salt * 7919);
  for (let i = 0; i < n; i++) {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    x[i] = seed / 4294967296 - 0.5;
  }
  const orth = (v: Float64Array): void => {
    for (const q of against) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (q[i] as number) * (v[i] as number);
      for (let i = 0; i < n; i++) v[i] = (v[i] as number) - s * (q[i] as number);
    }
  };
  const normalize = (v: Float64Array): void => {
    let s = 0;
    for (let i = 0; i < n; i++) s += (v[i] as number) ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = 0; i < n; i++) v[i] = (v[i] as number) * inv;
  };
  orth(x);
  normalize(x);
  for (let it = 0; it < 4; it++) {
    // forward: apply L⁻¹ with the recorded swaps
    for (let i = 0; i < n - 1; i++) {
      if (swap[i]) {
        const t = x[i] as number;
        x[i] = x[i + 1] as number;
        x[i + 1] = t - (mult[i] as number) * (x[i] as number);
      } else {
        x[i + 1] = (x[i + 1] as number) - (mult[i] as number) * (x[i] as number);
      }
    }
    // back substitution with U
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i] as number;
      if (i + 1 < n) s -= (u1[i] as number) * (x[i + 1] as number);
      if (i + 2 < n) s -= (u2[i] as number) * (x[i + 2] as number);
      x[i] = s / (u0[i] as number);
    }
    orth(x);
    normalize(x);
  }
  return x;
}

/** x = H_{m−1} ⋯ H_1 y: the eigenvector of the original matrix from that of the tridiagonal one. */
function backTransform(a: Float64Array, m: number, h: Float64Array, y: Float64Array): Float64Array {
  const x = Float64Array.from(y);
  for (let i = 1; i < m; i++) {
    const hh = h[i] as number;
    if (hh === 0) continue;
    const ri = i * m;
    let s = 0;
    for (let k = 0; k < i; k++) s += (a[ri + k] as number) * (x[k] as number);
    const f = s / hh;
    for (let k = 0; k < i; k++) x[k] = (x[k] as number) - f * (a[ri + k] as number);
  }
  return x;
}

function fixSign(x: Float64Array): void {
  let best = 0;
  for (let i = 0; i < x.length; i++) if (Math.abs(x[i] as number) > Math.abs(x[best] as number)) best = i;
  if ((x[best] as number) < 0) for (let i = 0; i < x.length; i++) x[i] = -(x[i] as number);
}

/**
 * The k eigenpairs of largest |λ| of the symmetric m × m row-major matrix `a` (all of it is read) by
 * the Lanczos method with full reorthogonalisation: O(j m²) for j Lanczos steps instead of the
 * (4/3) m³ of {@link symmetricEigen}. Every few steps the tridiagonal T_j is solved with
 * {@link symmetricEigen}; the Ritz pairs are accepted when each of the k residuals
 * ‖a x − θ x‖ = |β_j y_j| is at most `tol` · max|θ| (default 1e-13); the vectors are then refined
 * by one Rayleigh–Ritz step on the Krylov basis. An exhausted Krylov space (β ≈ 0, e.g. a matrix of
 * low rank) continues from a fresh vector orthogonal to the basis, so eigenvalues 0 are found too.
 * Returns the k eigenvalues sorted by |λ| descending (ties: larger signed value first) and their unit
 * eigenvectors, sign fixed so the largest-|·| entry is positive.
 */
export function largestMagnitudeEigen(
  a: Float64Array,
  m: number,
  k: number,
  tol = 1e-13,
): { values: number[]; vectors: Float64Array[] } {
  if (a.length !== m * m) throw new Error(`largestMagnitudeEigen: expected ${m * m} values, got ${a.length}`);
  if (!Number.isInteger(k) || k < 1 || k > m) {
    throw new Error(`largestMagnitudeEigen: k must be an integer in [1, ${m}], got ${k}`);
  }
  let anorm = 0;
  for (let i = 0; i < m * m; i++) {
    const v = a[i] as number;
    if (!Number.isFinite(v)) throw new Error(`largestMagnitudeEigen: non-finite entry at ${i}`);
    anorm = Math.max(anorm, Math.abs(v));
  }
  anorm *= m; // ≥ ‖a‖₂
  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = []; // beta[j] couples basis j and j + 1
  let seed = 0x2545f491;
  const random = (): Float64Array => {
    const x = new Float64Array(m);
    for (let i = 0; i < m; i++) {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      x[i] = seed / 4294967296 - 0.5;
    }
    return x;
  };
  /** Orthogonalise x against the basis twice; returns its norm afterwards. */
  const orthogonalise = (x: Float64Array): number => {
    for (let pass = 0; pass < 2; pass++) {
      for (const q of basis) {
        let s = 0;
        for (let i = 0; i < m; i++) s += (q[i] as number) * (x[i] as number);
        for (let i = 0; i < m; i++) x[i] = (x[i] as number) - s * (q[i] as number);
      }
    }
    let s = 0;
    for (let i = 0; i < m; i++) s += (x[i] as number) ** 2;
    return Math.sqrt(s);
  };
  const w = new Float64Array(m);
  let next = random();
  let norm = orthogonalise(next);
  const ritz = (): { values: number[]; order: number[]; vectors: Float64Array[]; residual: number } => {
    const j = basis.length;
    const t = new Float64Array(j * j);
    for (let i = 0; i < j; i++) {
      t[i * j + i] = alpha[i] as number;
      if (i + 1 < j) {
        t[i * j + i + 1] = beta[i] as number;
        t[(i + 1) * j + i] = beta[i] as number;
      }
    }
    const kk = Math.min(k, j);
    const eig = symmetricEigen(t, j, (values) =>
      [...values.keys()]
        .sort(
          (x, y) =>
            Math.abs(values[y] as number) - Math.abs(values[x] as number) ||
            (values[y] as number) - (values[x] as number),
        )
        .slice(0, kk),
    );
    const values = eig.selected.map((i) => eig.values[i] as number);
    const last = beta[j - 1] ?? 0;
    let residual = 0;
    for (const y of eig.vectors) residual = Math.max(residual, Math.abs(last * (y[j - 1] as number)));
    return { values, order: [...eig.selected], vectors: eig.vectors, residual };
  };
  for (;;) {
    const j = basis.length;
    if (norm <= 1e-14 * anorm || !(norm > 0)) {
      // Krylov space exhausted: restart from a fresh direction (decoupled in T).
      if (j > 0) beta[j - 1] = 0;
      if (j === m) break;
      next = random();
      norm = orthogonalise(next);
      continue;
    }
    const q = next;
    for (let i = 0; i < m; i++) q[i] = (q[i] as number) / norm;
    basis.push(q);
    // w = a q
    for (let r = 0; r < m; r++) {
      let s = 0;
      const o = r * m;
      for (let c = 0; c < m; c++) s += (a[o + c] as number) * (q[c] as number);
      w[r] = s;
    }
    let al = 0;
    for (let i = 0; i < m; i++) al += (q[i] as number) * (w[i] as number);
    alpha.push(al);
    next = Float64Array.from(w);
    norm = orthogonalise(next);
    beta.push(norm);
    const steps = basis.length;
    if (steps === m || (steps >= Math.min(m, 2 * k + 8) && steps % 5 === 0)) {
      const r = ritz();
      const scale = Math.max(...r.values.map(Math.abs), Number.MIN_VALUE);
      if (steps === m || (r.values.length === k && r.residual <= tol * scale)) {
        const vectors = r.vectors.map((y) => {
          const x = new Float64Array(m);
          y.forEach((c, b) => {
            const v = basis[b] as Float64Array;
            for (let i = 0; i < m; i++) x[i] = (x[i] as number) + c * (v[i] as number);
          });
          let s = 0;
          for (let i = 0; i < m; i++) s += (x[i] as number) ** 2;
          const inv = 1 / Math.sqrt(s);
          for (let i = 0; i < m; i++) x[i] = (x[i] as number) * inv;
          fixSign(x);
          return x;
        });
        return { values: r.values, vectors };
      }
    }
  }
  // unreachable in practice (steps === m returns above)
  const full = symmetricEigen(a, m, (values) =>
    [...values.keys()]
      .sort((x, y) => Math.abs(values[y] as number) - Math.abs(values[x] as number))
      .slice(0, k),
  );
  return { values: full.selected.map((i) => full.values[i] as number), vectors: full.vectors };
}
