/**
 * The stability-onset search (src/study/onset.ts) on hand-made error-barrier rows: no training, the
 * `ensure` callback plans the extra fork steps and "measures" their twins from a barrier profile.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import { METRICS, type TwinInfo } from '../../src/results/metrics.js';
import { type ResultRow, readResults, writeResults } from '../../src/results/rows.js';
import { searchOnset } from '../../src/study/onset.js';
import { planStudy, type StudyPlan } from '../../src/study/plan.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

/** 45 steps with a checkpoint at every step: 45 candidate fork steps, 0..44. */
const study = parseStudySpec({
  name: 'onset',
  base: { ...tinyBase, checkpoints: { every: 1 } },
  perturbations: [{ kind: 'gaussian', sigmas: [1e-2], forkSteps: [0], repeats: 1 }],
  measure: { distance: {} },
  onset: { kind: 'gaussian', sigmas: [0.1], repeats: 2 },
});
const nTrain = loadDataset(study.base.data, study.base.dataSeed).train.n;
const grid = planStudy(study, nTrain);
const T = grid.totalSteps;
const THRESHOLD = 0.02;
const root = scratchDir('twinscope-onset-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

/**
 * The barrier rows of one twin's measurement: the linear error barrier at T on `split` (the one the
 * search reads), and rows it must ignore — each with the opposite verdict — at another step, in the
 * other convention, of the loss, and (for split 'test') on the train split.
 */
function barrierRows(w: TwinInfo, value: number, split: 'train' | 'test'): ResultRow[] {
  const opposite = value < THRESHOLD ? 0.5 : 0;
  const row = (over: Partial<ResultRow>): ResultRow => ({
    study: study.name,
    runA: w.runA,
    runB: w.runB,
    step: T,
    metric: METRICS.errorBarrier,
    layer: null,
    split,
    value: opposite,
    options: { convention: 'linear', alphaStar: 0.5, alphas: 11, examples: 100 },
    ...over,
  });
  return [
    row({ value }),
    row({ step: T - 5 }),
    row({ options: { convention: 'midpoint-mean', alphaStar: 0.5, alphas: 11, examples: 100 } }),
    row({ metric: METRICS.lossBarrier }),
    ...(split === 'test' ? [row({ split: 'train' })] : []),
    row({ metric: METRICS.l2, split: null, value: 1, options: {} }),
  ];
}

/**
 * Run the search with a fake `ensure`: it plans the requested fork steps and gives every new twin
 * the rows of `barrier(twin)` (undefined: its measurement failed, no rows at all).
 */
async function search(barrier: (w: TwinInfo) => number | undefined, split: 'train' | 'test' = 'test') {
  const rowsOf = new Map<string, ResultRow[]>();
  const calls: number[][] = [];
  const ensure = async (extra: number[]): Promise<StudyPlan> => {
    calls.push(extra);
    const plan = planStudy(study, nTrain, extra);
    for (const w of plan.twins) {
      const v = barrier(w);
      if (!rowsOf.has(w.runB) && v !== undefined) rowsOf.set(w.runB, barrierRows(w, v, split));
    }
    return plan;
  };
  const rows = await searchOnset(study, grid, ensure, rowsOf);
  expect(rows).toHaveLength(1);
  const row = rows[0] as ResultRow;
  return { row, calls, evaluated: row.options.evaluated as [number, number][] };
}

/**
 * A monotone profile with onset k: the two repeats' barriers average above the threshold before k
 * (though repeat 0 alone is below it) and below it from k on. Other twins (the grid's σ = 1e-2)
 * look stable everywhere, so mixing them in would move the onset.
 */
const UNSTABLE = [0.001, 0.1] as const;
const STABLE = [0.005, 0.015] as const;
const mean = (v: readonly [number, number]) => (0 + v[0] + v[1]) / 2;
const monotone = (k: number) => (w: TwinInfo) =>
  w.sigma !== 0.1 ? 0 : ((w.forkStep < k ? UNSTABLE : STABLE)[w.repeat] as number);

const U = mean(UNSTABLE);
const S = mean(STABLE);

describe('searchOnset', () => {
  test('the setting: 45 candidate fork steps (0..44), the onset twins have two repeats', () => {
    expect(T).toBe(45);
    expect(grid.checkpoints.filter((c) => c < T)).toEqual(Array.from({ length: 45 }, (_, i) => i));
    expect(U).toBeGreaterThan(THRESHOLD);
    expect(S).toBeLessThan(THRESHOLD);
  });

  test('bisection finds the earliest stable fork step of a monotone profile, evaluating O(log n) steps', async () => {
    const { row, calls, evaluated } = await search(monotone(17));
    expect(row).toEqual({
      study: 'onset',
      runA: 's0/parent',
      runB: null,
      step: 17,
      metric: METRICS.stabilityOnset,
      layer: null,
      split: null,
      value: 17,
      options: {
        kind: 'gaussian',
        sigma: 0.1,
        threshold: THRESHOLD,
        repeats: 2,
        found: true,
        // First, last, then bisection: 22, 11, 16, 19, 17.
        evaluated: [
          [0, U],
          [11, U],
          [16, U],
          [17, S],
          [19, S],
          [22, S],
          [44, S],
        ],
        missing: [],
      },
    });
    // One ensure per evaluated step, each asking for every step so far.
    expect(calls).toEqual([
      [0],
      [0, 44],
      [0, 22, 44],
      [0, 11, 22, 44],
      [0, 11, 16, 22, 44],
      [0, 11, 16, 19, 22, 44],
      [0, 11, 16, 17, 19, 22, 44],
    ]);
    expect(evaluated.length).toBeLessThanOrEqual(2 + Math.ceil(Math.log2(44)));
  });

  test('every onset 1..44 is found exactly with at most 2 + ⌈log2 44⌉ = 8 evaluations', async () => {
    for (const k of [1, 2, 5, 23, 30, 43, 44]) {
      const { row, evaluated } = await search(monotone(k));
      expect(row.value, `onset ${k}`).toBe(k);
      expect(evaluated.length, `onset ${k}`).toBeLessThanOrEqual(8);
      // The bracket it ends on: k − 1 unstable, k stable.
      const at = new Map(evaluated);
      expect(at.get(k - 1), `onset ${k}`).toBe(U);
      expect(at.get(k), `onset ${k}`).toBe(S);
    }
  });

  test('every step stable: the onset is the first candidate, after one evaluation', async () => {
    const { row, calls } = await search(monotone(0));
    expect(row.value).toBe(0);
    expect(row.step).toBe(0);
    expect(row.options).toMatchObject({ found: true, evaluated: [[0, S]], missing: [] });
    expect(calls).toEqual([[0]]);
  });

  test('no step stable (a barrier equal to the threshold is not below it): value NaN, found false', async () => {
    const { row } = await search((w) => (w.sigma === 0.1 ? THRESHOLD : 0));
    expect(row.value).toBeNaN();
    expect(row.step).toBe(T);
    expect(row.options).toMatchObject({
      found: false,
      evaluated: [
        [0, THRESHOLD],
        [44, THRESHOLD],
      ],
      missing: [],
    });
  });

  test('without test rows the train split is used', async () => {
    const { row } = await search(monotone(17), 'train');
    expect(row.value).toBe(17);
    expect(row.options.evaluated).toContainEqual([17, S]);
  });

  describe('a fork step whose measurement failed (its twins have no barrier rows)', () => {
    test('counts as unstable and is recorded in options.missing; the onset can only move later', async () => {
      const profile = monotone(17);
      const { row, evaluated } = await search((w) => (w.forkStep === 22 ? undefined : profile(w)));
      // 22 (the first midpoint) counts as unstable, so the search goes up: 33, 27, 24, 23.
      expect(row.value).toBe(23);
      expect(row.options.found).toBe(true);
      expect(row.options.missing).toEqual([22]);
      expect(evaluated.map(([t]) => t)).toEqual([0, 22, 23, 24, 27, 33, 44]);
      expect(new Map(evaluated).get(22)).toBeNaN();
      for (const [t, b] of evaluated) if (t !== 22) expect(b).toBe(t < 17 ? U : S);

      // In the results file the missing barrier is null and `missing` survives as written.
      const file = join(root, 'onset.arrow');
      writeResults(file, [row]);
      const [back] = readResults(file);
      expect(back?.options.missing).toEqual([22]);
      expect(back?.options.evaluated).toContainEqual([22, null]);
      expect(back?.value).toBe(23);
    });

    test('when every evaluated step is missing there is no onset, and both ends are listed', async () => {
      const { row } = await search((w) => (w.sigma === 0.1 ? undefined : 0));
      expect(row.value).toBeNaN();
      expect(row.options.found).toBe(false);
      expect(row.options.missing).toEqual([0, 44]);
      expect((row.options.evaluated as [number, number][]).map(([t]) => t)).toEqual([0, 44]);
    });

    test('one repeat missing is not a missing step: the mean is over the repeats that were measured', async () => {
      const profile = monotone(17);
      // At 22 only repeat 1 (barrier 0.015, stable) was measured.
      const { row } = await search((w) => (w.forkStep === 22 && w.repeat === 0 ? undefined : profile(w)));
      expect(row.value).toBe(17);
      expect(row.options.missing).toEqual([]);
      expect(new Map(row.options.evaluated as [number, number][]).get(22)).toBe(STABLE[1]);
    });
  });
});
