import { describe, expect, it } from 'vitest';
import {
  bhattacharyya,
  bhattacharyyaMatrix,
  bhattacharyyaMatrixJs,
  type ProbabilityArray,
} from '../../src/measure/bhattacharyya.js';

function uniform(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/** m checkpoints × n examples × c classes of softmax(temperature · uniform) outputs, float32. */
function randomProbs(m: number, n: number, c: number, seed: number, temperature = 4): Float32Array[] {
  const r = uniform(seed);
  return Array.from({ length: m }, () => {
    const p = new Float32Array(n * c);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < c; k++) {
        const e = Math.exp(temperature * r());
        p[i * c + k] = e;
        s += e;
      }
      for (let k = 0; k < c; k++) p[i * c + k] = p[i * c + k]! / s;
    }
    return p;
  });
}

const mat = (data: ProbabilityArray, cols: number) => ({ rows: data.length / cols, cols, data });

describe('bhattacharyya', () => {
  it('matches the closed form for two-class distributions, averaged over rows', () => {
    const a = [0.1, 0.5, 0.9, 0.999];
    const b = [0.3, 0.5, 0.2, 0.001];
    const p = Float64Array.from(a.flatMap((x) => [x, 1 - x]));
    const q = Float64Array.from(b.flatMap((x) => [x, 1 - x]));
    const expected =
      a.reduce((s, x, i) => s - Math.log(Math.sqrt(x * b[i]!) + Math.sqrt((1 - x) * (1 - b[i]!))), 0) /
      a.length;
    expect(bhattacharyya(mat(p, 2), mat(q, 2))).toBeCloseTo(expected, 14);
    expect(bhattacharyya(mat(p, 2), mat(q, 2), { classes: 2 })).toBeCloseTo(expected, 14);
    expect(() => bhattacharyya(mat(p, 2), mat(q, 2), { classes: 3 })).toThrow(/classes/);
  });

  it('is 0 on identical inputs (also copies), symmetric and ≥ 0', () => {
    const [p, q] = randomProbs(2, 50, 10, 1);
    expect(bhattacharyya(mat(p!, 10), mat(p!, 10))).toBe(0);
    // A copy: Σ_c sqrt(p_c p_c) = Σ_c p_c, which float32 softmax rows miss 1 by ~1e-7, so d is the
    // rounding floor −mean_n log Σ_c p_n(c) (clamped at 0), not exactly 0.
    const floor = Math.max(
      0,
      -Array.from({ length: 50 }, (_, i) =>
        Math.log(p!.subarray(i * 10, i * 10 + 10).reduce((s, x) => s + x, 0)),
      ).reduce((s, x) => s + x, 0) / 50,
    );
    expect(Math.abs(bhattacharyya(mat(p!, 10), mat(Float32Array.from(p!), 10)) - floor)).toBeLessThan(1e-15);
    expect(floor).toBeLessThan(1e-7);
    const d = bhattacharyya(mat(p!, 10), mat(q!, 10));
    expect(d).toBeGreaterThan(0);
    expect(bhattacharyya(mat(q!, 10), mat(p!, 10))).toBe(d);
  });

  it('clips the coefficient at 1e-12: disjoint supports give −log(1e-12) per sample', () => {
    const p = Float64Array.of(1, 0, 0.5, 0.5);
    const q = Float64Array.of(0, 1, 0.5, 0.5);
    expect(bhattacharyya(mat(p, 2), mat(q, 2))).toBeCloseTo(-Math.log(1e-12) / 2, 12);
    const js = bhattacharyyaMatrixJs([p, q], 2, 2);
    expect(js[1]).toBeCloseTo(-Math.log(1e-12) / 2, 12);
  });

  it('the ORT graph clips too (float64 with products of 16 samples, and float32)', async () => {
    // 40 samples: 20 with disjoint supports (coefficient 0 → 1e-12), 20 identical (coefficient 1)
    const p = Float64Array.from({ length: 80 }, (_, i) => (i < 40 ? (i % 2 === 0 ? 1 : 0) : 0.5));
    const q = Float64Array.from({ length: 80 }, (_, i) => (i < 40 ? (i % 2 === 1 ? 1 : 0) : 0.5));
    const expected = -Math.log(1e-12) / 2;
    expect(bhattacharyya(mat(p, 2), mat(q, 2))).toBeCloseTo(expected, 12);
    for (const floatType of ['float64', 'float32'] as const) {
      const d = await bhattacharyyaMatrix([p, q, p], 40, 2, { floatType });
      expect(Math.abs(d[1]! - expected)).toBeLessThan(floatType === 'float64' ? 1e-12 : 1e-5);
      // checkpoints 0 and 2 are the same outputs: 0 up to the rounding of sqrt(0.5)² in the float type
      expect(d[2]).toBeLessThan(floatType === 'float64' ? 1e-15 : 1e-7);
      expect(d[2]).toBeGreaterThanOrEqual(0);
      expect(d[1 * 3 + 2]).toBe(d[1]);
    }
  });

  it('rejects mismatched shapes and invalid probabilities', () => {
    expect(() => bhattacharyya(mat(new Float64Array(4), 2), mat(new Float64Array(6), 2))).toThrow(/shapes/);
    expect(() => bhattacharyya(mat(Float64Array.of(-1, 2), 2), mat(Float64Array.of(0.5, 0.5), 2))).toThrow(
      /probabilities/,
    );
    expect(() => bhattacharyyaMatrixJs([new Float32Array(5)], 2, 3)).toThrow(/expected 6/);
  });
});

describe('bhattacharyyaMatrix', () => {
  const m = 30;
  const n = 200;
  const c = 10;
  const probs = randomProbs(m, n, c, 2);
  const simple = (u: number, v: number) => bhattacharyya(mat(probs[u]!, c), mat(probs[v]!, c));

  it('JS matrix equals the pairwise function', () => {
    const d = bhattacharyyaMatrixJs(probs, n, c);
    for (let u = 0; u < m; u++) {
      expect(d[u * m + u]).toBe(0);
      for (let v = 0; v < m; v++) {
        expect(d[u * m + v]).toBe(d[v * m + u]!);
        if (u !== v) expect(Math.abs(d[u * m + v]! - simple(u, v))).toBeLessThan(1e-12 * simple(u, v));
      }
    }
  });

  it('ORT float64 (block smaller than m, last block padded) equals the simple version to 1e-6 relative', async () => {
    const d = await bhattacharyyaMatrix(probs, n, c, { block: 8, threads: 1 });
    let worst = 0;
    for (let u = 0; u < m; u++) {
      expect(d[u * m + u]).toBe(0);
      for (let v = 0; v < m; v++) {
        expect(d[u * m + v]).toBe(d[v * m + u]!);
        if (u !== v) worst = Math.max(worst, Math.abs(d[u * m + v]! - simple(u, v)) / simple(u, v));
      }
    }
    expect(worst).toBeLessThan(1e-6);
    expect(worst).toBeLessThan(1e-12); // float64 graph: rounding only
  });

  it('ORT float32 agrees to 1e-4 relative; the js backend is the reference', async () => {
    const d = await bhattacharyyaMatrix(probs, n, c, { floatType: 'float32', block: 16 });
    const ref = await bhattacharyyaMatrix(probs, n, c, { backend: 'js' });
    for (let i = 0; i < m * m; i++) {
      if (ref[i]! > 0) expect(Math.abs(d[i]! - ref[i]!)).toBeLessThan(1e-4 * ref[i]!);
    }
  });

  it('near-identical checkpoints: small distances stay accurate and non-negative', async () => {
    const base = probs[0]!;
    const close = [base, Float32Array.from(base, (v, i) => v * (1 + 1e-4 * Math.sin(i)))];
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let k = 0; k < c; k++) s += close[1]![i * c + k]!;
      for (let k = 0; k < c; k++) close[1]![i * c + k] = close[1]![i * c + k]! / s;
    }
    const d = await bhattacharyyaMatrix(close, n, c);
    const exact = bhattacharyya(mat(close[0]!, c), mat(close[1]!, c));
    expect(exact).toBeGreaterThan(0);
    expect(Math.abs(d[1]! - exact)).toBeLessThan(1e-9 * exact + 1e-15);
  });
});
