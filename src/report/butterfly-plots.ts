/**
 * Vega-Lite specs of the butterfly study: how far twin B drifts from twin A as a function of the
 * perturbation size σ and the fork step t, and whether the two end in one linearly connected basin.
 *
 * Every spec carries its data inline (one flat record per plotted measurement, see {@link PlotDatum})
 * so it can be written next to its SVG/PNG and re-rendered interactively; every mark has a tooltip
 * with run, σ, t, step and value. A plot whose rows are absent from the results is skipped.
 */
import type { TopLevelSpec } from 'vega-lite';
import { METRICS, type PerturbationKind, type TwinInfo } from '../results/metrics.js';
import type { ResultRow } from '../results/rows.js';

/** One butterfly figure: file stem, human title and the spec (data inline). */
export interface ButterflyPlot {
  readonly name: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
}

/** The flat record each spec's `data.values` holds. */
interface PlotDatum {
  /** Twin A's run name (the reference). */
  readonly runA: string;
  /** Twin B's run name. */
  readonly runB: string;
  readonly kind: PerturbationKind;
  readonly sigma: number;
  /** The twin's own fork step. */
  readonly t: number;
  /** The facet column it is drawn in: `t`, except for baselines replicated into every column. */
  readonly panelT: number;
  readonly repeat: number;
  readonly step: number;
  readonly value: number;
  readonly layer: string | null;
  /** Interpolation point (interpolation plot only). */
  readonly alpha?: number;
  /** Which measure (barrier plot only). */
  readonly measure?: string;
}

const WEIGHT_KINDS: readonly PerturbationKind[] = ['gaussian', 'batch'];
const KIND_ORDER: PerturbationKind[] = ['gaussian', 'batch', 'seed', 'init'];
const isWeight = (k: PerturbationKind) => WEIGHT_KINDS.includes(k);

const TOOLTIP = [
  { field: 'runB', type: 'nominal', title: 'twin B' },
  { field: 'kind', type: 'nominal', title: 'kind' },
  { field: 'sigma', type: 'quantitative', title: 'σ', format: '.3g' },
  { field: 't', type: 'quantitative', title: 't' },
  { field: 'step', type: 'quantitative', title: 'step' },
  { field: 'value', type: 'quantitative', title: 'value', format: '.4g' },
] as const;

/** Tooltip of aggregated (mean over repeats) marks. */
const MEAN_TOOLTIP = [
  { field: 'sigma', type: 'quantitative', title: 'σ', format: '.3g' },
  { field: 't', type: 'quantitative', title: 't' },
  { field: 'step', type: 'quantitative', title: 'step' },
  { field: 'mean', type: 'quantitative', title: 'mean over repeats', format: '.4g' },
  { field: 'n', type: 'quantitative', title: 'repeats' },
] as const;

const SIGMA_COLOR = {
  field: 'sigma',
  type: 'ordinal',
  title: 'σ',
  legend: { labelExpr: "datum.value === 0 ? '0' : format(datum.value, '.0e')" },
} as const;
const T_COLOR = {
  field: 't',
  type: 'nominal',
  title: 'fork step t',
  sort: 'ascending',
  legend: { symbolOpacity: 1 },
} as const;
const SIGMA_X = {
  field: 'sigma',
  type: 'quantitative',
  title: 'σ (relative to init norm)',
  scale: { type: 'log' },
  axis: { format: '.0e' },
} as const;
const PANEL_SIZE = { width: 220, height: 160 } as const;
const ROW_KIND = { field: 'kind', type: 'nominal', title: 'kind', sort: KIND_ORDER } as const;
const COLUMN_T = { field: 'panelT', type: 'ordinal', title: 'fork step t', sort: 'ascending' } as const;
const SIGMA0_NOTE = 'σ = 0 (seed / init baselines) is not on the log σ axis';

/**
 * The butterfly-study figures from the measurement rows and the study's twins. Rows pair with
 * twins by `row.runA === twin.runA && row.runB === twin.runB`; rows of no twin are ignored.
 *
 * - `l2-vs-step`: ‖θ_A − θ_B‖ over training, one line per twin, colour σ, facets t × kind.
 * - `l2-final-vs-sigma`: final L2 vs σ (mean over repeats, one line per t), seed/init baselines
 *   as horizontal rules.
 * - `barrier-vs-sigma`: final test error barrier (linear convention) and weight-aligned error
 *   barrier vs σ, one line per t (mean over repeats), facets measure × kind.
 * - `interpolation`: final test loss along the linear path θ(α), one line per twin, colour σ.
 * - `cka-vs-sigma`: final CKA per hidden layer vs σ (mean over repeats), facets t × kind.
 *
 * "Final" is each twin's largest step at which that metric was measured. A pair with a diverged run
 * (a `diverged` row) has no final value: it is drawn in `l2-vs-step` up to the divergence only.
 */
export function butterflyPlots(rows: readonly ResultRow[], twins: readonly TwinInfo[]): ButterflyPlot[] {
  const byKey = new Map(twins.map((tw) => [pairKey(tw.runA, tw.runB), tw]));
  const joined: { row: ResultRow; twin: TwinInfo }[] = [];
  for (const row of rows) {
    const twin = row.runB === null ? undefined : byKey.get(pairKey(row.runA, row.runB));
    if (twin) joined.push({ row, twin });
  }
  const weightTs = [...new Set(twins.filter((tw) => isWeight(tw.kind)).map((tw) => tw.forkStep))].sort(
    (a, b) => a - b,
  );
  const select = (keep: (r: ResultRow) => boolean) => joined.filter(({ row }) => keep(row));
  const divergedPairs = new Set(
    joined.filter(({ row }) => row.metric === METRICS.diverged).map(({ twin }) => twin),
  );
  /** The rows at each twin's last measured step, without the pairs that diverged. */
  const final = (rows: readonly Joined[]) => lastStep(rows.filter(({ twin }) => !divergedPairs.has(twin)));

  const plots: ButterflyPlot[] = [];
  const add = (plot: ButterflyPlot | null) => {
    if (plot) plots.push(completeFacetGrid(plot));
  };

  const l2 = select((r) => r.metric === METRICS.l2 && r.layer === null && Number.isFinite(r.value));
  add(l2VsStep(l2, weightTs));
  add(l2FinalVsSigma(final(l2)));
  add(
    barrierVsSigma(
      final(
        select(
          (r) => r.metric === METRICS.errorBarrier && r.split === 'test' && r.options.convention === 'linear',
        ),
      ),
      final(
        select(
          (r) =>
            r.metric === METRICS.alignedErrorBarrier && r.split === 'test' && r.options.method === 'weight',
        ),
      ),
    ),
  );
  add(
    interpolation(
      final(
        select(
          (r) => r.metric === METRICS.interpLoss && r.split === 'test' && typeof r.options.alpha === 'number',
        ),
      ),
      weightTs,
    ),
  );
  const cka = select((r) => r.metric === METRICS.cka && r.layer !== null);
  const ckaSplit = cka.some(({ row }) => row.split === 'test') ? 'test' : 'train';
  add(ckaVsSigma(final(cka.filter(({ row }) => row.split === ckaSplit)), ckaSplit));
  return plots;
}

type Joined = { row: ResultRow; twin: TwinInfo };

function pairKey(a: string, b: string): string {
  return `${a}\u0000${b}`;
}

/** The rows at each twin's largest step present in `rows`. */
function lastStep(rows: readonly Joined[]): Joined[] {
  const last = new Map<TwinInfo, number>();
  for (const { row, twin } of rows) last.set(twin, Math.max(last.get(twin) ?? -Infinity, row.step));
  return rows.filter(({ row, twin }) => row.step === last.get(twin));
}

function datum({ row, twin }: Joined, panelT = twin.forkStep): PlotDatum {
  return {
    runA: twin.runA,
    runB: twin.runB,
    kind: twin.kind,
    sigma: twin.sigma,
    t: twin.forkStep,
    panelT,
    repeat: twin.repeat,
    step: row.step,
    value: row.value,
    layer: row.layer,
  };
}

/**
 * Vega lays out the cells of a row × column facet in data order with as many columns as the
 * column field has values, so a missing (row, column) combination shifts every later cell into the
 * wrong header. Placeholder data (null value and step, so their marks are invalid and not drawn)
 * make the grid complete.
 */
function completeFacetGrid(plot: ButterflyPlot): ButterflyPlot {
  const spec = plot.spec as {
    facet?: { row?: { field?: string }; column?: { field?: string } };
    data?: { values?: Record<string, unknown>[] };
  };
  const rowField = spec.facet?.row?.field;
  const colField = spec.facet?.column?.field;
  const values = spec.data?.values;
  if (!rowField || !colField || !values) return plot;
  const distinct = (f: string) => [...new Set(values.map((v) => v[f]))];
  const present = new Set(values.map((v) => JSON.stringify([v[rowField], v[colField]])));
  const fill: Record<string, unknown>[] = [];
  for (const r of distinct(rowField)) {
    for (const c of distinct(colField)) {
      if (present.has(JSON.stringify([r, c]))) continue;
      // A copy of a real datum (so colour and legend domains stay the same) with nothing to draw.
      fill.push({ ...values[0], [rowField]: r, [colField]: c, value: null, step: null, alpha: null });
    }
  }
  if (fill.length === 0) return plot;
  return { ...plot, spec: { ...plot.spec, data: { values: [...values, ...fill] } } as TopLevelSpec };
}

/**
 * Data for t-faceted plots. A baseline (seed / init) whose fork step is not one of the
 * weight-perturbation fork steps (e.g. `init` at t = 0) is repeated in every t column, so each
 * column shows the baseline it is to be compared with; its `t` field keeps its own fork step.
 */
function withPanels(rows: readonly Joined[], weightTs: readonly number[], extra?: (j: Joined) => object) {
  const out: PlotDatum[] = [];
  for (const j of rows) {
    const replicate = !isWeight(j.twin.kind) && weightTs.length > 0 && !weightTs.includes(j.twin.forkStep);
    for (const panelT of replicate ? weightTs : [j.twin.forkStep]) {
      out.push({ ...datum(j, panelT), ...(extra ? extra(j) : {}) });
    }
  }
  return out;
}

function l2VsStep(rows: readonly Joined[], weightTs: readonly number[]): ButterflyPlot | null {
  // Log step axis: the interesting growth spans decades of steps after the fork. Step 0 (only the
  // init baseline has it) cannot sit on a log axis and is dropped rather than using symlog, which
  // would squash the early decades; zero distances are dropped for the log y axis.
  const values = withPanels(
    rows.filter(({ row }) => row.step > 0 && row.value > 0),
    weightTs,
  );
  if (values.length === 0) return null;
  const title = 'Twin distance ‖θ_A − θ_B‖ over training';
  return {
    name: 'l2-vs-step',
    title,
    spec: {
      title: { text: title, subtitle: 'one line per twin; columns: fork step t, rows: perturbation kind' },
      data: { values },
      facet: { column: COLUMN_T, row: ROW_KIND },
      spec: {
        ...PANEL_SIZE,
        mark: { type: 'line', clip: true, point: { filled: true, opacity: 0, size: 40 }, tooltip: true },
        encoding: {
          x: { field: 'step', type: 'quantitative', scale: { type: 'log' }, title: 'step' },
          y: { field: 'value', type: 'quantitative', scale: { type: 'log' }, title: '‖θ_A − θ_B‖₂' },
          color: SIGMA_COLOR,
          detail: { field: 'runB', type: 'nominal' },
          tooltip: [...TOOLTIP],
        },
      },
    } as TopLevelSpec,
  };
}

/** Layers drawing the repeats as faint points and their mean as a line with points. */
function meanLayers(x: object, color: object, y: object, extraGroupBy: string[] = []) {
  const groupby = ['t', 'panelT', 'kind', 'sigma', ...extraGroupBy];
  return [
    {
      mark: { type: 'point', filled: true, opacity: 0.35, size: 18, tooltip: true },
      encoding: {
        x,
        y: { ...y, field: 'value', type: 'quantitative' },
        color,
        tooltip: [...TOOLTIP, ...extraGroupBy.map((f) => ({ field: f, type: 'nominal' }))],
      },
    },
    {
      transform: [
        {
          aggregate: [
            { op: 'mean', field: 'value', as: 'mean' },
            { op: 'count', as: 'n' },
            { op: 'max', field: 'step', as: 'step' },
          ],
          groupby,
        },
      ],
      layer: [
        {
          mark: { type: 'line' },
          // One line per kind too: gaussian and batch twins of one t must not be joined.
          encoding: {
            x,
            y: { ...y, field: 'mean', type: 'quantitative' },
            color,
            strokeDash: { field: 'kind', type: 'nominal', title: 'kind', sort: KIND_ORDER },
          },
        },
        {
          mark: { type: 'point', filled: true, size: 40, tooltip: true },
          encoding: {
            x,
            y: { ...y, field: 'mean', type: 'quantitative' },
            color,
            tooltip: [...MEAN_TOOLTIP, ...extraGroupBy.map((f) => ({ field: f, type: 'nominal' }))],
          },
        },
      ],
    },
  ];
}

function l2FinalVsSigma(rows: readonly Joined[]): ButterflyPlot | null {
  const values = rows.filter(({ row }) => row.value > 0).map((j) => datum(j));
  if (!values.some((d) => d.sigma > 0)) return null;
  const title = 'Final twin distance vs perturbation size';
  const y = { scale: { type: 'log' }, title: 'final ‖θ_A − θ_B‖₂' };
  const layers = meanLayers(SIGMA_X, T_COLOR, y).map((l) => ({
    ...l,
    transform: [{ filter: 'datum.sigma > 0' }, ...(l.transform ?? [])],
  }));
  const hasBaseline = values.some((d) => !isWeight(d.kind));
  return {
    name: 'l2-final-vs-sigma',
    title,
    spec: {
      title: {
        text: title,
        subtitle: [
          'lines: mean over repeats per fork step t; faint points: single twins',
          hasBaseline ? 'dashed rules: seed / init baselines (mean over repeats)' : SIGMA0_NOTE,
        ],
      },
      data: { values },
      width: 360,
      height: 260,
      layer: [
        ...layers,
        ...(hasBaseline
          ? [
              {
                transform: [
                  { filter: { field: 'kind', oneOf: ['seed', 'init'] } },
                  {
                    aggregate: [
                      { op: 'mean', field: 'value', as: 'mean' },
                      { op: 'count', as: 'n' },
                      { op: 'max', field: 'step', as: 'step' },
                    ],
                    groupby: ['kind'],
                  },
                ],
                layer: [
                  {
                    mark: { type: 'rule', strokeDash: [5, 4], color: '#555', tooltip: true },
                    encoding: {
                      y: { ...y, field: 'mean', type: 'quantitative' },
                      tooltip: [
                        { field: 'kind', type: 'nominal', title: 'baseline' },
                        { field: 'step', type: 'quantitative', title: 'step' },
                        { field: 'mean', type: 'quantitative', title: 'mean over repeats', format: '.4g' },
                        { field: 'n', type: 'quantitative', title: 'repeats' },
                      ],
                    },
                  },
                  {
                    mark: { type: 'text', align: 'left', dx: 4, dy: -6, color: '#555', fontSize: 11 },
                    encoding: {
                      x: { value: 0 },
                      y: { ...y, field: 'mean', type: 'quantitative' },
                      text: { field: 'kind', type: 'nominal' },
                    },
                  },
                ],
              },
            ]
          : []),
      ],
    } as TopLevelSpec,
  };
}

function barrierVsSigma(barrier: readonly Joined[], aligned: readonly Joined[]): ButterflyPlot | null {
  const MEASURES = ['error barrier', 'aligned error barrier'];
  const values = [
    ...barrier.map((j) => ({ ...datum(j), measure: MEASURES[0] })),
    ...aligned.map((j) => ({ ...datum(j), measure: MEASURES[1] })),
  ].filter((d) => d.sigma > 0 && isWeight(d.kind));
  if (values.length === 0) return null;
  const title = 'Final test error barrier vs perturbation size';
  return {
    name: 'barrier-vs-sigma',
    title,
    spec: {
      title: {
        text: title,
        subtitle: [
          'barrier: linear convention; aligned: B permuted onto A by weight matching',
          `lines: mean over repeats per fork step t; ${SIGMA0_NOTE}`,
        ],
      },
      data: { values },
      facet: {
        column: { field: 'measure', type: 'nominal', title: null, sort: MEASURES },
        row: ROW_KIND,
      },
      spec: {
        ...PANEL_SIZE,
        layer: meanLayers(SIGMA_X, T_COLOR, { title: 'test error barrier' }, ['measure']),
      },
    } as TopLevelSpec,
  };
}

function interpolation(rows: readonly Joined[], weightTs: readonly number[]): ButterflyPlot | null {
  const values = withPanels(rows, weightTs, ({ row }) => ({ alpha: row.options.alpha as number }));
  if (values.length === 0) return null;
  const title = 'Test loss along the linear path θ(α) = (1 − α) θ_A + α θ_B';
  return {
    name: 'interpolation',
    title,
    spec: {
      title: { text: title, subtitle: 'final step of each twin; one line per twin; columns: fork step t' },
      data: { values },
      facet: { column: COLUMN_T, row: ROW_KIND },
      spec: {
        ...PANEL_SIZE,
        mark: { type: 'line', point: { filled: true, size: 16 }, tooltip: true },
        encoding: {
          x: { field: 'alpha', type: 'quantitative', title: 'α' },
          y: { field: 'value', type: 'quantitative', title: 'test loss', scale: { zero: false } },
          color: SIGMA_COLOR,
          detail: { field: 'runB', type: 'nominal' },
          order: { field: 'alpha', type: 'quantitative' },
          tooltip: [...TOOLTIP, { field: 'alpha', type: 'quantitative', title: 'α', format: '.3g' }],
        },
      },
    } as TopLevelSpec,
  };
}

function ckaVsSigma(rows: readonly Joined[], split: string): ButterflyPlot | null {
  const values = rows.map((j) => datum(j)).filter((d) => d.sigma > 0 && isWeight(d.kind));
  if (values.length === 0) return null;
  const title = 'Final CKA of hidden layers vs perturbation size';
  const color = { field: 'layer', type: 'nominal', title: 'layer', legend: { symbolOpacity: 1 } };
  const layers = meanLayers(SIGMA_X, color, { title: 'CKA', scale: { domain: [0, 1] } }, ['layer']);
  return {
    name: 'cka-vs-sigma',
    title,
    spec: {
      title: {
        text: title,
        subtitle: [`CKA on ${split}; lines: mean over repeats; columns: fork step t`, SIGMA0_NOTE],
      },
      data: { values },
      facet: { column: COLUMN_T, row: ROW_KIND },
      spec: {
        ...PANEL_SIZE,
        layer: layers,
      },
    } as TopLevelSpec,
  };
}
