import { describe, expect, it } from 'vitest';
import {
  bhattacharyya,
  bhattacharyyaMatrix,
  bhattacharyyaMatrixJs,
  gaussianBhattacharyya,
  gaussianBhattacharyyaMatrix,
  type ProbabilityArray,
} from '../../src/measure/bhattacharyya.js';
import { symmetricEigen } from '../../src/measure/eigen.js';
import { inpca } from '../../src/measure/inpca.js';

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

describe('bhattacharyyaMatrix kernels (chunks, blocks)', () => {
  const c = 10;
  const maxAbsDiff = (x: Float64Array, y: Float64Array) =>
    x.reduce((worst, v, i) => Math.max(worst, Math.abs(v - y[i]!)), 0);

  it('chunks: N not a multiple of the chunk or the group, m not a multiple of the block', async () => {
    const m = 13;
    const n = 203; // 203 → padded to 208 (group 16); chunks of 48: 4 full + a tail of 16
    const probs = randomProbs(m, n, c, 5);
    const ref = bhattacharyyaMatrixJs(probs, n, c);
    for (const options of [
      { chunk: 48, block: 5 },
      { chunk: 40, block: 4, group: 25 }, // 203 → 225, chunks of 50: 4 + a tail of 25
      { chunk: 7, block: 13, group: 1 }, // no products: one Log per sample
      { chunk: 1000, block: 3, threads: 1 }, // one chunk larger than N
      { chunk: 64, block: 6, threads: 2 },
    ]) {
      const d = await bhattacharyyaMatrix(probs, n, c, options);
      expect(maxAbsDiff(d, ref)).toBeLessThan(1e-14);
      for (let u = 0; u < m; u++) {
        expect(d[u * m + u]).toBe(0);
        for (let v = 0; v < m; v++) expect(d[u * m + v]).toBe(d[v * m + u]!);
      }
    }
  });

  it('chunks and blocks agree with the JS reference on random inputs', async () => {
    const m = 20;
    const n = 300;
    const probs = randomProbs(m, n, c, 6, 8);
    const ref = bhattacharyyaMatrixJs(probs, n, c);
    const chunks = await bhattacharyyaMatrix(probs, n, c, { kernel: 'chunks', block: 8, chunk: 64 });
    const blocks = await bhattacharyyaMatrix(probs, n, c, { kernel: 'blocks', block: 8 });
    expect(maxAbsDiff(chunks, ref)).toBeLessThan(1e-14);
    expect(maxAbsDiff(blocks, ref)).toBeLessThan(1e-14);
    for (let i = 0; i < m * m; i++) {
      if (ref[i]! > 0) expect(Math.abs(chunks[i]! - ref[i]!)).toBeLessThan(1e-12 * ref[i]!);
    }
  });

  it('zero probabilities and disjoint supports: clipped per sample, also inside products', async () => {
    const n = 37;
    // one-hot rows: coefficient 0 (clipped to 1e-12) or 1, mixed with ordinary rows
    const probs = Array.from({ length: 6 }, (_, u) => {
      const p = new Float64Array(n * c);
      for (let i = 0; i < n; i++) {
        if ((i + u) % 3 === 0) p[i * c + ((i * (u + 1)) % c)] = 1;
        else for (let k = 0; k < c; k++) p[i * c + k] = (k + 1 + u) / ((c * (c + 1)) / 2 + c * u);
      }
      return p;
    });
    const ref = bhattacharyyaMatrixJs(probs, n, c);
    expect(Math.max(...ref)).toBeGreaterThan(5); // several samples at −log 1e-12 ≈ 27.6
    for (const group of [1, 16, 25]) {
      const d = await bhattacharyyaMatrix(probs, n, c, { block: 4, chunk: 25, group });
      expect(maxAbsDiff(d, ref)).toBeLessThan(1e-13);
    }
    const blocks = await bhattacharyyaMatrix(probs, n, c, { kernel: 'blocks', block: 4 });
    expect(maxAbsDiff(blocks, ref)).toBeLessThan(1e-13);
  });

  it('neighbouring checkpoints ~1e-7 apart: absolute errors far below the distances', async () => {
    const n = 500;
    const base = randomProbs(1, n, c, 7)[0]!;
    const wide = Float64Array.from(base);
    const probs = [0, 1, 2, 3, 4].map((t) => {
      const p = Float64Array.from(wide, (v, i) => v * Math.exp(3e-4 * t * Math.sin(i * 0.37)));
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < c; k++) s += p[i * c + k]!;
        for (let k = 0; k < c; k++) p[i * c + k] = p[i * c + k]! / s;
      }
      return p;
    });
    const ref = bhattacharyyaMatrixJs(probs, n, c);
    expect(ref[1]).toBeGreaterThan(1e-9);
    expect(ref[1]).toBeLessThan(1e-6);
    const d = await bhattacharyyaMatrix(probs, n, c, { block: 2, chunk: 96 });
    expect(maxAbsDiff(d, ref)).toBeLessThan(1e-15);
  });

  it('chunks float32 agrees to 1e-4 relative; bad chunk, group and kernel are rejected', async () => {
    const probs = randomProbs(7, 90, c, 8);
    const ref = bhattacharyyaMatrixJs(probs, 90, c);
    const d = await bhattacharyyaMatrix(probs, 90, c, { floatType: 'float32', block: 3, chunk: 32 });
    for (let i = 0; i < ref.length; i++) {
      if (ref[i]! > 0) expect(Math.abs(d[i]! - ref[i]!)).toBeLessThan(1e-4 * ref[i]!);
    }
    await expect(bhattacharyyaMatrix(probs, 90, c, { chunk: 0 })).rejects.toThrow(/chunk/);
    await expect(bhattacharyyaMatrix(probs, 90, c, { group: 26 })).rejects.toThrow(/group/);
    await expect(bhattacharyyaMatrix(probs, 90, c, { threads: 0 })).rejects.toThrow(/threads/);
    await expect(
      bhattacharyyaMatrix(probs, 90, c, { kernel: 'other' as unknown as 'chunks' }),
    ).rejects.toThrow(/kernel/);
  });
});

describe('gaussianBhattacharyya', () => {
  /** −log ∫ sqrt(N(x; a, s²) N(x; b, s²)) dx by the trapezoid rule on [−40, 40]: the definition itself. */
  function integrated(a: number, b: number, s: number): number {
    const h = 1e-3;
    let sum = 0;
    for (let x = -40; x <= 40; x += h) {
      const p = Math.exp(-((x - a) ** 2) / (2 * s * s)) / (s * Math.sqrt(2 * Math.PI));
      const q = Math.exp(-((x - b) ** 2) / (2 * s * s)) / (s * Math.sqrt(2 * Math.PI));
      sum += Math.sqrt(p * q) * h;
    }
    return -Math.log(sum);
  }

  it('equals −log ∫ sqrt(p q) of two 1-D Gaussians, averaged over samples', () => {
    const mu = [0, 1.5, -2, 3];
    const nu = [0.5, -1, -2, 0];
    for (const s of [0.7, 1, 2]) {
      const expected = mu.reduce((acc, a, i) => acc + integrated(a, nu[i] as number, s), 0) / mu.length;
      const d = gaussianBhattacharyya(mat(Float64Array.from(mu), 1), mat(Float64Array.from(nu), 1), {
        sigma: s,
      });
      expect(Math.abs(d - expected)).toBeLessThan(1e-9);
      // and the closed form Δμ² / 8s²
      const closed =
        mu.reduce((acc, a, i) => acc + (a - (nu[i] as number)) ** 2, 0) / (8 * s * s * mu.length);
      expect(d).toBeCloseTo(closed, 14);
    }
  });

  it('sums over output dimensions (independent Gaussians per output)', () => {
    const mu = Float64Array.from([1, 2, 3, 4]);
    const nu = Float64Array.from([0, 2, 5, 1]);
    // two samples × two outputs: (1 + 0 + 4 + 9) / (8 · 2)
    expect(gaussianBhattacharyya(mat(mu, 2), mat(nu, 2))).toBeCloseTo(14 / 16, 15);
  });

  it('the matrix holds every pair, and its InPCA is PCA of the scaled predictions (all λ ≥ 0)', () => {
    const m = 9;
    const n = 7;
    const r = uniform(11);
    const means = Array.from({ length: m }, () => Float32Array.from({ length: n * 2 }, () => 4 * r() - 2));
    const sigma = 1.3;
    const d = gaussianBhattacharyyaMatrix(means, n, 2, { sigma });
    for (let u = 0; u < m; u++) {
      expect(d[u * m + u]).toBe(0);
      for (let v = 0; v < m; v++) {
        const direct = gaussianBhattacharyya(mat(means[u]!, 2), mat(means[v]!, 2), { sigma });
        expect(d[u * m + v]).toBeCloseTo(direct, 14);
      }
    }
    // Classical MDS: −½ J D J = centred Gram of a = μ / sqrt(8 s² N).
    const a = means.map((mu) => Float64Array.from(mu, (x) => x / Math.sqrt(8 * sigma * sigma * n)));
    const mean = new Float64Array(n * 2);
    for (const row of a) row.forEach((x, i) => (mean[i]! += x / m));
    const gram = new Float64Array(m * m);
    for (let u = 0; u < m; u++) {
      for (let v = 0; v < m; v++) {
        let s = 0;
        for (let i = 0; i < n * 2; i++) s += (a[u]![i]! - mean[i]!) * (a[v]![i]! - mean[i]!);
        gram[u * m + v] = s;
      }
    }
    const expected = Array.from(symmetricEigen(gram, m).values).sort((x, y) => Math.abs(y) - Math.abs(x));
    const e = inpca({ rows: m, cols: m, data: d }, { components: m });
    e.eigenvalues.forEach((lambda, k) => {
      expect(lambda).toBeGreaterThan(-1e-12);
      expect(Math.abs(lambda - (expected[k] as number))).toBeLessThan(1e-12);
    });
  });

  it('rejects mismatched shapes, non-finite outputs and a bad sigma', () => {
    const a = mat(Float64Array.from([1, 2]), 1);
    expect(() => gaussianBhattacharyya(a, mat(Float64Array.from([1, 2, 3]), 1))).toThrow(/shapes differ/);
    expect(() => gaussianBhattacharyya(a, mat(Float64Array.from([1, Number.NaN]), 1))).toThrow(/non-finite/);
    expect(() => gaussianBhattacharyya(a, a, { sigma: 0 })).toThrow(/sigma must be a positive number/);
    expect(() => gaussianBhattacharyyaMatrix([new Float32Array(3)], 2, 1)).toThrow(
      /expected 2 values, got 3/,
    );
  });
});
