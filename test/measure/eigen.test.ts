import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { findPython } from '../../src/bench/python.js';
import { largestMagnitudeEigen, symmetricEigen } from '../../src/measure/eigen.js';
import { fixturePath } from '../helpers/fixtures.js';

/** Deterministic uniform(−0.5, 0.5) stream. */
function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

function randomSymmetric(m: number, seed: number): Float64Array {
  const r = uniform(seed);
  const a = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j <= i; j++) {
      const v = r();
      a[i * m + j] = v;
      a[j * m + i] = v;
    }
  }
  return a;
}

/** max_i |(A v − λ v)_i| */
function residual(a: Float64Array, m: number, lambda: number, v: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < m; j++) s += (a[i * m + j] as number) * (v[j] as number);
    worst = Math.max(worst, Math.abs(s - lambda * (v[i] as number)));
  }
  return worst;
}

const all = (values: Float64Array) => [...values.keys()];

describe('symmetricEigen', () => {
  it('analytic: the path-graph Laplacian-like tridiagonal matrix 2I − (shift + shiftᵀ)', () => {
    const m = 12;
    const a = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      a[i * m + i] = 2;
      if (i + 1 < m) {
        a[i * m + i + 1] = -1;
        a[(i + 1) * m + i] = -1;
      }
    }
    const { values, vectors } = symmetricEigen(a, m, all);
    // λ_j = 2 − 2 cos(jπ/(m+1)), j = 1..m (ascending)
    for (let j = 1; j <= m; j++) {
      expect(Math.abs((values[j - 1] as number) - (2 - 2 * Math.cos((j * Math.PI) / (m + 1))))).toBeLessThan(
        1e-13,
      );
    }
    // eigenvector j: sin(i j π/(m+1)), normalised
    for (let j = 1; j <= m; j++) {
      const v = vectors[j - 1] as Float64Array;
      const exact = Array.from({ length: m }, (_, i) => Math.sin(((i + 1) * j * Math.PI) / (m + 1)));
      const norm = Math.hypot(...exact);
      // up to sign (the largest |entry| occurs twice, mirrored, so the sign convention is arbitrary here)
      const sign = Math.sign(exact.reduce((s, x, i) => s + x * (v[i] as number), 0));
      exact.forEach((x, i) => expect(Math.abs((v[i] as number) - (sign * x) / norm)).toBeLessThan(1e-12));
    }
  });

  it('diagonal and rank-one matrices, m = 1 and m = 2', () => {
    const diag = Float64Array.from([3, 0, 0, 0, -1, 0, 0, 0, 2]);
    expect([...symmetricEigen(diag, 3).values]).toEqual([-1, 2, 3]);
    const u = [1, 2, 2];
    const rank1 = Float64Array.from(
      { length: 9 },
      (_, i) => (u[Math.floor(i / 3)] as number) * (u[i % 3] as number),
    );
    const r = symmetricEigen(rank1, 3, (v) => [v.length - 1]);
    expect(r.values[2]).toBeCloseTo(9, 13);
    expect(Math.abs(r.values[0] as number)).toBeLessThan(1e-14);
    [1 / 3, 2 / 3, 2 / 3].forEach((x, i) => expect(r.vectors[0]![i]).toBeCloseTo(x, 14));
    expect([...symmetricEigen(Float64Array.of(-4), 1, all).values]).toEqual([-4]);
    const two = symmetricEigen(Float64Array.of(0, 1, 1, 0), 2, all);
    expect(two.values[0]).toBeCloseTo(-1, 15);
    expect(two.values[1]).toBeCloseTo(1, 15);
  });

  it('random symmetric matrices: residuals, orthogonality, trace and Frobenius norm', () => {
    for (const m of [5, 40, 150]) {
      const a = randomSymmetric(m, m);
      const { values, vectors, selected } = symmetricEigen(a, m, all);
      let trace = 0;
      let frob = 0;
      for (let i = 0; i < m; i++) trace += a[i * m + i] as number;
      for (const x of a) frob += x * x;
      expect(Math.abs(values.reduce((s, x) => s + x, 0) - trace)).toBeLessThan(1e-11 * m);
      expect(Math.abs(values.reduce((s, x) => s + x * x, 0) - frob)).toBeLessThan(1e-11 * frob);
      for (let i = 1; i < m; i++) expect(values[i]).toBeGreaterThanOrEqual(values[i - 1] as number);
      selected.forEach((idx, c) => {
        expect(residual(a, m, values[idx] as number, vectors[c]!)).toBeLessThan(1e-12 * m);
      });
      for (let p = 0; p < m; p += 7) {
        for (let q = 0; q < m; q += 5) {
          let s = 0;
          for (let i = 0; i < m; i++) s += vectors[p]![i]! * vectors[q]![i]!;
          expect(Math.abs(s - (p === q ? 1 : 0))).toBeLessThan(1e-10);
        }
      }
    }
  });

  it('repeated eigenvalues: orthonormal eigenvectors spanning the eigenspace', () => {
    // Q diag(1, 1, 1, 5, 5, −2) Qᵀ with a random orthogonal Q (Householder of a random vector)
    const m = 6;
    const r = uniform(9);
    const h = Array.from({ length: m }, r);
    const hn = h.reduce((s, x) => s + x * x, 0);
    const q = (i: number, j: number) => (i === j ? 1 : 0) - (2 * h[i]! * h[j]!) / hn;
    const lam = [1, 1, 1, 5, 5, -2];
    const a = new Float64Array(m * m);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < m; j++) {
        let s = 0;
        for (let k = 0; k < m; k++) s += q(i, k) * lam[k]! * q(j, k);
        a[i * m + j] = s;
      }
    }
    const { values, vectors, selected } = symmetricEigen(a, m, all);
    [-2, 1, 1, 1, 5, 5].forEach((x, i) => expect(Math.abs(values[i]! - x)).toBeLessThan(1e-13));
    selected.forEach((idx, c) => expect(residual(a, m, values[idx]!, vectors[c]!)).toBeLessThan(1e-12));
    for (let p = 0; p < m; p++) {
      for (let s2 = 0; s2 < m; s2++) {
        let s = 0;
        for (let i = 0; i < m; i++) s += vectors[p]![i]! * vectors[s2]![i]!;
        expect(Math.abs(s - (p === s2 ? 1 : 0))).toBeLessThan(1e-12);
      }
    }
  });
});

const probe = await findPython(['numpy']);
if (probe.python === null)
  console.warn(`numpy cross-check skipped: no Python with numpy (${probe.tried.join('; ')})`);

describe.skipIf(probe.python === null)('numpy.linalg.eigh (fixtures/reference/inpca_reference.py)', () => {
  it('all eigenvalues of random symmetric matrices agree to 1e-12', () => {
    const script = fixturePath('reference', 'inpca_reference.py');
    for (const m of [3, 17, 64]) {
      const a = randomSymmetric(m, 100 + m);
      const rows = Array.from({ length: m }, (_, i) => Array.from(a.subarray(i * m, (i + 1) * m)));
      const res = spawnSync(probe.python as string, [script], {
        input: JSON.stringify({ a: rows }),
        encoding: 'utf8',
      });
      expect(res.status, res.stderr).toBe(0);
      const ref = (JSON.parse(res.stdout) as { eigh: number[] }).eigh;
      const { values } = symmetricEigen(a, m);
      ref.forEach((x, i) => expect(Math.abs(values[i]! - x)).toBeLessThan(1e-12));
    }
  });
});

describe('largestMagnitudeEigen', () => {
  it('matches the full solver on random symmetric matrices, k up to m', () => {
    for (const [m, k, seed] of [
      [40, 4, 99],
      [25, 25, 100],
      [60, 1, 101],
    ] as const) {
      const a = randomSymmetric(m, seed);
      const full = symmetricEigen(a, m).values;
      const expected = Array.from(full).sort((x, y) => Math.abs(y) - Math.abs(x) || y - x);
      const top = largestMagnitudeEigen(a, m, k);
      expect(top.values).toHaveLength(k);
      top.values.forEach((l, i) => expect(Math.abs(l - expected[i]!)).toBeLessThan(1e-12));
      top.vectors.forEach((v, c) => {
        for (let i = 0; i < m; i++) {
          let s = 0;
          for (let j = 0; j < m; j++) s += a[i * m + j]! * v[j]!;
          expect(Math.abs(s - top.values[c]! * v[i]!)).toBeLessThan(1e-10);
        }
      });
    }
    expect(() => largestMagnitudeEigen(new Float64Array(4), 2, 3)).toThrow(/k must be/);
  });
});
