/**
 * The butterfly-study specs on a synthetic study: 2 fork steps × 3 σ × 2 repeats of gaussian twins
 * plus a seed baseline of 2 repeats (fork step 0, so it is repeated in every t column).
 */
import { describe, expect, test } from 'vitest';
import type { ResultRow } from '../../src/measure/results.js';
import { butterflyPlots } from '../../src/report/butterfly-plots.js';
import { renderPlot } from '../../src/report/plot.js';
import { METRICS, type TwinInfo } from '../../src/study/types.js';

const TS = [10, 100];
const SIGMAS = [1e-4, 1e-3, 1e-2];
const STEPS = [0, 10, 100, 1000];
const ALPHAS = [0, 0.5, 1];

function study(): { rows: ResultRow[]; twins: TwinInfo[] } {
  const twins: TwinInfo[] = [];
  for (const t of TS)
    for (const sigma of SIGMAS)
      for (const repeat of [0, 1])
        twins.push({
          name: `g-t${t}-s${sigma}-r${repeat}`,
          reference: 'A',
          kind: 'gaussian',
          sigma,
          forkStep: t,
          repeat,
          seed: 1,
        });
  for (const repeat of [0, 1])
    twins.push({
      name: `seed-r${repeat}`,
      reference: 'A',
      kind: 'seed',
      sigma: 0,
      forkStep: 0,
      repeat,
      seed: 1,
    });

  const rows: ResultRow[] = [];
  const row = (tw: TwinInfo, r: Partial<ResultRow> & Pick<ResultRow, 'metric' | 'step' | 'value'>): void => {
    rows.push({ study: 's', runA: tw.reference, runB: tw.name, layer: null, split: null, options: {}, ...r });
  };
  for (const tw of twins) {
    const scale = tw.sigma || 0.5;
    const steps = STEPS.filter((s) => s >= tw.forkStep);
    for (const step of steps) {
      row(tw, {
        metric: METRICS.l2,
        step,
        value: step === 0 ? 0 : scale * (1 + step / 10) * (1 + tw.repeat / 10),
      });
      const barrier = { metric: METRICS.errorBarrier, step, split: 'test' as const, value: scale * 10 };
      row(tw, { ...barrier, options: { convention: 'linear' } });
      row(tw, { ...barrier, options: { convention: 'midpoint-mean' } }); // other convention: excluded
      row(tw, { ...barrier, split: 'train', options: { convention: 'linear' } }); // train: excluded
      for (const alpha of ALPHAS) {
        const value = 0.3 + scale * alpha * (1 - alpha);
        row(tw, { metric: METRICS.interpLoss, step, split: 'test', value, options: { alpha } });
      }
    }
    row(tw, { metric: METRICS.l2, step: 1000, layer: 'dense0.w', value: 1 }); // per tensor: excluded
    for (const method of ['weight', 'activation'])
      row(tw, {
        metric: METRICS.alignedErrorBarrier,
        step: 1000,
        split: 'test',
        value: scale,
        options: { method },
      });
    for (const layer of ['dense0', 'dense1'])
      row(tw, {
        metric: METRICS.cka,
        step: 1000,
        split: 'test',
        layer,
        value: 1 - scale * 10,
        options: { kernel: 'linear' },
      });
  }
  // A pair that is no twin of the study, and a row whose runA is not the twin's reference: ignored.
  rows.push({
    study: 's',
    runA: 'A',
    runB: 'other',
    step: 1000,
    metric: METRICS.l2,
    layer: null,
    split: null,
    value: 1,
    options: {},
  });
  rows.push({
    study: 's',
    runA: 'B',
    runB: 'seed-r0',
    step: 1000,
    metric: METRICS.l2,
    layer: null,
    split: null,
    value: 1,
    options: {},
  });
  return { rows, twins };
}

type Values = Record<string, unknown>[];
const valuesOf = (spec: unknown): Values => (spec as { data: { values: Values } }).data.values;
const count = (svg: string, roledescription: string) =>
  svg.split(`aria-roledescription="${roledescription}"`).length - 1;

describe('butterflyPlots', () => {
  const { rows, twins } = study();
  const plots = butterflyPlots(rows, twins);
  const byName = new Map(plots.map((p) => [p.name, p]));
  const weightTwins = TS.length * SIGMAS.length * 2;

  test('builds the five plots with the expected data', () => {
    expect(plots.map((p) => p.name)).toEqual([
      'l2-vs-step',
      'l2-final-vs-sigma',
      'barrier-vs-sigma',
      'interpolation',
      'cka-vs-sigma',
    ]);
    // l2-vs-step: t=10 twins have steps 10,100,1000; t=100 twins 100,1000; the seed baseline's
    // zero at step 0 is dropped and its 3 points are repeated in both t columns.
    const l2 = valuesOf(byName.get('l2-vs-step')?.spec);
    expect(l2).toHaveLength(6 * 3 + 6 * 2 + 2 * 3 * TS.length);
    expect(l2.every((d) => (d.step as number) > 0 && (d.value as number) > 0)).toBe(true);
    expect(l2.filter((d) => d.kind === 'seed').map((d) => d.panelT)).toEqual(expect.arrayContaining(TS));
    // Final L2: one value per twin (baselines included, drawn as rules).
    const final = valuesOf(byName.get('l2-final-vs-sigma')?.spec);
    expect(final).toHaveLength(weightTwins + 2);
    expect(final.every((d) => d.step === 1000)).toBe(true);
    // Barriers: linear convention + weight-aligned, test split, last step, σ > 0 only.
    const barrier = valuesOf(byName.get('barrier-vs-sigma')?.spec);
    expect(barrier).toHaveLength(2 * weightTwins);
    expect(barrier.filter((d) => d.measure === 'error barrier')).toHaveLength(weightTwins);
    expect(barrier.every((d) => d.step === 1000 && (d.sigma as number) > 0)).toBe(true);
    // Interpolation: 3 α per twin at the last step; the seed baseline in both columns.
    const interp = valuesOf(byName.get('interpolation')?.spec);
    expect(interp).toHaveLength(ALPHAS.length * (weightTwins + 2 * TS.length));
    expect(interp.every((d) => d.step === 1000)).toBe(true);
    // CKA: 2 layers per weight twin.
    expect(valuesOf(byName.get('cka-vs-sigma')?.spec)).toHaveLength(2 * weightTwins);
  });

  test('skips plots whose rows are absent', () => {
    const onlyL2 = rows.filter((r) => r.metric === METRICS.l2);
    expect(butterflyPlots(onlyL2, twins).map((p) => p.name)).toEqual(['l2-vs-step', 'l2-final-vs-sigma']);
    expect(butterflyPlots([], twins)).toEqual([]);
  });

  // Line marks in the SVG: one per twin (per facet cell it appears in), or one per mean series.
  const expectedLines: Record<string, number> = {
    'l2-vs-step': weightTwins + 2 * TS.length,
    'l2-final-vs-sigma': TS.length,
    'barrier-vs-sigma': TS.length * 2,
    interpolation: weightTwins + 2 * TS.length,
    'cka-vs-sigma': TS.length * 2,
  };
  for (const name of Object.keys(expectedLines)) {
    test(`${name} renders with one line mark per series`, async () => {
      const plot = byName.get(name);
      if (!plot) throw new Error(`no plot ${name}`);
      const { svg, png } = await renderPlot(plot.spec);
      expect(svg.startsWith('<svg')).toBe(true);
      expect(count(svg, 'line mark')).toBe(expectedLines[name]);
      expect(png.length).toBeGreaterThan(1000);
    });
  }

  test('final L2 draws one rule per baseline kind', async () => {
    const plot = byName.get('l2-final-vs-sigma');
    if (!plot) throw new Error('no plot');
    const { svg } = await renderPlot(plot.spec);
    expect(count(svg, 'rule mark')).toBe(1);
  });
});
