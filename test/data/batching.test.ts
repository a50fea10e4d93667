import { describe, expect, it } from 'vitest';
import {
  batchHash,
  batchIndices,
  batchIndicesAtStep,
  gatherBatch,
  stepsPerEpoch,
} from '../../src/data/batching.js';
import type { Split } from '../../src/data/types.js';
import { Rng } from '../../src/rng/rng.js';

describe('batchIndices', () => {
  it('is a pure function of (data seed, epoch, step)', () => {
    const a = batchIndices(100, 10, 3, 2, 4);
    batchIndices(100, 10, 9, 0, 0); // another seed in between must not matter
    expect(batchIndices(100, 10, 3, 2, 4)).toEqual(a);
    expect(a).toEqual(Rng.fromSeed(3).stream('data', 2).permutation(100).slice(40, 50));
  });

  it('differs across seeds and epochs', () => {
    expect(batchIndices(100, 10, 3, 0, 0)).not.toEqual(batchIndices(100, 10, 4, 0, 0));
    expect(batchIndices(100, 10, 3, 0, 0)).not.toEqual(batchIndices(100, 10, 3, 1, 0));
  });

  it('visits every index at most once per epoch and drops the partial batch', () => {
    const n = 103;
    const steps = stepsPerEpoch(n, 10);
    expect(steps).toBe(10);
    const seen = new Set<number>();
    for (let s = 0; s < steps; s++) for (const i of batchIndices(n, 10, 1, 0, s)) seen.add(i);
    expect(seen.size).toBe(100);
    const exact = new Set<number>();
    for (let s = 0; s < 4; s++) for (const i of batchIndices(100, 25, 1, 5, s)) exact.add(i);
    expect(exact.size).toBe(100);
    expect(() => batchIndices(n, 10, 1, 0, 10)).toThrow(/stepInEpoch/);
  });

  it('uses all indices in order for full batches', () => {
    expect(stepsPerEpoch(5, 'full')).toBe(1);
    expect([...batchIndices(5, 'full', 1, 3, 0)]).toEqual([0, 1, 2, 3, 4]);
    expect(() => stepsPerEpoch(5, 6)).toThrow(/exceeds/);
  });
});

describe('batchIndicesAtStep', () => {
  it('maps a global step to (epoch, step in epoch)', () => {
    // 103 examples, batch 10: 10 steps per epoch, so global step 23 is epoch 2, step 3.
    expect(batchIndicesAtStep(103, 10, 4, 23)).toEqual(batchIndices(103, 10, 4, 2, 3));
    expect(batchIndicesAtStep(5, 'full', 4, 7)).toEqual(batchIndices(5, 'full', 4, 7, 0));
  });
});

describe('gatherBatch', () => {
  it('copies the rows of x and y', () => {
    const split: Split = {
      x: Float32Array.from([0, 1, 2, 3, 4, 5]),
      y: Float32Array.from([1, 0, 0, 1, 1, 0]),
      n: 3,
    };
    const b = gatherBatch(split, [2, 0]);
    expect([b.size, ...b.x, ...b.y]).toEqual([2, 4, 5, 0, 1, 1, 0, 1, 0]);
    expect(() => gatherBatch(split, [3])).toThrow(/outside/);
  });
});

describe('batchHash', () => {
  it('is 16 hex chars of SHA-256 over little-endian uint32 indices', () => {
    // sha256 of the 8 bytes 01 00 00 00 02 00 00 00 (computed independently with `printf | sha256sum`).
    expect(batchHash(Uint32Array.from([1, 2]))).toBe('34fb5c825de7ca4a');
    expect(batchHash(Uint32Array.from([2, 1]))).not.toBe(batchHash(Uint32Array.from([1, 2])));
    expect(batchHash(Uint32Array.from([9, 1, 2]).subarray(1))).toBe(batchHash(Uint32Array.from([1, 2])));
  });
});
