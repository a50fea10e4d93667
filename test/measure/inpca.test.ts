import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { findPython } from '../../src/bench/python.js';
import type { Matrix } from '../../src/measure/cka.js';
import { inpca, inpcaProject, inpcaSquaredDistance, widthRatios } from '../../src/measure/inpca.js';
import { fixturePath } from '../helpers/fixtures.js';

function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

/** m points in `dim` dimensions, coordinates uniform(−0.5, 0.5) · scale[axis]. */
function points(m: number, scales: readonly number[], seed: number): number[][] {
  const r = uniform(seed);
  return Array.from({ length: m }, () => scales.map((s) => s * r()));
}

/** d_ij = Σ_a signs[a] (x_ia − x_ja)². */
function distances(x: number[][], signs: readonly number[]): Matrix {
  const m = x.length;
  const data = new Float64Array(m * m);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < m; j++) {
      data[i * m + j] = signs.reduce((s, g, a) => s + g * (x[i]![a]! - x[j]![a]!) ** 2, 0);
    }
  }
  return { rows: m, cols: m, data };
}

const row = (e: { coordinates: Float64Array; components: number }, i: number) =>
  e.coordinates.subarray(i * e.components, (i + 1) * e.components);

describe('inpca', () => {
  it('recovers a Euclidean 3-D configuration from squared distances', () => {
    const x = points(25, [3, 2, 1], 1);
    const d = distances(x, [1, 1, 1]);
    const e = inpca(d, { components: 3 });
    // pairwise embedded squared distances reproduce d
    for (let i = 0; i < 25; i++) {
      for (let j = 0; j < 25; j++) {
        expect(Math.abs(inpcaSquaredDistance(e, row(e, i), row(e, j)) - d.data[i * 25 + j]!)).toBeLessThan(
          1e-9,
        );
      }
    }
    // eigenvalues = those of the centred Gram matrix Xc Xcᵀ (= eigenvalues of the 3 × 3 Xcᵀ Xc), all positive
    const mean = [0, 1, 2].map((a) => x.reduce((s, p) => s + p[a]!, 0) / 25);
    const c = [0, 1, 2].map((a) =>
      [0, 1, 2].map((b) => x.reduce((s, p) => s + (p[a]! - mean[a]!) * (p[b]! - mean[b]!), 0)),
    );
    const tr = c[0]![0]! + c[1]![1]! + c[2]![2]!;
    const sumLam = e.eigenvalues.reduce((s, l) => s + l, 0);
    expect(Math.abs(sumLam - tr)).toBeLessThan(1e-9);
    const frobC = c.flat().reduce((s, v) => s + v * v, 0);
    expect(Math.abs(e.eigenvalues.reduce((s, l) => s + l * l, 0) - frobC)).toBeLessThan(1e-9);
    for (const l of e.eigenvalues) expect(l).toBeGreaterThan(0);
    // the rest of the spectrum vanishes; 3 axes explain all the stress
    for (let k = 3; k < 25; k++) expect(Math.abs(e.spectrum[k]!)).toBeLessThan(1e-10);
    expect(e.explainedStress[2]).toBeCloseTo(1, 6);
    expect(e.explainedStress[0]).toBeLessThan(e.explainedStress[1]!);
    // the coordinates are centred
    for (let k = 0; k < 3; k++) {
      let s = 0;
      for (let i = 0; i < 25; i++) s += row(e, i)[k]!;
      expect(Math.abs(s)).toBeLessThan(1e-10);
    }
  });

  it('Minkowski distances d = Δx² − Δy² give one negative (time-like) eigenvalue', () => {
    const x = points(20, [3, 1], 2);
    const d = distances(x, [1, -1]);
    const e = inpca(d, { components: 2 });
    expect(e.eigenvalues[0]).toBeGreaterThan(0);
    expect(e.eigenvalues[1]).toBeLessThan(0);
    for (let k = 2; k < 20; k++) expect(Math.abs(e.spectrum[k]!)).toBeLessThan(1e-10);
    for (let i = 0; i < 20; i++) {
      for (let j = 0; j < 20; j++) {
        expect(Math.abs(inpcaSquaredDistance(e, row(e, i), row(e, j)) - d.data[i * 20 + j]!)).toBeLessThan(
          1e-9,
        );
      }
    }
    // |λ|-sorted: the space-like axis (scale 3) first
    expect(Math.abs(e.eigenvalues[0]!)).toBeGreaterThan(Math.abs(e.eigenvalues[1]!));
  });

  it('explained stress: 1 − sqrt(1 − Σ_{i≤k} λ_i² / ‖W‖_F²), increasing, ≤ 1', () => {
    const x = points(30, [2, 1.5, 1, 0.5, 0.2], 3);
    const d = distances(x, [1, 1, -1, 1, -1]);
    const e = inpca(d, { components: 4 });
    const total = e.spectrum.reduce((s, l) => s + l * l, 0);
    expect(Math.abs(total - e.totalSquaredEigenvalues)).toBeLessThan(1e-10 * total);
    let cum = 0;
    e.eigenvalues.forEach((l, k) => {
      cum += l * l;
      expect(e.explainedStress[k]).toBeCloseTo(1 - Math.sqrt(1 - cum / total), 12);
      if (k > 0) expect(e.explainedStress[k]).toBeGreaterThan(e.explainedStress[k - 1]!);
    });
    expect(e.explainedStress[3]).toBeLessThan(1);
  });

  it('out-of-sample projection of a point of the embedding lands on its own coordinates', () => {
    const x = points(30, [2, 1.5, 1, 0.5, 0.2], 4);
    const d = distances(x, [1, 1, -1, 1, -1]);
    const e = inpca(d, { components: 3 });
    for (let i = 0; i < 30; i++) {
      const p = inpcaProject(e, d.data.subarray(i * 30, (i + 1) * 30));
      p.forEach((v, k) => expect(Math.abs(v - row(e, i)[k]!)).toBeLessThan(1e-9));
    }
  });

  it('out-of-sample: a new point of an exactly 2-D configuration is placed exactly', () => {
    const x = points(16, [3, 1], 5);
    const all = distances(x, [1, 1]);
    const m = 15;
    const d = { rows: m, cols: m, data: new Float64Array(m * m) };
    for (let i = 0; i < m; i++) for (let j = 0; j < m; j++) d.data[i * m + j] = all.data[i * 16 + j]!;
    const e = inpca(d, { components: 2 });
    const p = inpcaProject(e, all.data.subarray(15 * 16, 15 * 16 + m));
    for (let i = 0; i < m; i++) {
      expect(Math.abs(inpcaSquaredDistance(e, p, row(e, i)) - all.data[15 * 16 + i]!)).toBeLessThan(1e-9);
    }
  });

  it('all-identical checkpoints (D = 0): zero eigenvalues and coordinates, no NaN', () => {
    const e = inpca({ rows: 4, cols: 4, data: new Float64Array(16) }, { components: 2 });
    expect(e.eigenvalues).toEqual([0, 0]);
    expect(e.coordinates.every((x) => x === 0)).toBe(true);
    expect(e.explainedStress).toEqual([0, 0]);
    expect(inpcaProject(e, [0, 0, 0, 0])).toEqual([0, 0]);
  });

  it('rejects non-square, asymmetric and out-of-range inputs', () => {
    expect(() => inpca({ rows: 2, cols: 3, data: new Float64Array(6) })).toThrow(/square/);
    expect(() => inpca({ rows: 2, cols: 2, data: Float64Array.of(0, 1, 2, 0) })).toThrow(/symmetric/);
    expect(() => inpca({ rows: 2, cols: 2, data: Float64Array.of(0, 1, 1, 0) }, { components: 3 })).toThrow(
      /components/,
    );
  });
});

describe('inpca above 200 points (Lanczos for the k axes, lazy spectrum)', () => {
  /** Non-Euclidean distances of m points: a few signed axes plus a small random perturbation. */
  function perturbed(m: number, seed: number, noise: number): Matrix {
    const d = distances(points(m, [2, 1.5, 1, 0.5, 0.2], seed), [1, 1, -1, 1, -1]);
    const r = uniform(seed + 1);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < i; j++) {
        const v = d.data[i * m + j]! + noise * Math.abs(r());
        d.data[i * m + j] = v;
        d.data[j * m + i] = v;
      }
    }
    return d;
  }

  it('eigenpairs and stress agree with the full solver (also on a rank-3 matrix with k > 3)', () => {
    for (const [d, k] of [
      [perturbed(260, 11, 0.1), 5],
      [perturbed(230, 12, 0), 5], // rank 5
      [distances(points(240, [3, 2, 1], 13), [1, 1, 1]), 6], // rank 3: three eigenvalues 0
    ] as const) {
      const m = d.rows;
      const e = inpca(d, { components: k });
      const spectrum = e.spectrum; // full solver (lazy)
      const scale = Math.abs(spectrum[0]!);
      e.eigenvalues.forEach((l, i) => expect(Math.abs(l - spectrum[i]!)).toBeLessThan(1e-12 * scale));
      // W v = λ v for each returned vector (rebuilt W by double centring)
      const w = new Float64Array(m * m);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < m; j++) {
          w[i * m + j] = -0.5 * (d.data[i * m + j]! - e.rowMeans[i]! - e.rowMeans[j]! + e.grandMean);
        }
      }
      e.vectors.forEach((v, c) => {
        const lambda = e.eigenvalues[c]!;
        if (Math.abs(lambda) < 1e-9 * scale) return; // null space: any unit vector of it
        let res = 0;
        for (let i = 0; i < m; i++) {
          let s = 0;
          for (let j = 0; j < m; j++) s += w[i * m + j]! * v[j]!;
          res = Math.max(res, Math.abs(s - lambda * v[i]!));
        }
        expect(res).toBeLessThan(1e-10 * scale);
      });
      const total = spectrum.reduce((s, l) => s + l * l, 0);
      expect(Math.abs(total - e.totalSquaredEigenvalues)).toBeLessThan(1e-10 * total);
      // a point of the embedding projects onto itself
      const x = inpcaProject(e, d.data.subarray(7 * m, 8 * m));
      x.forEach((xk, c) => {
        if (Math.abs(e.eigenvalues[c]!) > 1e-9 * scale) expect(xk).toBeCloseTo(row(e, 7)[c]!, 9);
      });
    }
  });
});

const probe = await findPython(['numpy']);

describe.skipIf(probe.python === null)('numpy cross-check (fixtures/reference/inpca_reference.py)', () => {
  it('eigenvalues and explained stress agree with numpy', () => {
    const x = points(40, [2, 1.5, 1, 0.5, 0.2], 6);
    const d = distances(x, [1, 1, -1, 1, -1]);
    // a non-Euclidean perturbation so the whole spectrum is non-trivial
    const r = uniform(7);
    for (let i = 0; i < 40; i++) {
      for (let j = 0; j < i; j++) {
        const v = d.data[i * 40 + j]! + 0.1 * Math.abs(r());
        d.data[i * 40 + j] = v;
        d.data[j * 40 + i] = v;
      }
    }
    const e = inpca(d, { components: 5 });
    const rows = Array.from({ length: 40 }, (_, i) => Array.from(d.data.subarray(i * 40, (i + 1) * 40)));
    const script = fixturePath('reference', 'inpca_reference.py');
    const res = spawnSync(probe.python as string, [script], {
      input: JSON.stringify({ d: rows, k: 5 }),
      encoding: 'utf8',
    });
    expect(res.status, res.stderr).toBe(0);
    const ref = (JSON.parse(res.stdout) as { inpca: { eigenvalues: number[]; stress: number[] } }).inpca;
    ref.eigenvalues.forEach((l, k) => expect(Math.abs(e.spectrum[k]! - l)).toBeLessThan(1e-12));
    ref.stress.forEach((s, k) => expect(Math.abs(e.explainedStress[k]! - s)).toBeLessThan(1e-12));
  });
});

describe('widthRatios', () => {
  it('is |λ_{k+1}| / |λ_k| of a signed spectrum, 0 after a zero eigenvalue', () => {
    expect(widthRatios([8, -4, 1, 0, 0])).toEqual([0.5, 0.25, 0, 0]);
    expect(widthRatios([3])).toEqual([]);
    expect(widthRatios([])).toEqual([]);
  });
});
