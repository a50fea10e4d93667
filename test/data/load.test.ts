import { describe, expect, it } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import { featureStats } from '../../src/data/split.js';
import type { DatasetSpec } from '../../src/data/types.js';

describe('loadDataset', () => {
  it('dispatches on name and is a function of (spec, seed)', () => {
    const spec: DatasetSpec = { name: 'moons', n: 50 };
    const a = loadDataset(spec, 1);
    expect(a.name).toBe('moons');
    expect(loadDataset(spec, 1).train.x).toEqual(a.train.x);
    expect(loadDataset(spec, 2).train.x).not.toEqual(a.train.x);
    expect(loadDataset({ name: 'linear-regression', n: 20, dim: 3, decay: 1 }, 1).task).toBe('regression');
  });

  it('reuses a loaded dataset for the same spec and seed only', () => {
    const spec: DatasetSpec = { name: 'moons', n: 40 };
    const a = loadDataset(spec, 7);
    expect(loadDataset({ name: 'moons', n: 40 }, 7)).toBe(a);
    expect(loadDataset(spec, 8)).not.toBe(a);
    // Two other datasets loaded since: the least recently used is dropped and loaded afresh, equal.
    loadDataset({ name: 'moons', n: 42 }, 7);
    loadDataset({ name: 'moons', n: 43 }, 7);
    const again = loadDataset(spec, 7);
    expect(again).not.toBe(a);
    expect(again.train.x).toEqual(a.train.x);
  });

  it('standardizes with train statistics and records them', () => {
    const d = loadDataset({ name: 'linear-regression', n: 1000, dim: 3, decay: 2, standardize: true }, 4);
    const s = featureStats(d.train, 3);
    for (let j = 0; j < 3; j++) {
      expect(s.mean[j]).toBeCloseTo(0, 5);
      expect(s.std[j]).toBeCloseTo(1, 5);
    }
    const raw = loadDataset({ name: 'linear-regression', n: 1000, dim: 3, decay: 2 }, 4);
    const st = d.meta.standardize as { mean: number[]; std: number[] };
    expect(d.test.x[0]).toBeCloseTo(((raw.test.x[0] as number) - st.mean[0]!) / st.std[0]!, 5);
    expect(d.train.y).toEqual(raw.train.y);
  });

  it('rejects unknown names', () => {
    expect(() => loadDataset({ name: 'cifar' } as unknown as DatasetSpec, 0)).toThrow(
      /unknown dataset 'cifar'/,
    );
  });
});
