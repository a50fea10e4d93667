import { createRequire } from 'node:module';
import { describe, expect, test } from 'vitest';
import { assignmentObjective, linearAssignment } from '../../src/measure/assignment.js';
import { Rng } from '../../src/rng/rng.js';

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  const out: number[][] = [];
  for (const p of permutations(n - 1)) {
    for (let i = 0; i <= p.length; i++) out.push([...p.slice(0, i), n - 1, ...p.slice(i)]);
  }
  return out;
}

function bruteForce(c: number[][], maximize: boolean): number {
  let best = maximize ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  for (const p of permutations(c.length)) {
    let s = 0;
    for (let i = 0; i < p.length; i++) s += (c[i] as number[])[p[i] as number] as number;
    if (maximize ? s > best : s < best) best = s;
  }
  return best;
}

function isPermutation(p: Int32Array, n: number): boolean {
  return p.length === n && [...p].sort((x, y) => x - y).every((v, i) => v === i);
}

const objective = (c: number[][], p: Int32Array) => assignmentObjective(c, p);

describe('linearAssignment', () => {
  test.each([false, true])('matches brute force for n = 1..8 (maximize = %s)', (maximize) => {
    const rng = Rng.fromSeed(11).stream('assignment', maximize ? 1 : 0);
    for (let n = 1; n <= 8; n++) {
      const trials = n <= 6 ? 60 : 12;
      for (let t = 0; t < trials; t++) {
        const kind = t % 3; // 0: small integers with many ties, 1: reals, 2: large mixed-sign reals
        const c = Array.from({ length: n }, () =>
          Array.from({ length: n }, () =>
            kind === 0 ? rng.int(7) - 3 : kind === 1 ? 2 * rng.uniform() - 1 : (rng.uniform() - 0.5) * 1e10,
          ),
        );
        const perm = linearAssignment(c, { maximize });
        expect(isPermutation(perm, n)).toBe(true);
        const best = bruteForce(c, maximize);
        if (kind === 0) expect(objective(c, perm)).toBe(best);
        else expect(objective(c, perm)).toBeCloseTo(best, kind === 1 ? 12 : 0);
      }
    }
  });

  test('all-equal and constant-row matrices (pure ties)', () => {
    for (const v of [0, -5, 3.25]) {
      const c = Array.from({ length: 5 }, () => Array(5).fill(v));
      expect(isPermutation(linearAssignment(c), 5)).toBe(true);
      expect(isPermutation(linearAssignment(c, { maximize: true }), 5)).toBe(true);
    }
  });

  test('known small cases, flat input and number[] data', () => {
    expect([...linearAssignment([[7]])]).toEqual([0]);
    expect([...linearAssignment([])]).toEqual([]);
    const c = [
      [400, 150, 400],
      [400, 450, 600],
      [300, 225, 300],
    ];
    expect(objective(c, linearAssignment(c))).toBe(850);
    expect(objective(c, linearAssignment(c, { maximize: true }))).toBe(1225);
    // Identity is the unique maximum of a dominant diagonal; negated it is the unique minimum.
    const flat = { rows: 3, cols: 3, data: new Float64Array([9, -1, 2, 0, 8, -3, 1, 1, 7]) };
    expect([...linearAssignment(flat, { maximize: true })]).toEqual([0, 1, 2]);
    const neg = { rows: 3, cols: 3, data: [...flat.data].map((x) => -x) };
    expect([...linearAssignment(neg)]).toEqual([0, 1, 2]);
  });

  test('rejects non-square, ragged and non-finite matrices', () => {
    expect(() => linearAssignment({ rows: 2, cols: 3, data: new Float64Array(6) })).toThrow(/square.*2×3/);
    expect(() => linearAssignment([[1, 2, 3]])).toThrow(/square.*1×3/);
    expect(() =>
      linearAssignment([
        [1, 2],
        [3, 4, 5],
      ]),
    ).toThrow(/ragged/);
    expect(() => linearAssignment({ rows: 2, cols: 2, data: [1, 2, 3] })).toThrow(/needs 4 entries/);
    expect(() =>
      linearAssignment([
        [1, Number.NaN],
        [0, 1],
      ]),
    ).toThrow(/not finite/);
  });

  test('n = 512 random: fast, a permutation, and at least as good as greedy', () => {
    const n = 512;
    const rng = Rng.fromSeed(3).stream('big');
    const data = new Float64Array(n * n);
    for (let k = 0; k < data.length; k++) data[k] = rng.normal();
    const cost = { rows: n, cols: n, data };
    const t0 = performance.now();
    const perm = linearAssignment(cost, { maximize: true });
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(5000);
    expect(isPermutation(perm, n)).toBe(true);
    // Greedy: each row in turn takes its best free column.
    const taken = new Uint8Array(n);
    const greedy = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      let best = -1;
      for (let j = 0; j < n; j++) {
        if (!taken[j] && (best < 0 || (data[i * n + j] as number) > (data[i * n + best] as number))) best = j;
      }
      taken[best] = 1;
      greedy[i] = best;
    }
    expect(assignmentObjective(cost, perm)).toBeGreaterThanOrEqual(assignmentObjective(cost, greedy));
    // Minimizing agrees with the hungarian-on3 package (whose minimization is correct).
    const require = createRequire(import.meta.url);
    const hungarian = require('hungarian-on3') as (c: number[][]) => [number, number][];
    const rows = Array.from({ length: n }, (_, i) => Array.from(data.subarray(i * n, (i + 1) * n)));
    const ref = new Int32Array(n);
    for (const [i, j] of hungarian(rows)) ref[i] = j;
    const mine = linearAssignment(cost);
    expect(assignmentObjective(cost, mine)).toBeCloseTo(assignmentObjective(cost, ref), 8);
  });
});
