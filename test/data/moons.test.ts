import { describe, expect, it } from 'vitest';
import { loadMoons, makeMoons } from '../../src/data/moons.js';
import { Rng } from '../../src/rng/rng.js';

describe('makeMoons', () => {
  it('puts noise-free points on the two half circles with the sklearn counts', () => {
    const n = 101;
    const { x, labels } = makeMoons(n, 0, Rng.fromSeed(1));
    const outer: number[] = [];
    const inner: number[] = [];
    for (let i = 0; i < n; i++) {
      const px = x[2 * i] as number;
      const py = x[2 * i + 1] as number;
      if (labels[i] === 0) {
        expect(Math.hypot(px, py)).toBeCloseTo(1, 6);
        outer.push(Math.atan2(py, px));
      } else {
        expect(Math.hypot(px - 1, py - 0.5)).toBeCloseTo(1, 6);
        inner.push(Math.atan2(0.5 - py, 1 - px));
      }
    }
    // n_out = ⌊101/2⌋ = 50, n_in = 51; angles are linspace(0, π, ·).
    expect(outer).toHaveLength(50);
    expect(inner).toHaveLength(51);
    outer.sort((a, b) => a - b).forEach((t, i) => expect(t).toBeCloseTo((i * Math.PI) / 49, 5));
    inner.sort((a, b) => a - b).forEach((t, i) => expect(Math.abs(t)).toBeCloseTo((i * Math.PI) / 50, 5));
  });

  it('shuffles the rows (labels are not sorted)', () => {
    const { labels } = makeMoons(200, 0, Rng.fromSeed(2));
    expect([...labels].slice(0, 100).every((c) => c === 0)).toBe(false);
  });

  it('adds N(0, noise²) to each coordinate', () => {
    const clean = makeMoons(20_000, 0, Rng.fromSeed(3));
    const noisy = makeMoons(20_000, 0.2, Rng.fromSeed(3));
    let ss = 0;
    for (let i = 0; i < clean.x.length; i++) ss += ((noisy.x[i] as number) - (clean.x[i] as number)) ** 2;
    // sd of the estimated std ≈ 0.2/√(2·40000) ≈ 0.0007.
    expect(Math.sqrt(ss / clean.x.length)).toBeCloseTo(0.2, 2);
    expect(noisy.labels).toEqual(clean.labels);
  });
});

describe('loadMoons', () => {
  it('splits by testFraction with one-hot targets', () => {
    const d = loadMoons({ name: 'moons', n: 100, noise: 0.1, testFraction: 0.25 }, Rng.fromSeed(4));
    expect([d.train.n, d.test.n, d.inputDim, d.outputDim]).toEqual([75, 25, 2, 2]);
    expect(d.train.x).toHaveLength(150);
    d.train.labels!.forEach((c, i) => {
      expect(d.train.y[2 * i + c]).toBe(1);
      expect(d.train.y[2 * i + 1 - c]).toBe(0);
    });
  });

  it('rejects bad fields by name', () => {
    expect(() => loadMoons({ name: 'moons', n: 1 }, Rng.fromSeed(0))).toThrow(/data\.n/);
    expect(() => loadMoons({ name: 'moons', n: 10, noise: -1 }, Rng.fromSeed(0))).toThrow(/data\.noise/);
    expect(() => loadMoons({ name: 'moons', n: 10, testFraction: 1 }, Rng.fromSeed(0))).toThrow(
      /data\.testFraction/,
    );
  });
});
