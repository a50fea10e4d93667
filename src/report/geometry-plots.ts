/**
 * Vega-Lite specs of a sweep's geometry measurements (docs/methods.md §12): how each run's network
 * responds to weight noise, how sharp it is, the loss surface around it, and whether sharpness
 * predicts sensitivity across the runs (Spearman's rank correlation, {@link geometryCorrelations}).
 *
 * Figures (each skipped when its rows are absent), from the rows at each run's last measured step:
 * - `sensitivity-accuracy`, `sensitivity-loss`: mean over the noise draws vs σ (log axis), a band of
 *   ± one standard deviation, one line per run, one panel per noise kind;
 * - `critical-sigma`: the critical σ of each run, per noise kind;
 * - `sharpness`: λ₁ … λ_k and the Hessian trace (± its standard error) of each run;
 * - `sharpness-vs-step`: λ_max and the trace against the measured step, when a run was measured at
 *   several steps;
 * - `sharpness-vs-critical-sigma`: one point per run, λ_max against the critical σ;
 * - `surface-<run>-<i>-<step>`: a heatmap of the loss on the surface's grid (log colour scale), θ as a
 *   point, and for PCA surfaces the trajectory drawn over it.
 *
 * Every spec carries its data inline, and every mark has a tooltip naming the run.
 */
import type { TopLevelSpec } from 'vega-lite';
import { spearman } from '../measure/rank-correlation.js';
import { METRICS } from '../results/metrics.js';
import type { ResultRow } from '../results/rows.js';
import type { SurfaceData } from '../results/surface-files.js';
import { seriesColor } from './plot.js';

/** One geometry figure: file stem, title and spec. */
export interface GeometryPlot {
  readonly name: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
}

/** One line of the rank-correlation table: ρ of a sharpness measure against a sensitivity measure. */
export interface GeometryCorrelation {
  /** `λ_max` or `trace`. */
  readonly sharpness: string;
  /** e.g. `critical σ (iid)`, `mean accuracy at σ = 0.1 (iid)`. */
  readonly sensitivity: string;
  /** The sign ρ has when sharper networks are more sensitive (−1 or +1). */
  readonly expected: -1 | 1;
  readonly rho: number;
  readonly pValue: number;
  /** Runs with both values. */
  readonly n: number;
}

type Datum = Record<string, string | number | null>;

/** Colours by run ({@link seriesColor}) for plots of `values`. */
const runColor = (values: readonly Datum[]) =>
  seriesColor('run', 'run', new Set(values.map((v) => v.run)).size);
const SIGMA_X = {
  field: 'sigma',
  type: 'quantitative',
  title: 'σ',
  scale: { type: 'log' },
  axis: { format: '.0e' },
} as const;

/** Rows of `metric` at the last step each run measured it (runs in first-seen order). */
function lastStepRows(rows: readonly ResultRow[], metric: string): ResultRow[] {
  const last = new Map<string, number>();
  for (const r of rows) if (r.metric === metric) last.set(r.runA, Math.max(last.get(r.runA) ?? -1, r.step));
  return rows.filter((r) => r.metric === metric && r.step === last.get(r.runA));
}

const opt = (r: ResultRow, key: string) => r.options[key];

/** The sensitivity curve data of `metric`: one record per (run, noise, σ > 0) with its statistics. */
function sensitivityData(rows: readonly ResultRow[], metric: string): Datum[] {
  const byKey = new Map<string, Datum>();
  for (const r of lastStepRows(rows, metric)) {
    const sigma = opt(r, 'sigma') as number;
    if (!(sigma > 0)) continue;
    const noise = String(opt(r, 'noise'));
    const key = `${r.runA}|${noise}|${sigma}`;
    const d = byKey.get(key) ?? { run: r.runA, noise, sigma, step: r.step, draws: opt(r, 'draws') as number };
    d[String(opt(r, 'stat'))] = Number.isFinite(r.value) ? r.value : null;
    byKey.set(key, d);
  }
  return [...byKey.values()].map((d) => {
    const mean = d.mean as number | null;
    const std = (d.std as number | null) ?? 0;
    return { ...d, lo: mean === null ? null : mean - std, hi: mean === null ? null : mean + std };
  });
}

function sensitivityPlot(
  rows: readonly ResultRow[],
  metric: string,
  what: 'accuracy' | 'loss',
): GeometryPlot[] {
  const values = sensitivityData(rows, metric);
  if (values.length === 0) return [];
  const split = rows.find((r) => r.metric === metric)?.split ?? 'test';
  const y = {
    field: 'mean',
    type: 'quantitative',
    title: `${split} ${what} (mean over draws)`,
    scale: what === 'loss' ? { type: 'log' } : { zero: false },
  };
  const tooltip = [
    { field: 'run', type: 'nominal' },
    { field: 'noise', type: 'nominal' },
    { field: 'sigma', type: 'quantitative', title: 'σ', format: '.3g' },
    { field: 'mean', type: 'quantitative', format: '.4g' },
    { field: 'std', type: 'quantitative', format: '.3g' },
    { field: 'min', type: 'quantitative', format: '.4g' },
    { field: 'max', type: 'quantitative', format: '.4g' },
    { field: 'draws', type: 'quantitative' },
  ];
  const layer = [
    {
      mark: { type: 'area', opacity: 0.15 },
      encoding: {
        x: SIGMA_X,
        y: { field: 'lo', type: 'quantitative', title: y.title, scale: y.scale },
        y2: { field: 'hi' },
        color: runColor(values),
      },
    },
    {
      mark: { type: 'line', point: true },
      encoding: { x: SIGMA_X, y, color: runColor(values), tooltip },
    },
  ];
  const title = {
    text: `Weight-perturbation sensitivity: ${split} ${what} vs σ`,
    subtitle:
      'mean over the noise draws, band ± one standard deviation; σ = 0 (the network itself) is not on the log axis',
  };
  return [
    {
      name: `sensitivity-${what}`,
      title: title.text,
      spec: {
        title,
        data: { values },
        facet: { column: { field: 'noise', type: 'nominal', title: 'noise' } },
        spec: { width: 300, height: 220, layer },
        resolve: { scale: { y: 'shared' } },
      } as unknown as TopLevelSpec,
    },
  ];
}

function criticalSigmaPlot(rows: readonly ResultRow[]): GeometryPlot[] {
  const values = lastStepRows(rows, METRICS.criticalSigma)
    .filter((r) => Number.isFinite(r.value))
    .map((r) => ({
      run: r.runA,
      noise: String(opt(r, 'noise')),
      sigma: r.value,
      clean: opt(r, 'clean') as number,
      drop: opt(r, 'drop') as number,
      step: r.step,
    }));
  if (values.length === 0) return [];
  const drop = values[0]?.drop ?? 0.1;
  return [
    {
      name: 'critical-sigma',
      title: 'Critical σ of each run',
      spec: {
        title: {
          text: 'Critical σ of each run',
          subtitle: `the σ at which the mean accuracy falls ${drop} below the clean accuracy (bisection on log σ)`,
        },
        data: { values },
        width: 320,
        height: { step: 18 },
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          y: { field: 'run', type: 'nominal', sort: null, title: 'run' },
          x: { ...SIGMA_X, title: 'critical σ', axis: { format: '~g' } },
          color: { field: 'noise', type: 'nominal', title: 'noise' },
          shape: { field: 'noise', type: 'nominal', title: 'noise' },
          tooltip: [
            { field: 'run', type: 'nominal' },
            { field: 'noise', type: 'nominal' },
            { field: 'sigma', type: 'quantitative', title: 'critical σ', format: '.4g' },
            { field: 'clean', type: 'quantitative', title: 'clean accuracy', format: '.4f' },
            { field: 'step', type: 'quantitative' },
          ],
        },
      } as TopLevelSpec,
    },
  ];
}

/** λ_k and trace records at each run's last step (all steps with `allSteps`). */
function sharpnessData(rows: readonly ResultRow[], allSteps: boolean): Datum[] {
  const pick = (metric: string) =>
    allSteps ? rows.filter((r) => r.metric === metric) : lastStepRows(rows, metric);
  const out: Datum[] = [];
  for (const r of pick(METRICS.sharpness)) {
    const k = opt(r, 'k') as number;
    out.push({
      run: r.runA,
      step: r.step,
      measure: k === 1 ? 'λ_max' : `λ${k}`,
      value: r.value,
      lo: null,
      hi: null,
    });
  }
  for (const r of pick(METRICS.hessianTrace)) {
    const se = opt(r, 'stderr');
    const s = typeof se === 'number' && Number.isFinite(se) ? se : 0;
    out.push({
      run: r.runA,
      step: r.step,
      measure: 'trace',
      value: r.value,
      lo: r.value - s,
      hi: r.value + s,
    });
  }
  return out;
}

function sharpnessPlots(rows: readonly ResultRow[]): GeometryPlot[] {
  const values = sharpnessData(rows, false);
  if (values.length === 0) return [];
  const positive = values.every((v) => (v.value as number) > 0 && ((v.lo as number | null) ?? 1) > 0);
  const scale = positive ? { type: 'log' } : { zero: false };
  const tooltip = [
    { field: 'run', type: 'nominal' },
    { field: 'measure', type: 'nominal' },
    { field: 'value', type: 'quantitative', format: '.4g' },
    { field: 'step', type: 'quantitative' },
  ];
  const subtitle =
    'Hessian of the training loss: top eigenvalues (Lanczos) and trace (Hutchinson, ± standard error)';
  const plots: GeometryPlot[] = [
    {
      name: 'sharpness',
      title: 'Sharpness of each run',
      spec: {
        title: { text: 'Sharpness of each run', subtitle },
        data: { values },
        width: 320,
        height: { step: 18 },
        layer: [
          {
            transform: [{ filter: 'datum.lo !== null' }],
            mark: { type: 'rule' },
            encoding: {
              y: { field: 'run', type: 'nominal', sort: null },
              x: { field: 'lo', type: 'quantitative', scale },
              x2: { field: 'hi' },
              color: { field: 'measure', type: 'nominal', title: 'measure' },
            },
          },
          {
            mark: { type: 'point', filled: true, size: 60 },
            encoding: {
              y: { field: 'run', type: 'nominal', sort: null, title: 'run' },
              x: { field: 'value', type: 'quantitative', title: 'eigenvalue / trace', scale },
              color: { field: 'measure', type: 'nominal', title: 'measure' },
              tooltip,
            },
          },
        ],
      } as TopLevelSpec,
    },
  ];
  const all = sharpnessData(rows, true);
  const stepsPerRun = new Map<string, Set<number>>();
  for (const d of all)
    stepsPerRun.set(d.run as string, (stepsPerRun.get(d.run as string) ?? new Set()).add(d.step as number));
  if ([...stepsPerRun.values()].some((s) => s.size > 1)) {
    const series = all.filter((d) => d.measure === 'λ_max' || d.measure === 'trace');
    plots.push({
      name: 'sharpness-vs-step',
      title: 'Sharpness at the measured steps',
      spec: {
        title: { text: 'Sharpness at the measured steps', subtitle },
        data: { values: series },
        facet: { column: { field: 'measure', type: 'nominal', title: null } },
        spec: {
          width: 300,
          height: 220,
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'step', type: 'quantitative', title: 'step' },
            y: { field: 'value', type: 'quantitative', title: 'value', scale },
            color: runColor(series),
            tooltip,
          },
        },
        resolve: { scale: { y: 'independent' } },
      } as unknown as TopLevelSpec,
    });
  }
  return plots;
}

/** λ_max against the critical σ, one point per run and noise kind. */
function scatterPlot(rows: readonly ResultRow[]): GeometryPlot[] {
  const lambda = new Map(
    lastStepRows(rows, METRICS.sharpness)
      .filter((r) => opt(r, 'k') === 1)
      .map((r) => [r.runA, r.value]),
  );
  const values = lastStepRows(rows, METRICS.criticalSigma)
    .filter((r) => Number.isFinite(r.value) && Number.isFinite(lambda.get(r.runA)))
    .map((r) => ({
      run: r.runA,
      noise: String(opt(r, 'noise')),
      sigma: r.value,
      lambda: lambda.get(r.runA) as number,
    }));
  if (values.length === 0) return [];
  const logLambda = values.every((v) => v.lambda > 0);
  return [
    {
      name: 'sharpness-vs-critical-sigma',
      title: 'Sharpness against critical σ',
      spec: {
        title: {
          text: 'Sharpness against critical σ',
          subtitle: 'one point per run; rank correlations in the table',
        },
        data: { values },
        width: 320,
        height: 240,
        mark: { type: 'point', filled: true, size: 70 },
        encoding: {
          x: {
            field: 'lambda',
            type: 'quantitative',
            title: 'λ_max',
            scale: logLambda ? { type: 'log' } : { zero: false },
          },
          y: { field: 'sigma', type: 'quantitative', title: 'critical σ', scale: { type: 'log' } },
          color: runColor(values),
          shape: { field: 'noise', type: 'nominal', title: 'noise' },
          tooltip: [
            { field: 'run', type: 'nominal' },
            { field: 'noise', type: 'nominal' },
            { field: 'lambda', type: 'quantitative', title: 'λ_max', format: '.4g' },
            { field: 'sigma', type: 'quantitative', title: 'critical σ', format: '.4g' },
          ],
        },
      } as TopLevelSpec,
    },
  ];
}

/** Cell edges of a sorted axis: midpoints between values, the ends extended by half a step. */
function edges(axis: readonly number[]): number[] {
  if (axis.length === 1) return [(axis[0] as number) - 0.5, (axis[0] as number) + 0.5];
  const mid = axis.slice(1).map((v, i) => (v + (axis[i] as number)) / 2);
  const first = (axis[0] as number) - ((mid[0] as number) - (axis[0] as number));
  const last = (axis.at(-1) as number) + ((axis.at(-1) as number) - (mid.at(-1) as number));
  return [first, ...mid, last];
}

/** The file stem of a surface's figure: `surface-<run>-<i>-<step>` made folder-safe. */
function surfaceName(s: SurfaceData, index: number): string {
  const run = s.meta.run.replace(/[^A-Za-z0-9._-]+/g, '_');
  return `surface-${run}-${s.meta.directions}-${index}-${s.meta.step}`;
}

/** A 1-D surface (`line`): loss against x, log-scaled when positive, θ marked at x = 0. */
function linePlot(s: SurfaceData, index: number): GeometryPlot {
  const points = s.x.map((x, i) => {
    const loss = s.loss[0]?.[i] as number;
    const acc = s.accuracy[0]?.[i] as number;
    return { x, loss: Number.isFinite(loss) ? loss : null, accuracy: Number.isFinite(acc) ? acc : null };
  });
  const positive = points.every((p) => p.loss === null || p.loss > 0);
  const y = {
    field: 'loss',
    type: 'quantitative',
    title: `${s.meta.split} loss`,
    ...(positive && { scale: { type: 'log' } }),
  };
  const x = { field: 'x', type: 'quantitative', title: 'x (along d₁, filter-normalized)' };
  const text = `Loss along a random direction: ${s.meta.run} at step ${s.meta.step}`;
  const subtitle = `θ + x d₁, d₁ random filter-normalized (seed ${String(s.meta.seed ?? 0)}); ${s.meta.examples} ${s.meta.split} examples`;
  const layer = [
    {
      data: { values: points },
      mark: { type: 'line', point: true },
      encoding: {
        x,
        y,
        tooltip: [
          { field: 'x', type: 'quantitative', format: '.3g' },
          { field: 'loss', type: 'quantitative', format: '.4g' },
          { field: 'accuracy', type: 'quantitative', format: '.4f' },
        ],
      },
    },
    {
      data: { values: points.filter((p) => p.x === 0) },
      mark: { type: 'point', shape: 'cross', filled: true, color: '#D55E00', size: 90 },
      encoding: { x, y },
    },
  ];
  return {
    name: surfaceName(s, index),
    title: text,
    spec: { title: { text, subtitle }, width: 320, height: 220, layer } as TopLevelSpec,
  };
}

function surfacePlot(s: SurfaceData, index: number): GeometryPlot {
  if (s.meta.directions === 'line') return linePlot(s, index);
  const ex = edges(s.x);
  const ey = edges(s.y);
  const cells: Datum[] = [];
  s.y.forEach((b, j) => {
    s.x.forEach((a, i) => {
      const loss = s.loss[j]?.[i] as number;
      const acc = s.accuracy[j]?.[i] as number;
      cells.push({
        a,
        b,
        a0: ex[i] as number,
        a1: ex[i + 1] as number,
        b0: ey[j] as number,
        b1: ey[j + 1] as number,
        loss: Number.isFinite(loss) ? loss : null,
        accuracy: Number.isFinite(acc) ? acc : null,
      });
    });
  });
  const positive = cells.every((c) => c.loss === null || (c.loss as number) > 0);
  const pca = s.meta.directions === 'pca';
  const evr = s.meta.explainedVarianceRatio as number[] | undefined;
  const axis = (k: 0 | 1) =>
    pca
      ? `PC${k + 1}${evr ? ` (${(100 * (evr[k] as number)).toFixed(1)}% variance)` : ''}`
      : `d${k + 1} (filter-normalized)`;
  const path = s.path.map((p) => ({ ...p, a: p.x, b: p.y }));
  const origin = [{ a: 0, b: 0, step: s.meta.step, what: 'θ (measured checkpoint)' }];
  const layer: unknown[] = [
    {
      data: { values: cells },
      mark: { type: 'rect' },
      encoding: {
        x: { field: 'a0', type: 'quantitative', title: axis(0), scale: { zero: false, nice: false } },
        x2: { field: 'a1' },
        y: { field: 'b0', type: 'quantitative', title: axis(1), scale: { zero: false, nice: false } },
        y2: { field: 'b1' },
        color: {
          field: 'loss',
          type: 'quantitative',
          title: `${s.meta.split} loss`,
          scale: positive ? { type: 'log', scheme: 'viridis' } : { scheme: 'viridis' },
        },
        tooltip: [
          { field: 'a', type: 'quantitative', title: 'x', format: '.3g' },
          { field: 'b', type: 'quantitative', title: 'y', format: '.3g' },
          { field: 'loss', type: 'quantitative', format: '.4g' },
          { field: 'accuracy', type: 'quantitative', format: '.4f' },
        ],
      },
    },
  ];
  if (path.length > 0) {
    layer.push(
      {
        data: { values: path },
        mark: { type: 'line', color: 'white', strokeWidth: 1.5 },
        encoding: {
          x: { field: 'a', type: 'quantitative' },
          y: { field: 'b', type: 'quantitative' },
          order: { field: 'step', type: 'quantitative' },
        },
      },
      {
        data: { values: path },
        mark: { type: 'point', filled: true, color: 'white', stroke: 'black', strokeWidth: 0.5, size: 30 },
        encoding: {
          x: { field: 'a', type: 'quantitative' },
          y: { field: 'b', type: 'quantitative' },
          tooltip: [
            { field: 'step', type: 'quantitative' },
            { field: 'loss', type: 'quantitative', format: '.4g' },
            { field: 'accuracy', type: 'quantitative', format: '.4f' },
            { field: 'a', type: 'quantitative', title: 'x', format: '.3g' },
            { field: 'b', type: 'quantitative', title: 'y', format: '.3g' },
          ],
        },
      },
    );
  }
  layer.push({
    data: { values: origin },
    mark: { type: 'point', shape: 'cross', filled: true, color: '#D55E00', size: 90 },
    encoding: {
      x: { field: 'a', type: 'quantitative' },
      y: { field: 'b', type: 'quantitative' },
      tooltip: [
        { field: 'what', type: 'nominal', title: 'point' },
        { field: 'step', type: 'quantitative' },
      ],
    },
  });
  const text = `Loss surface of ${s.meta.run} at step ${s.meta.step}`;
  const subtitle = pca
    ? `plane of the top two PCA directions of its trajectory (white: the checkpoints); ${s.meta.examples} ${s.meta.split} examples`
    : `θ + x d₁ + y d₂, random filter-normalized directions (seed ${String(s.meta.seed ?? 0)}); ${s.meta.examples} ${s.meta.split} examples`;
  return {
    name: surfaceName(s, index),
    title: text,
    spec: { title: { text, subtitle }, width: 300, height: 280, layer } as TopLevelSpec,
  };
}

/** The geometry figures of a sweep (see the module comment); none without geometry rows or surfaces. */
export function geometryPlots(rows: readonly ResultRow[], surfaces: readonly SurfaceData[]): GeometryPlot[] {
  const order = new Map<string, number>();
  return [
    ...sensitivityPlot(rows, METRICS.sensitivityAccuracy, 'accuracy'),
    ...sensitivityPlot(rows, METRICS.sensitivityLoss, 'loss'),
    ...criticalSigmaPlot(rows),
    ...sharpnessPlots(rows),
    ...scatterPlot(rows),
    ...surfaces.map((s) => {
      const key = `${s.meta.run}|${s.meta.directions}|${s.meta.step}`;
      const i = order.get(key) ?? 0;
      order.set(key, i + 1);
      return surfacePlot(s, i);
    }),
  ];
}

/**
 * Spearman's rank correlation across runs of each sharpness measure (λ_max; the trace) with each
 * sensitivity measure (the critical σ, and the mean accuracy and loss at σ = `correlateAt`, per
 * noise kind), from each run's values at its last measured step. Runs lacking either value are left
 * out (`n` counts those used). Empty when there is no sharpness or no sensitivity.
 */
export function geometryCorrelations(
  rows: readonly ResultRow[],
  correlateAt: number | undefined,
): GeometryCorrelation[] {
  const sharp: { name: string; values: Map<string, number> }[] = [
    {
      name: 'λ_max',
      values: new Map(
        lastStepRows(rows, METRICS.sharpness)
          .filter((r) => opt(r, 'k') === 1)
          .map((r) => [r.runA, r.value]),
      ),
    },
    {
      name: 'trace',
      values: new Map(lastStepRows(rows, METRICS.hessianTrace).map((r) => [r.runA, r.value])),
    },
  ].filter((s) => s.values.size > 0);
  const sens: { name: string; expected: -1 | 1; values: Map<string, number> }[] = [];
  const noises = [
    ...new Set(lastStepRows(rows, METRICS.sensitivityLoss).map((r) => String(opt(r, 'noise')))),
  ];
  const critical = lastStepRows(rows, METRICS.criticalSigma);
  for (const noise of [...new Set([...noises, ...critical.map((r) => String(opt(r, 'noise')))])]) {
    const c = critical.filter((r) => opt(r, 'noise') === noise);
    if (c.length > 0)
      sens.push({
        name: `critical σ (${noise})`,
        expected: -1,
        values: new Map(c.map((r) => [r.runA, r.value])),
      });
    if (correlateAt === undefined) continue;
    for (const [metric, what, expected] of [
      [METRICS.sensitivityAccuracy, 'mean accuracy', -1],
      [METRICS.sensitivityLoss, 'mean loss', 1],
    ] as const) {
      const at = lastStepRows(rows, metric).filter(
        (r) => opt(r, 'noise') === noise && opt(r, 'stat') === 'mean' && opt(r, 'sigma') === correlateAt,
      );
      if (at.length > 0) {
        sens.push({
          name: `${what} at σ = ${correlateAt} (${noise})`,
          expected,
          values: new Map(at.map((r) => [r.runA, r.value])),
        });
      }
    }
  }
  const out: GeometryCorrelation[] = [];
  for (const s of sharp) {
    for (const t of sens) {
      const runs = [...s.values.keys()].filter((run) => t.values.has(run));
      const r = spearman(
        runs.map((run) => s.values.get(run) as number),
        runs.map((run) => t.values.get(run) as number),
      );
      out.push({
        sharpness: s.name,
        sensitivity: t.name,
        expected: t.expected,
        rho: r.rho,
        pValue: r.pValue,
        n: r.n,
      });
    }
  }
  return out;
}
