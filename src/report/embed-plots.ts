/**
 * Vega-Lite specs of a trajectory embedding ({@link RunEmbedding}): checkpoints as points coloured
 * by training step (viridis, symlog scale so early steps stay apart), each run's trajectory as a thin
 * grey line through its checkpoints in step order, and a tooltip with run, step and coordinates.
 *
 * Axis titles carry what the axis explains: `PC1 (48% variance)` for PCA; for InPCA the sign of
 * the eigenvalue (λ < 0: a time-like axis, along which separation shrinks the embedded distance)
 * and the explained stress of the axes up to it, e.g. `axis 1 (λ > 0, stress 62%)`,
 * `axis 2 (λ < 0, stress 80% with axes 1–2)`.
 *
 * Data is inline (one flat record per checkpoint: run, step, axis0 … axis{k−1}).
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { RunEmbedding } from '../results/embedding.js';
import { formatPercent } from '../util/format.js';
import { type WrittenPlot, writePlots } from './plot.js';

/** One embedding figure: file stem, title and spec. */
export interface EmbedPlot {
  readonly name: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
}

const PANEL = { width: 300, height: 260 } as const;

/** A share for an axis title: one decimal near 0 % and 100 %, none in between. */
const pct = (v: number) => formatPercent(v, v >= 0.995 || v < 0.0995 ? 1 : 0);

/**
 * The axis title of axis `a` (0-based) of `embedding` (see the module comment). InPCA titles are two
 * lines (axis and sign, then stress), so a vertical title stays within the panel's height.
 */
export function axisTitle(embedding: RunEmbedding, a: number): string | string[] {
  if (embedding.method === 'pca') {
    const r = embedding.explainedVarianceRatio?.[a] ?? 0;
    return `PC${a + 1} (${pct(r)} variance)`;
  }
  const lambda = embedding.eigenvalues[a] ?? 0;
  const sign = lambda > 0 ? 'λ > 0' : lambda < 0 ? 'λ < 0' : 'λ = 0';
  const stress = embedding.explainedStress?.[a] ?? 0;
  const upTo = a === 0 ? '' : ` with axes 1–${a + 1}`;
  return [`axis ${a + 1} (${sign})`, `stress ${pct(stress)}${upTo}`];
}

function records(embedding: RunEmbedding): Record<string, string | number>[] {
  return embedding.points.map((p) => {
    const r: Record<string, string | number> = { run: p.run, step: p.step };
    p.coords.forEach((c, a) => {
      r[`axis${a}`] = c;
    });
    return r;
  });
}

/** One panel (no data): trajectory lines and step-coloured points of axis `a` against axis `b`. */
function panel(embedding: RunEmbedding, a: number, b: number) {
  const x = {
    field: `axis${a}`,
    type: 'quantitative',
    title: axisTitle(embedding, a),
    scale: { zero: false },
  };
  const y = {
    field: `axis${b}`,
    type: 'quantitative',
    title: axisTitle(embedding, b),
    scale: { zero: false },
  };
  const tooltip = [
    { field: 'run', type: 'nominal', title: 'run' },
    { field: 'step', type: 'quantitative', title: 'step' },
    ...Array.from({ length: embedding.components }, (_, k) => ({
      field: `axis${k}`,
      type: 'quantitative',
      title: `axis ${k + 1}`,
      format: '.4g',
    })),
  ];
  return {
    ...PANEL,
    layer: [
      {
        mark: { type: 'line', color: '#9a9a9a', strokeWidth: 1, opacity: 0.8 },
        encoding: {
          x,
          y,
          detail: { field: 'run', type: 'nominal' },
          order: { field: 'step', type: 'quantitative' },
        },
      },
      {
        mark: { type: 'point', filled: true, opacity: 0.9 },
        encoding: {
          x,
          y,
          color: {
            field: 'step',
            type: 'quantitative',
            title: 'step',
            scale: { type: 'symlog', scheme: 'viridis' },
          },
          tooltip,
        },
      },
    ],
  };
}

/** Two subtitle lines: what was embedded, then how many runs and checkpoints. */
function subtitle(embedding: RunEmbedding): string[] {
  const what =
    embedding.method === 'pca'
      ? 'PCA of the weights'
      : `InPCA of ${
          embedding.options.likelihood === 'gaussian'
            ? `Gaussian outputs (s = ${embedding.options.sigma ?? 1})`
            : 'softmax outputs'
        } on ${embedding.options.examples} ${embedding.options.split} examples`;
  const runs = embedding.runs.length;
  return [what, `${runs} run${runs === 1 ? '' : 's'}, ${embedding.points.length} checkpoints`];
}

/** Options of {@link embedPlots}: tell apart several embeddings of one directory. */
export interface EmbedPlotOptions {
  /** Appended to the file stems: `-s0` gives `embedding-s0` and `embedding-pairs-s0`. Default none. */
  readonly nameSuffix?: string;
  /** Appended to the titles, e.g. `, seed 0`. Default none. */
  readonly titleSuffix?: string;
}

/** The options of a study's embedding of seed `seed`: `embedding-s<seed>`, titles ending `, seed <seed>`. */
export function seedPlotOptions(seed: number): EmbedPlotOptions {
  return { nameSuffix: `-s${seed}`, titleSuffix: `, seed ${seed}` };
}

/**
 * The embedding figures: `embedding` (axis 1 vs axis 2, one line per run) and, with k ≥ 3,
 * `embedding-pairs` (axes 1–2, 1–3 and 2–3 side by side), each name followed by
 * `options.nameSuffix`. An embedding with fewer than two axes has no figures.
 */
export function embedPlots(embedding: RunEmbedding, options: EmbedPlotOptions = {}): EmbedPlot[] {
  if (embedding.components < 2) return [];
  const values = records(embedding);
  const suffix = options.nameSuffix ?? '';
  const label =
    (embedding.method === 'pca' ? 'Weight-trajectory PCA' : 'Trajectory InPCA') + (options.titleSuffix ?? '');
  const plots: EmbedPlot[] = [
    {
      name: `embedding${suffix}`,
      title: label,
      spec: {
        title: { text: label, subtitle: subtitle(embedding) },
        data: { values },
        ...panel(embedding, 0, 1),
      } as TopLevelSpec,
    },
  ];
  if (embedding.components >= 3) {
    plots.push({
      name: `embedding-pairs${suffix}`,
      title: `${label}: pairs of the top 3 axes`,
      spec: {
        title: { text: `${label}: pairs of the top 3 axes`, subtitle: subtitle(embedding) },
        data: { values },
        hconcat: [panel(embedding, 0, 1), panel(embedding, 0, 2), panel(embedding, 1, 2)],
        resolve: { scale: { color: 'shared' } },
      } as TopLevelSpec,
    });
  }
  return plots;
}

/** Render {@link embedPlots} into DIR/plots/ (SVG, PNG, Vega-Lite JSON each); returns what was written. */
export function writeEmbedPlots(
  dir: string,
  embedding: RunEmbedding,
  options: EmbedPlotOptions = {},
): Promise<WrittenPlot[]> {
  return writePlots(join(dir, 'plots'), embedPlots(embedding, options));
}
