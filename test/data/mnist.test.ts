import { describe, expect, it } from 'vitest';
import { loadMnist, readMnistDigits } from '../../src/data/mnist.js';
import { Rng } from '../../src/rng/rng.js';

describe('mnist', () => {
  it('reads the 10,000 digits of the mnist package with pixels in [0, 1]', () => {
    const { x, labels } = readMnistDigits();
    expect(labels).toHaveLength(10_000);
    expect(x).toHaveLength(10_000 * 784);
    const counts = new Array<number>(10).fill(0);
    for (const c of labels) counts[c]!++;
    // Per-digit image counts of the package's 0.json … 9.json.
    expect(counts).toEqual([1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    expect([lo, hi]).toEqual([0, 1]);
  });

  it('splits with the data seed, deterministically', () => {
    const a = loadMnist({ name: 'mnist', nTrain: 500, nTest: 100 }, Rng.fromSeed(1));
    expect([a.train.n, a.test.n, a.inputDim, a.outputDim]).toEqual([500, 100, 784, 10]);
    const b = loadMnist({ name: 'mnist', nTrain: 500, nTest: 100 }, Rng.fromSeed(1));
    expect(b.train.x).toEqual(a.train.x);
    const c = loadMnist({ name: 'mnist', nTrain: 500, nTest: 100 }, Rng.fromSeed(2));
    expect(c.train.labels).not.toEqual(a.train.labels);
    const all = loadMnist({ name: 'mnist' }, Rng.fromSeed(1));
    expect([all.train.n, all.test.n]).toEqual([8000, 2000]);
    expect(() => loadMnist({ name: 'mnist', nTrain: 9000, nTest: 2000 }, Rng.fromSeed(1))).toThrow(/exceeds/);
  });
});
