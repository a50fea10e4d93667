/**
 * The butterfly-study specs on a synthetic study: 2 fork steps × 3 σ × 2 repeats of gaussian twins
 * plus a seed baseline of 2 repeats (fork step 0, so it is repeated in every t column).
 *
 * Values depend on σ, repeat, step, α and layer, and rows the plots must leave out carry values of
 * their own, so that the plotted values, the means over repeats and the mark positions checked
 * below pin down which row each mark shows.
 */
import { parse, type Spec, View } from 'vega';
import { compile } from 'vega-lite';
import { describe, expect, test } from 'vitest';
import { butterflyPlots } from '../../src/report/butterfly-plots.js';
import { renderPlot } from '../../src/report/plot.js';
import { METRICS, type TwinInfo } from '../../src/results/metrics.js';
import type { ResultRow } from '../../src/results/rows.js';

const TS = [10, 100];
const SIGMAS = [1e-4, 1e-3, 1e-2];
const STEPS = [0, 10, 100, 1000];
const ALPHAS = [0, 0.5, 1];
const FINAL = STEPS[STEPS.length - 1] as number;

function study(): { rows: ResultRow[]; twins: TwinInfo[] } {
  const twins: TwinInfo[] = [];
  for (const t of TS)
    for (const sigma of SIGMAS)
      for (const repeat of [0, 1])
        twins.push({
          runA: 'A',
          runB: `g-t${t}-s${sigma}-r${repeat}`,
          kind: 'gaussian',
          sigma,
          forkStep: t,
          repeat,
          seed: 1,
        });
  for (const repeat of [0, 1])
    twins.push({
      runA: 'A',
      runB: `seed-r${repeat}`,
      kind: 'seed',
      sigma: 0,
      forkStep: 0,
      repeat,
      seed: 1,
    });

  const rows: ResultRow[] = [];
  const row = (tw: TwinInfo, r: Partial<ResultRow> & Pick<ResultRow, 'metric' | 'step' | 'value'>): void => {
    rows.push({ study: 's', runA: tw.runA, runB: tw.runB, layer: null, split: null, options: {}, ...r });
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
      const growth = (1 + step / 1000) * (1 + tw.repeat / 10);
      const barrier = {
        metric: METRICS.errorBarrier,
        step,
        split: 'test' as const,
        value: scale * 10 * growth,
      };
      row(tw, { ...barrier, options: { convention: 'linear' } });
      // Other convention and train split: excluded (and told apart by their values).
      row(tw, { ...barrier, value: scale * 20, options: { convention: 'midpoint-mean' } });
      row(tw, { ...barrier, value: scale * 30, split: 'train', options: { convention: 'linear' } });
      for (const alpha of ALPHAS) {
        const value = 0.3 + scale * alpha * (1 - alpha) * growth;
        row(tw, { metric: METRICS.interpLoss, step, split: 'test', value, options: { alpha } });
      }
    }
    row(tw, { metric: METRICS.l2, step: 1000, layer: 'dense0.w', value: 1 }); // per tensor: excluded
    for (const method of ['weight', 'activation'])
      row(tw, {
        metric: METRICS.alignedErrorBarrier,
        step: 1000,
        split: 'test',
        value: method === 'weight' ? scale * (1 + tw.repeat / 10) : scale * 5, // activation: excluded
        options: { method },
      });
    for (const [l, layer] of ['dense0', 'dense1'].entries()) {
      const cka = { metric: METRICS.cka, split: 'test' as const, layer, options: { kernel: 'linear' } };
      row(tw, { ...cka, step: 1000, value: 1 - tw.sigma * (10 + 5 * l) * (1 + tw.repeat / 10) });
      row(tw, { ...cka, step: 100, value: 0.5 }); // not the last step: excluded
    }
  }
  // A pair that is no twin of the study, and a row whose runA is not the twin's runA: ignored.
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

/** The fields a plotted datum carries, in a fixed order, for comparing data sets regardless of order. */
const FIELDS = [
  'runB',
  'kind',
  'sigma',
  't',
  'panelT',
  'repeat',
  'step',
  'value',
  'layer',
  'alpha',
  'measure',
];
const normalized = (data: Values) =>
  data
    .map((d) => Object.fromEntries(FIELDS.filter((f) => d[f] !== undefined).map((f) => [f, d[f]])))
    .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));

/**
 * The data a plot should hold, built here from the input rows: one record per (twin, selected row
 * of that twin), with the twin's σ, fork step and repeat; `panels` repeats seed baselines into every
 * t column; `weightOnly` keeps weight-perturbed twins (σ > 0) only.
 */
function expectedData(
  rows: readonly ResultRow[],
  twins: readonly TwinInfo[],
  keep: (r: ResultRow) => boolean,
  opts: { panels?: boolean; weightOnly?: boolean; extra?: (r: ResultRow) => Record<string, unknown> } = {},
): Values {
  const out: Values = [];
  for (const tw of twins) {
    if (opts.weightOnly && (tw.kind === 'seed' || tw.sigma === 0)) continue;
    for (const r of rows) {
      if (r.runA !== tw.runA || r.runB !== tw.runB || !keep(r)) continue;
      for (const panelT of opts.panels && tw.kind === 'seed' ? TS : [tw.forkStep]) {
        out.push({
          runB: tw.runB,
          kind: tw.kind,
          sigma: tw.sigma,
          t: tw.forkStep,
          panelT,
          repeat: tw.repeat,
          step: r.step,
          value: r.value,
          layer: r.layer,
          ...opts.extra?.(r),
        });
      }
    }
  }
  return out;
}

/** Means over repeats of `data`, grouped by fork step, kind, σ and the `by` fields. */
function meansOverRepeats(data: Values, by: string[] = []): Values {
  const groups = new Map<string, { key: Record<string, unknown>; values: number[] }>();
  for (const d of data) {
    const key = Object.fromEntries(['t', 'kind', 'sigma', ...by].map((f) => [f, d[f]]));
    const k = JSON.stringify(key);
    const g = groups.get(k) ?? { key, values: [] };
    g.values.push(d.value as number);
    groups.set(k, g);
  }
  return [...groups.values()].map(({ key, values }) => ({
    ...key,
    n: values.length,
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  }));
}

interface SceneItem {
  marktype: string;
  datum: Record<string, unknown>;
  x: number;
  y: number;
}

/** Compile and run a spec in vega (no rendering) and return its mark items and its x / y scales. */
async function scene(spec: unknown) {
  const view = new View(parse(compile(spec as Parameters<typeof compile>[0]).spec as Spec), {
    renderer: 'none',
  });
  await view.runAsync();
  const items: SceneItem[] = [];
  type Node = { marktype?: string; role?: string; items?: (SceneItem & { items?: Node[] })[] };
  const walk = (node: Node) => {
    for (const item of node.items ?? []) {
      if (node.role === 'mark' && item.datum) items.push({ ...item, marktype: node.marktype as string });
      for (const child of item.items ?? []) walk(child);
    }
  };
  // The typings call the scenegraph a Scene; at run time it is a Scenegraph whose `root` is the top mark.
  walk((view.scenegraph() as unknown as { root: Node }).root);
  const x = view.scale('x') as (v: unknown) => number;
  const y = view.scale('y') as (v: unknown) => number;
  view.finalize();
  return { items, x, y };
}

/** Group keys, counts and means of the aggregated (mean-over-repeats) marks of one mark type. */
const meanMarks = (items: SceneItem[], marktype: string, by: string[] = []) =>
  items
    .filter((i) => i.marktype === marktype && i.datum.mean !== undefined)
    .map((i) => Object.fromEntries(['t', 'kind', 'sigma', ...by, 'n', 'mean'].map((f) => [f, i.datum[f]])));
/** Same groups in both lists (any order), and equal means to float64 rounding. */
function expectMeans(got: Values, want: Values): void {
  const sortKey = (d: Record<string, unknown>) => JSON.stringify({ ...d, mean: undefined });
  const g = [...got].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  const w = [...want].sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
  expect(g.map(sortKey)).toEqual(w.map(sortKey));
  for (const [i, d] of g.entries()) {
    const m = w[i]?.mean as number;
    expect(Math.abs((d.mean as number) - m)).toBeLessThanOrEqual(1e-12 * Math.abs(m));
  }
}
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

  const final = (r: ResultRow) => r.step === FINAL;
  const isTest = (r: ResultRow) => r.split === 'test';
  const l2 = (r: ResultRow) => r.metric === METRICS.l2 && r.layer === null;
  /** What each plot should hold, from the rows (a plot's "final" step is the study's last, FINAL). */
  const expected: Record<string, Values> = {
    'l2-vs-step': expectedData(rows, twins, (r) => l2(r) && r.step > 0 && r.value > 0, { panels: true }),
    'l2-final-vs-sigma': expectedData(rows, twins, (r) => l2(r) && final(r)),
    'barrier-vs-sigma': [
      ...expectedData(
        rows,
        twins,
        (r) =>
          r.metric === METRICS.errorBarrier && isTest(r) && final(r) && r.options.convention === 'linear',
        { weightOnly: true, extra: () => ({ measure: 'error barrier' }) },
      ),
      ...expectedData(
        rows,
        twins,
        (r) =>
          r.metric === METRICS.alignedErrorBarrier && isTest(r) && final(r) && r.options.method === 'weight',
        { weightOnly: true, extra: () => ({ measure: 'aligned error barrier' }) },
      ),
    ],
    interpolation: expectedData(
      rows,
      twins,
      (r) => r.metric === METRICS.interpLoss && isTest(r) && final(r),
      {
        panels: true,
        extra: (r) => ({ alpha: r.options.alpha }),
      },
    ),
    'cka-vs-sigma': expectedData(rows, twins, (r) => r.metric === METRICS.cka && isTest(r) && final(r), {
      weightOnly: true,
    }),
  };

  test('each spec holds exactly the input rows it plots, with the twin’s σ, t and repeat', () => {
    for (const [name, data] of Object.entries(expected)) {
      const got = valuesOf(byName.get(name)?.spec);
      expect(normalized(got), name).toEqual(normalized(data));
    }
    // Spot checks written out: the values come from the rows' formulas, not from the code under test.
    const l2Data = valuesOf(byName.get('l2-vs-step')?.spec);
    const at = (run: string, step: number) => l2Data.filter((d) => d.runB === run && d.step === step);
    expect(at('g-t10-s0.001-r1', 100).map((d) => d.value)).toEqual([1e-3 * 11 * 1.1]);
    expect(at('seed-r0', 1000).map((d) => [d.panelT, d.t, d.sigma, d.value])).toEqual([
      [10, 0, 0, 0.5 * 101],
      [100, 0, 0, 0.5 * 101],
    ]);
    const barrier = valuesOf(byName.get('barrier-vs-sigma')?.spec);
    expect(
      barrier.filter((d) => d.runB === 'g-t100-s0.01-r0').map((d) => [d.measure, d.step, d.value]),
    ).toEqual([
      ['error barrier', 1000, 0.01 * 10 * 2],
      ['aligned error barrier', 1000, 0.01],
    ]);
    const cka = valuesOf(byName.get('cka-vs-sigma')?.spec);
    expect(cka.filter((d) => d.runB === 'g-t10-s0.01-r1').map((d) => [d.layer, d.value])).toEqual([
      ['dense0', 1 - 0.01 * 10 * 1.1],
      ['dense1', 1 - 0.01 * 15 * 1.1],
    ]);
  });

  test('aggregated marks show the means over repeats, computed here from the rows', async () => {
    // Final L2: one line point per (t, σ) over the two repeats; the seed rule is the mean of its repeats.
    const l2Final = expected['l2-final-vs-sigma'] as Values;
    const { items } = await scene(byName.get('l2-final-vs-sigma')?.spec);
    const weightMeans = meansOverRepeats(l2Final.filter((d) => (d.sigma as number) > 0));
    expect(weightMeans).toHaveLength(TS.length * SIGMAS.length);
    expect(weightMeans.every((m) => m.n === 2)).toBe(true);
    expectMeans(meanMarks(items, 'symbol'), weightMeans);
    const rules = items.filter((i) => i.marktype === 'rule');
    expect(rules.map((i) => [i.datum.kind, i.datum.n])).toEqual([['seed', 2]]);
    expect(rules[0]?.datum.mean).toBeCloseTo((0.5 * 101 * (1 + 1.1)) / 2, 12);

    // Barrier: means per (t, σ, measure); CKA: per (t, σ, layer).
    const barrierScene = await scene(byName.get('barrier-vs-sigma')?.spec);
    expectMeans(
      meanMarks(barrierScene.items, 'symbol', ['measure']),
      meansOverRepeats(expected['barrier-vs-sigma'] as Values, ['measure']),
    );
    const linear = meanMarks(barrierScene.items, 'symbol', ['measure']).find(
      (m) => m.t === 10 && m.sigma === 1e-3 && m.measure === 'error barrier',
    );
    expect(linear?.mean).toBeCloseTo(1e-3 * 10 * 2 * 1.05, 12);
    const ckaScene = await scene(byName.get('cka-vs-sigma')?.spec);
    expectMeans(
      meanMarks(ckaScene.items, 'symbol', ['layer']),
      meansOverRepeats(expected['cka-vs-sigma'] as Values, ['layer']),
    );
    expect(meanMarks(ckaScene.items, 'symbol', ['layer'])).toHaveLength(TS.length * SIGMAS.length * 2);
  });

  // x field of each plot: σ for the "vs σ" plots; y is the value (or its mean over repeats).
  const xField: Record<string, string> = {
    'l2-vs-step': 'step',
    'l2-final-vs-sigma': 'sigma',
    'barrier-vs-sigma': 'sigma',
    interpolation: 'alpha',
    'cka-vs-sigma': 'sigma',
  };
  test.each(Object.entries(xField))(
    '%s: marks sit at (x scale(%s), y scale(value or mean))',
    async (name, field) => {
      const { items, x, y } = await scene(byName.get(name)?.spec);
      const drawn = items.filter((i) => i.marktype !== 'text' && i.datum.value !== null);
      expect(drawn.length).toBeGreaterThan(0);
      for (const item of drawn) {
        const v = (item.datum.mean ?? item.datum.value) as number;
        expect(Number.isFinite(v)).toBe(true);
        expect(Math.abs(item.y - y(v)), `${name} y of ${JSON.stringify(item.datum)}`).toBeLessThan(1e-6);
        if (item.marktype === 'rule') continue; // a rule spans the x range
        expect(
          Math.abs(item.x - x(item.datum[field])),
          `${name} x of ${JSON.stringify(item.datum)}`,
        ).toBeLessThan(1e-6);
      }
      // Every plotted datum has a mark (the per-twin points / line vertices).
      const marked = new Set(drawn.filter((i) => i.datum.mean === undefined).map((i) => i.datum));
      const data = valuesOf(byName.get(name)?.spec).filter((d) => d.value !== null);
      expect(marked.size).toBe(
        name === 'l2-final-vs-sigma' ? data.filter((d) => (d.sigma as number) > 0).length : data.length,
      );
    },
  );

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
