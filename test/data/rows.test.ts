import { describe, expect, it } from 'vitest';
import { classificationSplit, oneHot, regressionSplit, takeRows } from '../../src/data/rows.js';

describe('rows', () => {
  const m = Float32Array.from([0, 1, 10, 11, 20, 21]);

  it('takes rows in the given order', () => {
    expect([...takeRows(m, 2, [2, 0])]).toEqual([20, 21, 0, 1]);
  });

  it('one-hot encodes labels and rejects labels out of range', () => {
    expect([...oneHot(Int32Array.from([2, 0]), 3)]).toEqual([0, 0, 1, 1, 0, 0]);
    expect(() => oneHot(Int32Array.from([3]), 3)).toThrow(/label 3 at row 0/);
  });

  it('builds classification and regression splits', () => {
    const c = classificationSplit(m, 2, Int32Array.from([0, 1, 1]), 2, [1]);
    expect([c.n, ...c.x, ...c.y, ...c.labels!]).toEqual([1, 10, 11, 0, 1, 1]);
    const r = regressionSplit(m, 2, Float32Array.from([7, 8, 9]), 1, [2, 1]);
    expect([r.n, ...r.x, ...r.y]).toEqual([2, 20, 21, 10, 11, 9, 8]);
    expect(regressionSplit(m, 2, Float32Array.from([7, 8, 9]), 1).n).toBe(3);
  });
});
