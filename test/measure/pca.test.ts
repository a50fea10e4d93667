import { PCA } from 'ml-pca';
import { describe, expect, it } from 'vitest';
import { pcaProject, trajectoryPca } from '../../src/measure/pca.js';

function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296 - 0.5;
  };
}

/** T checkpoints of P parameters: a curved trajectory plus noise. */
function trajectory(t: number, p: number, seed: number): Float32Array[] {
  const r = uniform(seed);
  const dirs = [0, 1, 2].map(() => Float64Array.from({ length: p }, r));
  const base = Float64Array.from({ length: p }, r);
  return Array.from({ length: t }, (_, i) => {
    const s = i / t;
    return Float32Array.from(
      { length: p },
      (_, j) =>
        base[j]! +
        3 * s * dirs[0]![j]! +
        Math.sin(4 * s) * dirs[1]![j]! +
        0.3 * s * s * dirs[2]![j]! +
        0.01 * r(),
    );
  });
}

describe('trajectoryPca', () => {
  it('matches PCA of the covariance (ml-pca) for reference "mean"', () => {
    const ckpts = trajectory(12, 20, 1);
    const pca = trajectoryPca(ckpts, { components: 3 });
    const ref = new PCA(
      ckpts.map((c) => Array.from(c)),
      { center: true, scale: false },
    );
    const refRatio = ref.getExplainedVariance();
    const refVectors = ref.getEigenvectors(); // columns
    for (let k = 0; k < 3; k++) {
      expect(Math.abs(pca.explainedVarianceRatio[k]! - refRatio[k]!)).toBeLessThan(1e-10);
      const c = pca.components[k]!;
      let dot = 0;
      for (let j = 0; j < 20; j++) dot += c[j]! * refVectors.get(j, k);
      expect(Math.abs(Math.abs(dot) - 1)).toBeLessThan(1e-9);
      // unit norm
      expect(Math.abs(c.reduce((s, v) => s + v * v, 0) - 1)).toBeLessThan(1e-12);
      // coordinates equal ml-pca's projection up to the component's sign
      const proj = ref.predict([Array.from(ckpts[5]!)]);
      expect(Math.abs(Math.abs(pca.coordinates[5 * 3 + k]!) - Math.abs(proj.get(0, k)))).toBeLessThan(1e-8);
    }
    const sum = pca.explainedVarianceRatio.reduce((s, v) => s + v, 0);
    expect(sum).toBeLessThanOrEqual(1);
    expect(sum).toBeGreaterThan(0.99);
  });

  it('Gram form equals the brute-force P × P second moment about a fixed reference', () => {
    const ckpts = trajectory(8, 15, 2);
    const pca = trajectoryPca(ckpts, { components: 2, reference: 'first' });
    // brute force: eigenvalues of XᵀX by power iteration with deflation
    const p = 15;
    const x = ckpts.map((c) => Array.from(c, (v, j) => v - ckpts[0]![j]!));
    const m = Array.from({ length: p }, (_, a) =>
      Array.from({ length: p }, (_, b) => x.reduce((s, r) => s + r[a]! * r[b]!, 0)),
    );
    const trace = m.reduce((s, r, a) => s + r[a]!, 0);
    for (let k = 0; k < 2; k++) {
      let v = Array.from({ length: p }, (_, j) => 1 + j);
      let lam = 0;
      for (let it = 0; it < 2000; it++) {
        const w = m.map((r) => r.reduce((s, a, j) => s + a * v[j]!, 0));
        lam = Math.hypot(...w);
        v = w.map((a) => a / lam);
      }
      expect(Math.abs(pca.eigenvalues[k]! - lam)).toBeLessThan(1e-9 * lam);
      expect(Math.abs(pca.explainedVarianceRatio[k]! - lam / trace)).toBeLessThan(1e-10);
      const dot = v.reduce((s, a, j) => s + a * pca.components[k]![j]!, 0);
      expect(Math.abs(Math.abs(dot) - 1)).toBeLessThan(1e-9);
      for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) m[a]![b]! -= lam * v[a]! * v[b]!;
    }
    // the first checkpoint is the origin
    expect(Math.abs(pca.coordinates[0]!)).toBeLessThan(1e-12);
  });

  it('projection of a training checkpoint equals its coordinates; ratios sum ≤ 1', () => {
    const ckpts = trajectory(30, 5000, 3); // P > chunk size
    const ref = Float32Array.from(ckpts[29]!);
    for (const reference of ['mean', 'first', ref] as const) {
      const pca = trajectoryPca(ckpts, { components: 4, reference });
      for (const i of [0, 7, 29]) {
        pcaProject(pca, ckpts[i]!).forEach((v, k) =>
          expect(Math.abs(v - pca.coordinates[i * 4 + k]!)).toBeLessThan(1e-9),
        );
      }
      const sum = pca.explainedVarianceRatio.reduce((s, v) => s + v, 0);
      expect(sum).toBeLessThanOrEqual(1 + 1e-12);
      for (let k = 1; k < 4; k++)
        expect(pca.explainedVarianceRatio[k]).toBeLessThanOrEqual(pca.explainedVarianceRatio[k - 1]!);
    }
  });

  it('a straight-line trajectory has one component explaining everything', () => {
    const dir = Float32Array.from({ length: 50 }, (_, j) => Math.cos(j));
    const ckpts = Array.from({ length: 6 }, (_, i) => Float32Array.from(dir, (v) => 0.5 * i * v));
    const pca = trajectoryPca(ckpts, { components: 2, reference: 'first' });
    expect(pca.explainedVarianceRatio[0]).toBeCloseTo(1, 12);
    expect(pca.explainedVarianceRatio[1]).toBeCloseTo(0, 12);
    expect(() => trajectoryPca([])).toThrow(/no checkpoints/);
    expect(() => trajectoryPca(ckpts, { components: 7 })).toThrow(/components/);
  });
});
