/**
 * The linear-regression generator checked against its construction rather than statistically: the
 * documented streams (`teacher`, `inputs`, `noise` of the generator's Rng) are redrawn here, and x, w*
 * and y must equal x = z·diag(√λ), w* = N(0, I/dim) draws, y = xᵀw* + noise·ε up to the single
 * rounding to float32. The distribution of the underlying normal draws is tested in test/rng.
 */
import { describe, expect, it } from 'vitest';
import { loadLinearRegression, makeLinearRegression } from '../../src/data/linear-regression.js';
import { Rng } from '../../src/rng/rng.js';

/** Half an ulp of float32, relative: |fround(v) − v| ≤ F32_HALF_ULP·|v|. */
const F32_HALF_ULP = 2 ** -24;

/** |got − want| within one rounding of `want` to float32, plus `abs` for float64 summation order. */
function expectFloat32Of(got: number, want: number, abs = 0): void {
  const err = Math.abs(got - want);
  if (!(err <= F32_HALF_ULP * Math.abs(want) * (1 + 1e-9) + abs)) {
    expect.fail(`${got} is not ${want} rounded to float32 (error ${err})`);
  }
}

/**
 * xᵀw* in float64 from the redrawn z (unrounded inputs) and Σ|terms|: y may be summed from the
 * float32 inputs or the unrounded ones, which differ by at most F32_HALF_ULP·Σ|terms|.
 */
function teacher(z: Float64Array, sd: readonly number[], w: Float64Array, r: number) {
  const dim = w.length;
  let t = 0;
  let abs = 0;
  for (let j = 0; j < dim; j++) {
    const term = (z[r * dim + j] as number) * (sd[j] as number) * (w[j] as number);
    t += term;
    abs += Math.abs(term);
  }
  return { t, abs };
}

const bytes = (a: Float32Array | Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('makeLinearRegression', () => {
  const n = 3000;
  const dim = 6;
  const decay = 1.5;
  const seed = 7;
  const d = makeLinearRegression(n, dim, decay, 0, Rng.fromSeed(seed));
  // The generator's streams, drawn independently here.
  const z = Rng.fromSeed(seed)
    .stream('inputs')
    .fillNormal(new Float64Array(n * dim));
  const w = Rng.fromSeed(seed)
    .stream('teacher')
    .fillNormal(new Float64Array(dim), 1 / Math.sqrt(dim));
  // √λ_j = j^(−decay/2), written without the generator's λ.
  const sd = Array.from({ length: dim }, (_, j) => (j + 1) ** (-decay / 2));

  it('has λ_i = i^(−decay) and inputs x = z·diag(√λ) entry by entry, so Cov(x) = diag(λ)', () => {
    expect([...d.lambda]).toEqual([1, 2, 3, 4, 5, 6].map((i) => i ** -decay));
    expect(d.x).toHaveLength(n * dim);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < dim; j++) {
        // sd from i^(−decay/2) vs √(i^(−decay)) can differ by an ulp of float64: allow 1e-15.
        const want = (z[r * dim + j] as number) * (sd[j] as number);
        expectFloat32Of(d.x[r * dim + j] as number, want, 1e-15 * Math.abs(want));
      }
    }
    // Hence the variance of x along each axis is exactly λ_j times that of the standard normal draws
    // (the spectrum of Cov(x) = diag(√λ) I diag(√λ) is λ), to float32 rounding of x.
    for (let j = 0; j < dim; j++) {
      let xx = 0;
      let zz = 0;
      for (let r = 0; r < n; r++) {
        xx += (d.x[r * dim + j] as number) ** 2;
        zz += (z[r * dim + j] as number) ** 2;
      }
      expect(Math.abs(xx / zz / (j + 1) ** -decay - 1)).toBeLessThan(2.5 * 2 ** -24);
    }
  });

  it('draws w* ~ N(0, I/dim) from its teacher stream and has noiseless targets y = xᵀw*', () => {
    expect(bytes(d.wStar).equals(bytes(w))).toBe(true);
    expect(d.y).toHaveLength(n);
    for (let r = 0; r < n; r++) {
      const { t, abs } = teacher(z, sd, w, r);
      expectFloat32Of(d.y[r] as number, t, F32_HALF_ULP * abs);
    }
  });

  it('adds label noise noise·ε from its noise stream, leaving inputs and teacher unchanged', () => {
    const noise = 0.5;
    const noisy = makeLinearRegression(n, dim, decay, noise, Rng.fromSeed(seed));
    const eps = Rng.fromSeed(seed).stream('noise').fillNormal(new Float64Array(n));
    expect(bytes(noisy.x).equals(bytes(d.x))).toBe(true);
    expect(bytes(noisy.wStar).equals(bytes(d.wStar))).toBe(true);
    for (let r = 0; r < n; r++) {
      const { t, abs } = teacher(z, sd, w, r);
      const e = noise * (eps[r] as number);
      expectFloat32Of(noisy.y[r] as number, t + e, F32_HALF_ULP * abs);
    }
  });

  it('is a pure function of the seed; decay 0 gives isotropic inputs x = z', () => {
    const again = makeLinearRegression(n, dim, decay, 0.1, Rng.fromSeed(seed));
    const twice = makeLinearRegression(n, dim, decay, 0.1, Rng.fromSeed(seed));
    for (const k of ['x', 'y', 'wStar', 'lambda'] as const) {
      expect(bytes(twice[k]).equals(bytes(again[k]))).toBe(true);
    }
    const other = makeLinearRegression(n, dim, decay, 0.1, Rng.fromSeed(seed + 1));
    expect(bytes(other.x).equals(bytes(again.x))).toBe(false);
    expect(bytes(other.wStar).equals(bytes(again.wStar))).toBe(false);
    const iso = makeLinearRegression(n, dim, 0, 0, Rng.fromSeed(seed));
    expect([...iso.lambda]).toEqual(new Array(dim).fill(1));
    expect(bytes(iso.x).equals(bytes(Float32Array.from(z)))).toBe(true);
  });
});

describe('loadLinearRegression', () => {
  it('splits the generate stream’s data by the split stream and records w* and λ in meta', () => {
    const [n, dim, decay, seed] = [100, 4, 1, 1];
    const d = loadLinearRegression(
      { name: 'linear-regression', n, dim, decay, testFraction: 0.1 },
      Rng.fromSeed(seed),
    );
    expect([d.task, d.inputDim, d.outputDim, d.train.n, d.test.n]).toEqual(['regression', 4, 1, 90, 10]);
    expect(d.meta.lambda).toEqual([1, 1 / 2, 1 / 3, 1 / 4]);
    const full = makeLinearRegression(n, dim, decay, 0, Rng.fromSeed(seed).stream('generate'));
    expect(d.meta.wStar).toEqual([...full.wStar]);
    // The split's documented contract: the first round(n·testFraction) entries of a permutation
    // drawn from the split stream are the test rows, the rest the train rows, in permuted order.
    const perm = Rng.fromSeed(seed).stream('split').permutation(n);
    const rows = (split: typeof d.train, order: Uint32Array) => {
      expect(split.n).toBe(order.length);
      for (const [k, i] of order.entries()) {
        expect([...split.x.subarray(k * dim, (k + 1) * dim)]).toEqual([
          ...full.x.subarray(i * dim, (i + 1) * dim),
        ]);
        expect(split.y[k]).toBe(full.y[i]);
      }
    };
    rows(d.test, perm.subarray(0, 10));
    rows(d.train, perm.subarray(10));
  });
});
