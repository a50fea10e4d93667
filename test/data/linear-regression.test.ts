import { eigs } from 'mathjs';
import { describe, expect, it } from 'vitest';
import { loadLinearRegression, makeLinearRegression } from '../../src/data/linear-regression.js';
import { Rng } from '../../src/rng/rng.js';

describe('makeLinearRegression', () => {
  const n = 40_000;
  const dim = 6;
  const decay = 1.5;
  const d = makeLinearRegression(n, dim, decay, 0, Rng.fromSeed(7));

  it('has input covariance eigenvalues i^(−a)', () => {
    const cov = Array.from({ length: dim }, () => new Array<number>(dim).fill(0));
    for (let r = 0; r < n; r++) {
      for (let i = 0; i < dim; i++) {
        for (let j = 0; j < dim; j++)
          cov[i]![j]! += ((d.x[r * dim + i] as number) * (d.x[r * dim + j] as number)) / n;
      }
    }
    const values = (eigs(cov).values as number[]).map(Number).sort((a, b) => b - a);
    // Relative sd of a sample variance is √(2/n) ≈ 0.7%; allow 4%.
    values.forEach((v, i) => expect(v / (i + 1) ** -decay).toBeGreaterThan(0.96));
    values.forEach((v, i) => expect(v / (i + 1) ** -decay).toBeLessThan(1.04));
    expect([...d.lambda]).toEqual([1, 2, 3, 4, 5, 6].map((i) => i ** -decay));
  });

  it('has noiseless targets y = xᵀw*', () => {
    for (let r = 0; r < 10; r++) {
      let t = 0;
      for (let j = 0; j < dim; j++) t += (d.x[r * dim + j] as number) * (d.wStar[j] as number);
      expect(d.y[r]).toBeCloseTo(t, 5);
    }
  });

  it('draws w* ~ N(0, 1/dim) and label noise with the given std', () => {
    const big = makeLinearRegression(2000, 500, 0, 0.5, Rng.fromSeed(8));
    const w2 = big.wStar.reduce((s, w) => s + w * w, 0) / 500;
    expect(w2 * 500).toBeGreaterThan(0.85); // E = 1, sd √(2/500) ≈ 0.063
    expect(w2 * 500).toBeLessThan(1.15);
    const clean = makeLinearRegression(2000, 500, 0, 0, Rng.fromSeed(8));
    let ss = 0;
    for (let r = 0; r < 2000; r++) ss += ((big.y[r] as number) - (clean.y[r] as number)) ** 2;
    expect(Math.sqrt(ss / 2000)).toBeCloseTo(0.5, 1);
  });
});

describe('loadLinearRegression', () => {
  it('splits and records w* and λ in meta', () => {
    const d = loadLinearRegression(
      { name: 'linear-regression', n: 100, dim: 4, decay: 1, testFraction: 0.1 },
      Rng.fromSeed(1),
    );
    expect([d.task, d.inputDim, d.outputDim, d.train.n, d.test.n]).toEqual(['regression', 4, 1, 90, 10]);
    expect(d.meta.lambda).toEqual([1, 1 / 2, 1 / 3, 1 / 4]);
    expect(d.meta.wStar).toHaveLength(4);
  });
});
