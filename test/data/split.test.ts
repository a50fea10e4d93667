import { describe, expect, it } from 'vitest';
import { featureStats, splitIndices, standardize, subsetIndices } from '../../src/data/split.js';
import type { Split } from '../../src/data/types.js';
import { Rng } from '../../src/rng/rng.js';

describe('splitIndices', () => {
  it('partitions 0..n−1 with round(n·testFraction) test indices, deterministically', () => {
    const { train, test } = splitIndices(10, 0.33, Rng.fromSeed(1));
    expect(test).toHaveLength(3);
    expect([...train, ...test].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(splitIndices(10, 0.33, Rng.fromSeed(1)).test).toEqual(test);
    expect(() => splitIndices(1, 0.9, Rng.fromSeed(1))).toThrow(/no training/);
  });

  it('takes seeded subsets', () => {
    expect([...subsetIndices(3, 5, Rng.fromSeed(1))]).toEqual([0, 1, 2]);
    const s = subsetIndices(100, 10, Rng.fromSeed(1));
    expect(new Set(s).size).toBe(10);
  });
});

describe('standardize', () => {
  const split = (rows: number[][]): Split => ({
    x: Float32Array.from(rows.flat()),
    y: new Float32Array(rows.length),
    n: rows.length,
  });

  it('z-scores both splits with the train statistics (population std; constant features centered)', () => {
    const train = split([
      [1, 5],
      [3, 5],
    ]);
    const test = split([[5, 7]]);
    const s = standardize(train, test, 2);
    expect(s.mean).toEqual([2, 5]);
    expect(s.std).toEqual([1, 0]);
    expect([...s.train.x]).toEqual([-1, 0, 1, 0]);
    expect([...s.test.x]).toEqual([3, 2]);
    expect(s.test.y).toBe(test.y);
  });

  it('computes per-feature stats', () => {
    const { mean, std } = featureStats(split([[0], [4], [8]]), 1);
    expect(mean[0]).toBe(4);
    expect(std[0]).toBeCloseTo(Math.sqrt(32 / 3), 12);
  });
});
