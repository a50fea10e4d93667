/**
 * Spearman's rank correlation: against a brute-force computation (ranks by counting, the Pearson
 * correlation of the ranks written out), with ties, non-finite values and constant samples; and
 * against SciPy's `spearmanr` (ρ and its two-sided p-value) when SciPy is installed.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { findPython } from '../../src/bench/python.js';
import { averageRanks, spearman } from '../../src/measure/rank-correlation.js';
import { Rng } from '../../src/rng/rng.js';

/** Rank of each value by counting: 1 + (values below) + (other values equal) / 2. */
function bruteRanks(v: readonly number[]): number[] {
  return v.map((a) => 1 + v.filter((b) => b < a).length + (v.filter((b) => b === a).length - 1) / 2);
}

function brutePearson(a: readonly number[], b: readonly number[]): number {
  const n = a.length;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let num = 0;
  let da = 0;
  let db = 0;
  for (let i = 0; i < n; i++) {
    num += ((a[i] as number) - ma) * ((b[i] as number) - mb);
    da += ((a[i] as number) - ma) ** 2;
    db += ((b[i] as number) - mb) ** 2;
  }
  return num / Math.sqrt(da * db);
}

/** Seeded samples with ties (values rounded to a few levels). */
function samples(seed: number, n: number, levels: number): [number[], number[]] {
  const rng = Rng.fromSeed(seed).stream('test');
  const x = Array.from({ length: n }, () => Math.round(rng.normal() * levels) / levels);
  const y = x.map((v) => Math.round((0.5 * v + rng.normal()) * levels) / levels);
  return [x, y];
}

describe('spearman', () => {
  test('ranks: ties share their mean rank', () => {
    expect([...averageRanks([10, 20, 20, 5, 20])]).toEqual([2, 4, 4, 1, 4]);
    expect([...averageRanks([3, 1, 2])]).toEqual([3, 1, 2]);
  });

  test('equals the brute-force Pearson correlation of the ranks, with and without ties', () => {
    for (let seed = 0; seed < 20; seed++) {
      const [x, y] = samples(seed, 5 + seed, seed % 2 === 0 ? 2 : 1000);
      const expected = brutePearson(bruteRanks(x), bruteRanks(y));
      const r = spearman(x, y);
      expect(r.n).toBe(x.length);
      expect(r.rho).toBeCloseTo(expected, 12);
    }
    expect(spearman([1, 2, 3, 4], [10, 20, 30, 40]).rho).toBe(1);
    expect(spearman([1, 2, 3, 4], [4, 3, 2, 1])).toEqual({ rho: -1, n: 4, pValue: 0 });
  });

  test('pairs with a non-finite value are left out; too few or constant samples give NaN', () => {
    const r = spearman([1, Number.NaN, 3, 4, 5], [2, 1, Number.POSITIVE_INFINITY, 8, 9]);
    expect(r.n).toBe(3);
    expect(r.rho).toBe(1);
    expect(spearman([1], [2])).toMatchObject({ n: 1, rho: Number.NaN });
    expect(spearman([1, 1, 1], [1, 2, 3])).toMatchObject({ n: 3, rho: Number.NaN, pValue: Number.NaN });
    expect(() => spearman([1, 2], [1])).toThrow(/x has 2 values, y has 1/);
  });
});

const probe = await findPython(['scipy']);
if (!probe.python)
  console.warn(`rank-correlation.test.ts: SciPy cross-check SKIPPED (${probe.tried.join('; ')})`);

describe.skipIf(!probe.python)('spearman against scipy.stats.spearmanr', () => {
  test('ρ and the two-sided p-value agree', () => {
    const cases = Array.from({ length: 12 }, (_, i) => samples(100 + i, 4 + 3 * i, i % 3 === 0 ? 2 : 1e6));
    const script = [
      'import json, sys',
      'from scipy.stats import spearmanr',
      'out = []',
      'for x, y in json.load(sys.stdin):',
      '    r = spearmanr(x, y)',
      '    out.append([float(r[0]), float(r[1])])',
      'print(json.dumps(out))',
    ].join('\n');
    const run = spawnSync(probe.python as string, ['-c', script], {
      input: JSON.stringify(cases),
      encoding: 'utf8',
    });
    expect(run.status, run.stderr).toBe(0);
    const expected = JSON.parse(run.stdout) as [number, number][];
    cases.forEach(([x, y], i) => {
      const r = spearman(x, y);
      const [rho, p] = expected[i] as [number, number];
      expect(r.rho).toBeCloseTo(rho, 12);
      expect(Math.abs(r.pValue - p)).toBeLessThan(1e-10 * Math.max(1, p));
    });
  });
});
