/**
 * The geometry figures and the rank-correlation table of a measured sweep, from hand-made rows: which
 * figures appear, that each run's last measured step is used, and that every correlation equals
 * Spearman's ρ computed by hand on the same per-run values.
 */
import { describe, expect, test } from 'vitest';
import { geometryCorrelations, geometryPlots } from '../../src/report/geometry-plots.js';
import { renderPlot } from '../../src/report/plot.js';
import { METRICS } from '../../src/results/metrics.js';
import type { ResultRow } from '../../src/results/rows.js';
import type { SurfaceData } from '../../src/results/surface-files.js';

const row = (
  runA: string,
  step: number,
  metric: string,
  value: number,
  options: Record<string, unknown>,
): ResultRow => ({
  study: 's',
  runA,
  runB: null,
  step,
  metric,
  layer: null,
  split: metric === METRICS.sharpness || metric === METRICS.hessianTrace ? 'train' : 'test',
  value,
  options,
});

const runs = ['a', 'b', 'c', 'd', 'e'];
const lambda = [1, 2, 3, 4, 5];
const trace = [10, 30, 20, 50, 40];
const critical = [0.5, 0.4, 0.45, 0.2, 0.1];
const accAt = [0.9, 0.8, 0.85, 0.5, 0.6];

function rows(): ResultRow[] {
  const out: ResultRow[] = [];
  runs.forEach((run, i) => {
    // An earlier step with other values: the last step must win.
    out.push(row(run, 5, METRICS.sharpness, 100 - i, { k: 1 }));
    out.push(row(run, 10, METRICS.sharpness, lambda[i] as number, { k: 1 }));
    out.push(row(run, 10, METRICS.sharpness, (lambda[i] as number) / 2, { k: 2 }));
    out.push(row(run, 10, METRICS.hessianTrace, trace[i] as number, { probes: 10, stderr: 1 }));
    out.push(
      row(run, 10, METRICS.criticalSigma, critical[i] as number, { noise: 'iid', drop: 0.1, clean: 0.9 }),
    );
    for (const [sigma, acc] of [
      [0, 0.95],
      [0.1, accAt[i] as number],
    ] as const) {
      for (const stat of ['mean', 'std', 'min', 'max']) {
        const options = { sigma, noise: 'iid', draws: 3, stat };
        out.push(row(run, 10, METRICS.sensitivityAccuracy, stat === 'std' ? 0.01 : acc, options));
        out.push(row(run, 10, METRICS.sensitivityLoss, stat === 'std' ? 0.01 : 1 - acc, options));
      }
    }
  });
  out.push(row('f', 3, METRICS.diverged, Number.NaN, { run: 'f', reason: 'loss' }));
  return out;
}

/** Spearman's ρ without ties, by the textbook formula 1 − 6 Σd² / (n (n² − 1)). */
function rhoNoTies(x: readonly number[], y: readonly number[]): number {
  const rank = (v: readonly number[]) => v.map((a) => 1 + v.filter((b) => b < a).length);
  const rx = rank(x);
  const ry = rank(y);
  const n = x.length;
  const d2 = rx.reduce((s, r, i) => s + (r - (ry[i] as number)) ** 2, 0);
  return 1 - (6 * d2) / (n * (n * n - 1));
}

const surface: SurfaceData = {
  meta: {
    run: 'a',
    step: 10,
    directions: 'pca',
    split: 'train',
    examples: 50,
    explainedVarianceRatio: [0.9, 0.05],
  },
  x: [-1, 0, 1],
  y: [-1, 0, 1],
  loss: [
    [3, 2, 3],
    [2, 1, 2],
    [3, 2, 3],
  ],
  accuracy: [
    [0.5, 0.6, 0.5],
    [0.6, 0.9, 0.6],
    [0.5, 0.6, 0.5],
  ],
  path: [
    { step: 0, x: 1, y: 1, loss: 3, accuracy: 0.5 },
    { step: 5, x: 0.5, y: 0, loss: 1.5, accuracy: 0.8 },
    { step: 10, x: 0, y: 0, loss: 1, accuracy: 0.9 },
  ],
};

describe('geometry figures', () => {
  test('every figure of the rows, and one heatmap per surface; each renders', async () => {
    const plots = geometryPlots(rows(), [surface]);
    expect(plots.map((p) => p.name)).toEqual([
      'sensitivity-accuracy',
      'sensitivity-loss',
      'critical-sigma',
      'sharpness',
      'sharpness-vs-step',
      'sharpness-vs-critical-sigma',
      'surface-a-pca-0-10',
    ]);
    const sharpness = plots.find((p) => p.name === 'sharpness')?.spec as unknown as {
      data: { values: unknown[] };
    };
    // λ1, λ2 and the trace of each of the five runs, at step 10 only.
    expect(sharpness.data.values).toHaveLength(15);
    expect(sharpness.data.values.every((v) => (v as { step: number }).step === 10)).toBe(true);
    const heat = JSON.stringify(plots.at(-1)?.spec);
    expect(heat).toContain('"type":"rect"');
    expect(heat).toContain('PC1 (90.0% variance)');
    const svg = (await renderPlot((plots.at(-1) as (typeof plots)[number]).spec)).svg;
    // One rect per grid cell, the path's line and points, and θ.
    expect(svg.match(/aria-roledescription="rect mark"/g)).toHaveLength(9);
    expect(svg.match(/aria-roledescription="point"/g)).toHaveLength(4);
    expect(geometryPlots([], [])).toEqual([]);
  });

  test("the rank correlations equal Spearman ρ by hand on each run's last-step values", () => {
    const table = geometryCorrelations(rows(), 0.1);
    const acc = accAt;
    const loss = accAt.map((a) => 1 - a);
    expect(table.map((c) => [c.sharpness, c.sensitivity, c.expected, c.n])).toEqual([
      ['λ_max', 'critical σ (iid)', -1, 5],
      ['λ_max', 'mean accuracy at σ = 0.1 (iid)', -1, 5],
      ['λ_max', 'mean loss at σ = 0.1 (iid)', 1, 5],
      ['trace', 'critical σ (iid)', -1, 5],
      ['trace', 'mean accuracy at σ = 0.1 (iid)', -1, 5],
      ['trace', 'mean loss at σ = 0.1 (iid)', 1, 5],
    ]);
    const expected = [
      rhoNoTies(lambda, critical),
      rhoNoTies(lambda, acc),
      rhoNoTies(lambda, loss),
      rhoNoTies(trace, critical),
      rhoNoTies(trace, acc),
      rhoNoTies(trace, loss),
    ];
    table.forEach((c, i) => {
      expect(c.rho).toBeCloseTo(expected[i] as number, 12);
      expect(c.pValue).toBeGreaterThanOrEqual(0);
      expect(c.pValue).toBeLessThanOrEqual(1);
    });
    expect(table[0]?.rho).toBeCloseTo(-0.9, 12);
    // Without a σ to correlate at: only the critical σ.
    expect(geometryCorrelations(rows(), undefined).map((c) => c.sensitivity)).toEqual([
      'critical σ (iid)',
      'critical σ (iid)',
    ]);
  });
});
