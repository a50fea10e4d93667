/** Seeded train/test splits, subsets and train-statistics standardization. */
import type { Rng } from '../rng/rng.js';
import { DataError } from './check.js';
import type { Split } from './types.js';

/** 0, 1, …, n−1. */
export function iota(n: number): Uint32Array {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/**
 * A seeded train/test split of n examples: a permutation from `rng`; its first round(n·testFraction)
 * entries are the test indices, the rest the train indices (both in permuted order).
 */
export function splitIndices(
  n: number,
  testFraction: number,
  rng: Rng,
): { train: Uint32Array; test: Uint32Array } {
  const perm = rng.permutation(n);
  const nTest = Math.round(n * testFraction);
  if (nTest >= n) throw new DataError(`testFraction ${testFraction} leaves no training examples out of ${n}`);
  return { train: perm.subarray(nTest), test: perm.subarray(0, nTest) };
}

/** A seeded subset of `k` of n indices (the first k of a permutation), or all of 0..n−1 in order when k ≥ n. */
export function subsetIndices(n: number, k: number, rng: Rng): Uint32Array {
  if (k >= n) return iota(n);
  return rng.permutation(n).subarray(0, k);
}

/** Per-feature mean and population std of a split's inputs (std 0 is reported as 0). */
export function featureStats(split: Split, dim: number): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(dim);
  const sq = new Float64Array(dim);
  for (let r = 0; r < split.n; r++) {
    for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) + (split.x[r * dim + j] as number);
  }
  for (let j = 0; j < dim; j++) mean[j] = (mean[j] as number) / split.n;
  for (let r = 0; r < split.n; r++) {
    for (let j = 0; j < dim; j++)
      sq[j] = (sq[j] as number) + ((split.x[r * dim + j] as number) - (mean[j] as number)) ** 2;
  }
  return { mean, std: sq.map((s) => Math.sqrt(s / split.n)) };
}

/**
 * z-score both splits' inputs with the train split's statistics: x ← (x − mean) / std, where a feature
 * with std 0 is only centered (std treated as 1, as scikit-learn's StandardScaler does). Targets are
 * unchanged. Returns new splits and the statistics used.
 */
export function standardize(
  train: Split,
  test: Split,
  dim: number,
): { train: Split; test: Split; mean: number[]; std: number[] } {
  const { mean, std } = featureStats(train, dim);
  const scale = std.map((s) => (s > 0 ? s : 1));
  const apply = (s: Split): Split => {
    const x = new Float32Array(s.x.length);
    for (let i = 0; i < x.length; i++) {
      const j = i % dim;
      x[i] = ((s.x[i] as number) - (mean[j] as number)) / (scale[j] as number);
    }
    return { ...s, x };
  };
  return { train: apply(train), test: apply(test), mean: [...mean], std: [...std] };
}
