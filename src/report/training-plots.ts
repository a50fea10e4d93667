/**
 * Vega-Lite specs of a sweep's measurements along training (docs/methods.md §12.1–12.2: each run's
 * `diagnostics` and `sharpness`, read from its diagnostics.arrow by train/diagnostics.ts), and the
 * table of final test accuracy per setting.
 *
 * A *setting* is a run's grid values without its seeds (`seed`, `dataSeed`, `orderSeed`): the seeds
 * of one setting share a colour, one line per run. Figures (each skipped when no run has its rows):
 * - `training-test-accuracy`, `training-train-loss`, `training-grad-norm`, `training-saturation`:
 *   the value against the epoch (or the step, when some run measured more than once per epoch);
 *   loss and gradient norm on log axes when every value is positive; saturation over all ReLU units;
 * - `training-saturation-layers`: saturation per hidden layer, one panel per layer;
 * - `sharpness-along-training`: λ_max against the step (log axis), with each setting's stability
 *   threshold (2/η, (2 + 2μ)/η for momentum) as a dashed line in its colour (runs whose threshold
 *   bounds λ_max: SGD);
 * - `preconditioned-sharpness-along-training`: Adam's λ_max(P⁻¹H) with its threshold (2 + 2β₁)/((1 − β₁)η);
 * - `sharpness-ratio-along-training`: the bounded quantity divided by its threshold (1 = the edge of
 *   stability, dashed).
 *
 * Every mark has a tooltip naming the run; the data are inline and equal the rows read from the runs.
 */
import type { TopLevelSpec } from 'vega-lite';
import { gridValueLabel } from '../results/groups.js';
import type { DiagnosticsMetric, DiagnosticsRow, SharpnessRow } from '../train/diagnostics.js';
import { seriesColor } from './plot.js';

/** The measurements along training of one run of a sweep, as the report shows them. */
export interface RunTraining {
  /** The run's name (its folder under runs/). */
  readonly run: string;
  /** Its grid values without the seeds ({@link settingLabel}). */
  readonly setting: string;
  /** readDiagnostics of the run (empty when its spec has no `diagnostics`). */
  readonly diagnostics: readonly DiagnosticsRow[];
  /** readSharpness of the run (empty when its spec has no `sharpness`). */
  readonly sharpness: readonly SharpnessRow[];
}

/** One training figure: file stem, title and spec. */
export interface TrainingPlot {
  readonly name: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
}

/** Grid fields that are seeds: runs differing only in these share a setting. */
const SEED_FIELDS: ReadonlySet<string> = new Set(['seed', 'dataSeed', 'orderSeed']);

/**
 * The setting of a run with grid values `overrides`: `field=value` for each field but the seeds
 * (the last path segment of the field; an object by its values as in run names, e.g.
 * `model=deep-linear-chain-4`; a list as JSON, `hidden=[64,64]`), space-separated; `all runs` when the grid sweeps
 * nothing but seeds.
 */
export function settingLabel(overrides: Record<string, unknown> = {}): string {
  const label = Object.entries(overrides)
    .filter(([f]) => !SEED_FIELDS.has(f))
    .map(([f, v]) => {
      const key = f.split('.').pop() as string;
      if (Array.isArray(v)) return `${key}=${JSON.stringify(v)}`;
      return `${key}=${v !== null && typeof v === 'object' ? gridValueLabel(f, v) : String(v)}`;
    })
    .join(' ');
  return label === '' ? 'all runs' : label;
}

type Datum = Record<string, string | number | null>;

/** Whether some run measured `metric` twice within one epoch (then the x axis is the step). */
function byStep(runs: readonly RunTraining[]): boolean {
  for (const r of runs) {
    const seen = new Set<string>();
    for (const d of r.diagnostics) {
      const key = `${d.metric}|${d.layer}|${d.epoch}`;
      if (seen.has(key)) return true;
      seen.add(key);
    }
  }
  return false;
}

/**
 * The records of a curve figure: one per diagnostics row of `metric`, those of the whole network
 * (`layer` null: `which` = `network`) or those of each hidden layer (`which` = `layers`), with its
 * run, setting, step, epoch, layer and value (null when not finite).
 */
export function diagnosticsData(
  runs: readonly RunTraining[],
  metric: DiagnosticsMetric,
  which: 'network' | 'layers' = 'network',
): Datum[] {
  const out: Datum[] = [];
  for (const r of runs) {
    for (const d of r.diagnostics) {
      if (d.metric !== metric) continue;
      if ((d.layer === null) !== (which === 'network')) continue;
      out.push({
        run: r.run,
        setting: r.setting,
        step: d.step,
        epoch: d.epoch,
        layer: d.layer,
        value: Number.isFinite(d.value) ? d.value : null,
      });
    }
  }
  return out;
}

/** Colours by setting ({@link seriesColor}). */
function settingColor(values: readonly Datum[]) {
  return seriesColor('setting', 'setting', new Set(values.map((v) => v.setting)).size);
}

const curveTooltip = (x: 'epoch' | 'step', valueTitle: string, format: string) => [
  { field: 'run', type: 'nominal' },
  { field: 'setting', type: 'nominal' },
  { field: x === 'epoch' ? 'epoch' : 'step', type: 'quantitative' },
  ...(x === 'epoch' ? [{ field: 'step', type: 'quantitative' }] : []),
  { field: 'value', type: 'quantitative', title: valueTitle, format },
];

interface CurveOptions {
  readonly name: string;
  readonly title: string;
  readonly subtitle: string;
  readonly metric: DiagnosticsMetric;
  readonly yTitle: string;
  readonly log?: boolean;
  readonly format?: string;
  /** Per hidden layer (one panel each) instead of `layer` null. */
  readonly perLayer?: boolean;
}

function curvePlot(runs: readonly RunTraining[], x: 'epoch' | 'step', o: CurveOptions): TrainingPlot[] {
  const values = diagnosticsData(runs, o.metric, o.perLayer ? 'layers' : 'network');
  if (values.length === 0) return [];
  const log = o.log === true && values.every((v) => v.value === null || (v.value as number) > 0);
  const unit = {
    width: o.perLayer ? 320 : 480,
    height: o.perLayer ? 220 : 260,
    mark: { type: 'line', strokeWidth: 1.2, point: { size: 8 } },
    encoding: {
      x: { field: x, type: 'quantitative', title: x },
      y: {
        field: 'value',
        type: 'quantitative',
        title: o.yTitle,
        scale: log ? { type: 'log' } : { zero: false },
      },
      color: settingColor(values),
      detail: { field: 'run', type: 'nominal' },
      tooltip: [
        ...curveTooltip(x, o.yTitle, o.format ?? '.4g'),
        ...(o.perLayer ? [{ field: 'layer', type: 'nominal' }] : []),
      ],
    },
  };
  const title = { text: o.title, subtitle: o.subtitle };
  const spec = o.perLayer
    ? {
        title,
        data: { values },
        facet: { column: { field: 'layer', type: 'nominal', title: 'layer' } },
        spec: unit,
      }
    : { title, data: { values }, ...unit };
  return [{ name: o.name, title: o.title, spec: spec as unknown as TopLevelSpec }];
}

/** Which sharpness the figure shows: λ_max of H, or Adam's λ_max(P⁻¹H). */
type SharpnessKind = 'sharpness' | 'preconditioned';

/**
 * The records of a sharpness figure: per measured step of each run, λ_max (`sharpness`: the top
 * eigenvalue) or Adam's preconditioned sharpness, with the threshold (when it bounds this quantity)
 * and the ratio value / threshold. Steps without the value (Adam at step 0) are left out.
 */
export function sharpnessData(runs: readonly RunTraining[], kind: SharpnessKind): Datum[] {
  const out: Datum[] = [];
  for (const r of runs) {
    for (const s of r.sharpness) {
      const value = kind === 'sharpness' ? s.eigenvalues[0] : s.preconditioned;
      if (value === null || value === undefined) continue;
      const threshold = s.thresholdOf === kind ? s.threshold : null;
      const finite = Number.isFinite(value);
      out.push({
        run: r.run,
        setting: r.setting,
        step: s.step,
        epoch: s.epoch,
        value: finite ? value : null,
        threshold,
        lr: s.lr,
        ratio: finite && threshold !== null && threshold > 0 ? value / threshold : null,
      });
    }
  }
  return out;
}

const SHARPNESS_TEXT: Record<SharpnessKind, { name: string; title: string; y: string; subtitle: string[] }> =
  {
    sharpness: {
      name: 'sharpness-along-training',
      title: 'Sharpness along training',
      y: 'λ_max (top Hessian eigenvalue)',
      subtitle: [
        'top eigenvalue of the training-loss Hessian on the sharpness subset, one line per run;',
        'dashed: the stability threshold 2/η ((2 + 2μ)/η with momentum) of each setting, in its colour',
      ],
    },
    preconditioned: {
      name: 'preconditioned-sharpness-along-training',
      title: 'Preconditioned sharpness along training (Adam)',
      y: 'λ_max(P⁻¹H)',
      subtitle: [
        "top eigenvalue of the Hessian preconditioned by Adam's second moments, one line per run;",
        'dashed: its threshold (2 + 2β₁)/((1 − β₁)η) (38/η at β₁ = 0.9) of each setting',
      ],
    },
  };

function sharpnessPlot(runs: readonly RunTraining[], kind: SharpnessKind): TrainingPlot[] {
  const values = sharpnessData(runs, kind);
  if (values.length === 0) return [];
  const text = SHARPNESS_TEXT[kind];
  const log = values.every(
    (v) =>
      (v.value === null || (v.value as number) > 0) && (v.threshold === null || (v.threshold as number) > 0),
  );
  const y = { type: 'quantitative', scale: log ? { type: 'log' } : { zero: false } } as const;
  const color = settingColor(values);
  const tooltip = [
    { field: 'run', type: 'nominal' },
    { field: 'setting', type: 'nominal' },
    { field: 'step', type: 'quantitative' },
    { field: 'value', type: 'quantitative', title: text.y, format: '.4g' },
    { field: 'threshold', type: 'quantitative', format: '.4g' },
    { field: 'ratio', type: 'quantitative', title: 'value / threshold', format: '.3f' },
    { field: 'lr', type: 'quantitative', title: 'η', format: '.4g' },
  ];
  const layer: unknown[] = [
    {
      mark: { type: 'line', strokeWidth: 1.2, point: { size: 10 } },
      encoding: {
        x: { field: 'step', type: 'quantitative', title: 'step' },
        y: { field: 'value', ...y, title: text.y },
        color,
        detail: { field: 'run', type: 'nominal' },
        tooltip,
      },
    },
  ];
  if (values.some((v) => v.threshold !== null)) {
    layer.push({
      transform: [{ filter: 'datum.threshold !== null' }],
      mark: { type: 'line', strokeDash: [5, 4], strokeWidth: 1.5 },
      encoding: {
        x: { field: 'step', type: 'quantitative' },
        y: { field: 'threshold', ...y },
        color,
        detail: { field: 'run', type: 'nominal' },
        tooltip: [
          { field: 'setting', type: 'nominal' },
          { field: 'run', type: 'nominal' },
          { field: 'threshold', type: 'quantitative', title: 'threshold', format: '.4g' },
          { field: 'lr', type: 'quantitative', title: 'η', format: '.4g' },
        ],
      },
    });
  }
  return [
    {
      name: text.name,
      title: text.title,
      spec: {
        title: { text: text.title, subtitle: text.subtitle },
        data: { values },
        width: 520,
        height: 300,
        layer,
      } as unknown as TopLevelSpec,
    },
  ];
}

/** value / threshold of whichever quantity each run's threshold bounds; 1 = the edge of stability. */
function ratioPlot(runs: readonly RunTraining[]): TrainingPlot[] {
  const values = [...sharpnessData(runs, 'sharpness'), ...sharpnessData(runs, 'preconditioned')].filter(
    (v) => v.ratio !== null,
  );
  if (values.length === 0) return [];
  const title = 'Sharpness over its stability threshold';
  return [
    {
      name: 'sharpness-ratio-along-training',
      title,
      spec: {
        title: {
          text: title,
          subtitle: [
            'λ_max · η / 2 for gradient descent (λ_max(P⁻¹H) over its threshold for Adam);',
            'dashed: 1, the edge of stability',
          ],
        },
        data: { values },
        width: 520,
        height: 280,
        layer: [
          {
            mark: { type: 'line', strokeWidth: 1.2, point: { size: 10 } },
            encoding: {
              x: { field: 'step', type: 'quantitative', title: 'step' },
              y: { field: 'ratio', type: 'quantitative', title: 'sharpness / threshold' },
              color: settingColor(values),
              detail: { field: 'run', type: 'nominal' },
              tooltip: [
                { field: 'run', type: 'nominal' },
                { field: 'setting', type: 'nominal' },
                { field: 'step', type: 'quantitative' },
                { field: 'ratio', type: 'quantitative', title: 'sharpness / threshold', format: '.3f' },
                { field: 'value', type: 'quantitative', title: 'sharpness', format: '.4g' },
                { field: 'threshold', type: 'quantitative', format: '.4g' },
              ],
            },
          },
          {
            data: { values: [{ one: 1 }] },
            mark: { type: 'rule', strokeDash: [5, 4], color: '#555' },
            encoding: { y: { field: 'one', type: 'quantitative' } },
          },
        ],
      } as unknown as TopLevelSpec,
    },
  ];
}

/**
 * A sweep's figures along training (see the module comment), from the runs that measured
 * diagnostics or sharpness; empty when none did.
 */
export function trainingPlots(runs: readonly RunTraining[]): TrainingPlot[] {
  const x = byStep(runs) ? 'step' : 'epoch';
  const evaluation = 'whole split, at each measured step';
  return [
    ...curvePlot(runs, x, {
      name: 'training-test-accuracy',
      title: 'Test accuracy along training',
      subtitle: `${evaluation}; one line per run, coloured by setting (seeds share a colour)`,
      metric: 'test_acc',
      yTitle: 'test accuracy',
      format: '.4f',
    }),
    ...curvePlot(runs, x, {
      name: 'training-train-loss',
      title: 'Training loss along training',
      subtitle: `${evaluation}; one line per run, coloured by setting (seeds share a colour)`,
      metric: 'train_loss',
      yTitle: 'train loss',
      log: true,
    }),
    ...curvePlot(runs, x, {
      name: 'training-grad-norm',
      title: 'Gradient norm along training',
      subtitle: '‖∇L‖₂ over all parameters, full batch on the diagnostics examples',
      metric: 'grad_norm',
      yTitle: 'gradient norm',
      log: true,
    }),
    ...curvePlot(runs, x, {
      name: 'training-saturation',
      title: 'ReLU saturation along training',
      subtitle: 'fraction of ReLU activations ≤ 1e-6 over all hidden units and the diagnostics examples',
      metric: 'saturation',
      yTitle: 'saturated fraction',
      format: '.4f',
    }),
    ...curvePlot(runs, x, {
      name: 'training-saturation-layers',
      title: 'ReLU saturation per hidden layer',
      subtitle: 'fraction of the layer’s activations ≤ 1e-6 over the diagnostics examples',
      metric: 'saturation',
      yTitle: 'saturated fraction',
      format: '.4f',
      perLayer: true,
    }),
    ...sharpnessPlot(runs, 'sharpness'),
    ...sharpnessPlot(runs, 'preconditioned'),
    ...ratioPlot(runs),
  ];
}

/** Mean, sample standard deviation (n − 1; NaN for one value), minimum and maximum. */
export interface SpreadStats {
  readonly n: number;
  readonly mean: number;
  readonly std: number;
  readonly min: number;
  readonly max: number;
}

/** {@link SpreadStats} of `values` (finite ones); undefined when there are none. */
export function spread(values: readonly number[]): SpreadStats | undefined {
  const v = values.filter(Number.isFinite);
  if (v.length === 0) return undefined;
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std =
    v.length < 2 ? Number.NaN : Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
  return { n: v.length, mean, std, min: Math.min(...v), max: Math.max(...v) };
}

/** One line of the final-accuracy table: a setting and the spread of its runs' final values. */
export interface SettingSummary {
  readonly setting: string;
  /** Its runs, in sweep order. */
  readonly runs: readonly string[];
  /** Final test accuracy over the runs that finished with one. */
  readonly testAcc?: SpreadStats;
  /** Final test loss over the runs that finished with one. */
  readonly testLoss?: SpreadStats;
}

/**
 * The final test accuracy and loss of each setting (settings in first-seen order): the spread over
 * its runs of run.json's final evaluation; runs without one (failed, incomplete, diverged) are left
 * out of the statistics but listed in `runs`.
 */
export function settingSummaries(
  runs: readonly {
    readonly name: string;
    readonly setting: string;
    readonly final?: { readonly testAcc?: number | null; readonly testLoss?: number | null } | undefined;
    readonly finished: boolean;
  }[],
): SettingSummary[] {
  const by = new Map<string, { runs: string[]; acc: number[]; loss: number[] }>();
  for (const r of runs) {
    const s = by.get(r.setting) ?? { runs: [], acc: [], loss: [] };
    s.runs.push(r.name);
    if (r.finished && typeof r.final?.testAcc === 'number') s.acc.push(r.final.testAcc);
    if (r.finished && typeof r.final?.testLoss === 'number') s.loss.push(r.final.testLoss);
    by.set(r.setting, s);
  }
  return [...by.entries()].map(([setting, s]) => {
    const testAcc = spread(s.acc);
    const testLoss = spread(s.loss);
    return { setting, runs: s.runs, ...(testAcc && { testAcc }), ...(testLoss && { testLoss }) };
  });
}

/** One run's sharpness along training in brief: where it started, peaked and ended against its threshold. */
export interface SharpnessSummary {
  readonly run: string;
  readonly setting: string;
  /** What the threshold bounds: λ_max (SGD) or Adam's preconditioned sharpness. */
  readonly of: 'sharpness' | 'preconditioned';
  /** The bounded quantity at the first, the largest and the last measured step (NaN if none is finite). */
  readonly first: number;
  readonly max: number;
  readonly last: number;
  /** The threshold at the last measured step (NaN when there is none). */
  readonly threshold: number;
  /** The largest value / threshold over the measured steps (NaN without a threshold). */
  readonly maxRatio: number;
  /**
   * The first measured step where value / threshold reaches 0.9 from below (after a step below 0.9:
   * sharpening up to the edge, also after an early drop from above it), or null when it never does.
   */
  readonly stepNear: number | null;
}

/**
 * The sharpness of each run that measured it, in brief ({@link SharpnessSummary}): λ_max for SGD,
 * λ_max(P⁻¹H) for Adam (the quantity its threshold bounds), over the steps where it is finite.
 */
export function sharpnessSummaries(runs: readonly RunTraining[]): SharpnessSummary[] {
  const out: SharpnessSummary[] = [];
  for (const r of runs) {
    if (r.sharpness.length === 0) continue;
    const of = (r.sharpness[0] as SharpnessRow).thresholdOf;
    const points = r.sharpness
      .map((s) => ({
        step: s.step,
        value: of === 'sharpness' ? s.eigenvalues[0] : s.preconditioned,
        t: s.threshold,
      }))
      .filter((p): p is { step: number; value: number; t: number | null } => Number.isFinite(p.value));
    const ratios = points.map((p) => (p.t !== null && p.t > 0 ? p.value / p.t : Number.NaN));
    const below = ratios.findIndex((x) => x < 0.9);
    const near = below < 0 ? undefined : points.find((_, i) => i > below && (ratios[i] as number) >= 0.9);
    const finiteRatios = ratios.filter(Number.isFinite);
    out.push({
      run: r.run,
      setting: r.setting,
      of,
      first: points[0]?.value ?? Number.NaN,
      max: points.length > 0 ? Math.max(...points.map((p) => p.value)) : Number.NaN,
      last: points.at(-1)?.value ?? Number.NaN,
      threshold: (r.sharpness.at(-1) as SharpnessRow).threshold ?? Number.NaN,
      maxRatio: finiteRatios.length > 0 ? Math.max(...finiteRatios) : Number.NaN,
      stepNear: near ? near.step : null,
    });
  }
  return out;
}
