/**
 * The report of `twinscope compare A B --out DIR`: one self-contained HTML page
 * (DIR/report/index.html) with the distances (plain and after alignment), the interpolation curves
 * (loss and error against α, train and test, plain and aligned), the barriers under both conventions,
 * the linear CKA per hidden output and how normalization statistics were set; each figure is also
 * written as SVG, PNG and Vega-Lite JSON under DIR/report/plots/ (plot.ts, the house theme).
 *
 * The data flow is one way: the report is drawn from a {@link CompareResult} (what `compareModels`
 * returned, the numbers summary.json and compare.arrow hold) and never computes a measurement. The
 * page reuses the study report's pieces (html.ts: escaping, the inlined vega/vega-lite/vega-embed
 * builds; interactive.ts: legend toggles), so it opens offline like a study report.
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import type { AlignedComparison, CompareResult, SplitCurve } from '../onnx/compare.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import {
  escapeHtml,
  loadViewerScripts,
  plotScriptsHtml,
  type ReportPlot,
  type ViewerScripts,
  writeReportPlots,
} from './html.js';
import { seriesColor } from './plot.js';

/** What {@link writeCompareReport} wrote. */
export interface CompareReportResult {
  /** DIR/report/index.html. */
  readonly html: string;
  /** The figures, with their SVG/PNG/JSON files under DIR/report/plots/. */
  readonly plots: readonly ReportPlot[];
}

/** A figure of a comparison before it is written: its file stem, caption and Vega-Lite spec (data inline). */
export interface ComparePlot {
  readonly name: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
}

/** A path from A to B: the plain straight line, or the line to B aligned by one method. */
interface ComparePath {
  readonly label: string;
  readonly train: SplitCurve;
  readonly test: SplitCurve | null;
}

/**
 * How a number is written on the page: `digits` significant digits, as the `compare` table prints
 * it (`Number(v.toPrecision(digits))`), so a value of summary.json reads the same in both; NaN and
 * infinities as `—`.
 */
export function formatCompareNumber(value: number | null | undefined, digits = 6): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '—';
  return String(Number(value.toPrecision(digits)));
}

const ALIGNED_LABEL: Record<AlignedComparison['method'], string> = {
  weight: 'aligned (weight matching)',
  activation: 'aligned (activation matching)',
};

/** The plain path and each aligned one that was measured. */
function paths(r: CompareResult): ComparePath[] {
  const out: ComparePath[] = [{ label: 'plain', train: r.train, test: r.test }];
  for (const c of [r.alignment?.weight, r.alignment?.activation]) {
    if (c) out.push({ label: ALIGNED_LABEL[c.method], train: c.train, test: c.test });
  }
  return out;
}

/**
 * The figures of a comparison: `interpolation-loss` and `interpolation-error` (the curve against α,
 * one column per split, one line per path: plain and each aligned one), and `cka` (linear CKA per
 * hidden output, when there is one).
 */
export function comparePlots(r: CompareResult): ComparePlot[] {
  const all = paths(r);
  const curve = (metric: 'loss' | 'error', title: string): ComparePlot => {
    const values = all.flatMap((p) =>
      (
        [
          ['train', p.train],
          ['test', p.test],
        ] as const
      ).flatMap(([split, c]) =>
        c
          ? r.alphas.map((alpha, i) => ({
              path: p.label,
              split,
              alpha,
              value: c[metric][i] as number,
              examples: c.examples,
            }))
          : [],
      ),
    );
    const splits = [...new Set(values.map((v) => v.split))];
    return {
      name: `interpolation-${metric}`,
      title: `${title} along θ(α) = (1 − α) A + α B`,
      spec: {
        title: { text: `${title} along the linear path`, subtitle: `A = ${r.a}, B = ${r.b}` },
        data: { values },
        facet: { column: { field: 'split', type: 'nominal', title: 'split', sort: splits } },
        resolve: { scale: { y: 'shared' } },
        spec: {
          width: 300,
          height: 220,
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'alpha', type: 'quantitative', title: 'α (0 = A, 1 = B)' },
            y: { field: 'value', type: 'quantitative', title, scale: { zero: metric === 'error' } },
            color: seriesColor('path', 'path', all.length),
            tooltip: [
              { field: 'path', type: 'nominal', title: 'path' },
              { field: 'split', type: 'nominal', title: 'split' },
              { field: 'alpha', type: 'quantitative', title: 'α', format: '.3g' },
              { field: 'value', type: 'quantitative', title, format: '.5g' },
              { field: 'examples', type: 'quantitative', title: 'examples' },
            ],
          },
        },
      } as TopLevelSpec,
    };
  };
  const plots = [curve('loss', 'loss'), curve('error', 'error')];
  const layers = Object.entries(r.cka);
  if (layers.length > 0) {
    plots.push({
      name: 'cka',
      title: `Linear CKA of A's and B's hidden outputs (${r.ckaExamples} ${r.ckaSplit} examples)`,
      spec: {
        title: {
          text: 'Linear CKA per hidden output',
          subtitle: `A vs B (unaligned), ${r.ckaExamples} ${r.ckaSplit} examples`,
        },
        data: { values: layers.map(([layer, value]) => ({ layer, value })) },
        width: 320,
        height: { step: 22 },
        mark: { type: 'bar', color: '#0072B2' },
        encoding: {
          y: { field: 'layer', type: 'nominal', title: 'hidden output', sort: null },
          x: { field: 'value', type: 'quantitative', title: 'linear CKA', scale: { domain: [0, 1] } },
          tooltip: [
            { field: 'layer', type: 'nominal', title: 'hidden output' },
            { field: 'value', type: 'quantitative', title: 'CKA', format: '.5g' },
          ],
        },
      } as TopLevelSpec,
    });
  }
  return plots;
}

/**
 * Draw the figures of `result` into `dir/report/plots/` and write `dir/report/index.html`
 * ({@link renderCompareHtml}). Figures whose files already hold the same spec are not drawn again.
 */
export async function writeCompareReport(dir: string, result: CompareResult): Promise<CompareReportResult> {
  const reportDir = join(dir, 'report');
  const plots = await writeReportPlots(reportDir, comparePlots(result));
  const html = renderCompareHtml(result, plots, loadViewerScripts());
  const path = join(reportDir, 'index.html');
  writeFileAtomic(path, [new TextEncoder().encode(html)]);
  return { html: path, plots };
}

const f = formatCompareNumber;
const td = (v: string) => `<td class="num">${v}</td>`;

/** What the page says about normalization statistics. */
function normalizationText(r: CompareResult): string {
  switch (r.normalization) {
    case null:
      return 'none: the graph has no BatchNorm (and REPAIR was not asked for); every point is evaluated as interpolated';
    case 'copy':
      return '<code>copy</code>: BatchNorm running statistics interpolated like every other weight';
    case 'recompute':
      return `<code>recompute</code>: BatchNorm running statistics recomputed at every point on ${r.normExamples} train examples`;
    case 'repair':
      return `<code>repair</code> (REPAIR): channel statistics set from the endpoints' at every point, on ${r.normExamples} train examples`;
  }
}

function distanceTable(r: CompareResult): string {
  const row = (label: string, l2: number, nl2: number, cosine: number | null, extra: string) =>
    `<tr><td>${escapeHtml(label)}</td>${td(f(l2))}${td(f(nl2))}${td(cosine === null ? '—' : f(cosine))}<td>${extra}</td></tr>`;
  const rows = [row('plain', r.l2, r.normalizedL2, r.cosine, '')];
  for (const c of [r.alignment?.weight, r.alignment?.activation]) {
    if (!c) continue;
    const extra =
      c.sweeps !== undefined
        ? `${c.sweeps} sweeps${c.converged === false ? ', not converged' : ''}`
        : c.examples !== undefined
          ? `${c.examples} train examples`
          : '';
    rows.push(row(ALIGNED_LABEL[c.method], c.l2, c.normalizedL2, null, escapeHtml(extra)));
  }
  return (
    '<table class="runs distances"><thead><tr><th>B</th><th class="num">L2 ‖θ_A − θ_B‖</th>' +
    '<th class="num">normalized L2</th><th class="num">cosine</th><th>alignment</th></tr></thead><tbody>\n' +
    `${rows.join('\n')}\n</tbody></table>`
  );
}

function barrierTable(r: CompareResult): string {
  const rows: string[] = [];
  for (const p of paths(r)) {
    for (const [split, c] of [
      ['train', p.train],
      ['test', p.test],
    ] as const) {
      if (!c) continue;
      rows.push(
        `<tr data-path="${escapeHtml(p.label)}" data-split="${split}"><td>${escapeHtml(p.label)}</td><td>${split}</td>${td(String(c.examples))}` +
          td(f(c.barrierLoss.linear, 5)) +
          td(f(c.barrierLoss.alphaStar, 3)) +
          td(f(c.barrierLoss.midpointMean, 5)) +
          td(f(c.barrierError.linear, 4)) +
          td(f(c.barrierError.alphaStar, 3)) +
          `${td(f(c.barrierError.midpointMean, 4))}</tr>`,
      );
    }
  }
  return (
    '<table class="runs barriers"><thead><tr><th>path</th><th>split</th><th class="num">examples</th>' +
    '<th class="num">loss barrier, linear</th><th class="num">α*</th><th class="num">loss barrier, midpoint-mean</th>' +
    '<th class="num">error barrier, linear</th><th class="num">α*</th><th class="num">error barrier, midpoint-mean</th>' +
    `</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`
  );
}

function curveTable(r: CompareResult): string {
  const all = paths(r);
  const cols = all.flatMap((p) =>
    (
      [
        ['train', p.train],
        ['test', p.test],
      ] as const
    ).flatMap(([split, c]) => (c ? [{ label: `${p.label}, ${split}`, c }] : [])),
  );
  const head = cols
    .map(({ label }) => `<th class="num">${escapeHtml(label)} loss</th><th class="num">error</th>`)
    .join('');
  const body = r.alphas.map(
    (alpha, i) =>
      `<tr>${td(f(alpha, 3))}${cols.map(({ c }) => td(f(c.loss[i], 5)) + td(f(c.error[i], 4))).join('')}</tr>`,
  );
  return `<table class="runs curve"><thead><tr><th class="num">α</th>${head}</tr></thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
}

function ckaTable(r: CompareResult): string {
  const layers = Object.entries(r.cka);
  if (layers.length === 0) return '<p>No hidden outputs: no CKA.</p>';
  const body = layers.map(
    ([layer, v]) => `<tr><td class="name">${escapeHtml(layer)}</td>${td(f(v, 5))}</tr>`,
  );
  return (
    '<table class="runs cka"><thead><tr><th>hidden output</th><th class="num">linear CKA</th></tr></thead><tbody>\n' +
    `${body.join('\n')}\n</tbody></table>`
  );
}

function plotFigure(p: ReportPlot, i: number): string {
  const link = (href: string, label: string) => `<a href="${escapeHtml(href)}">${label}</a>`;
  return (
    `<figure class="plot" id="${escapeHtml(`fig-${p.name}`)}">` +
    `<div class="vega" id="plot-${i}" data-plot="${escapeHtml(p.name)}"></div>` +
    `<noscript><img src="${escapeHtml(p.files.svg)}" alt="${escapeHtml(p.title)}"></noscript>` +
    `<figcaption>${escapeHtml(p.title)} — ${link(p.files.svg, 'SVG')} · ${link(p.files.png, 'PNG')} · ` +
    `${link(p.files.spec, 'Vega-Lite JSON')}</figcaption></figure>`
  );
}

const CSS = `
body { font: 14px/1.45 "DejaVu Sans", Arial, Helvetica, sans-serif; color: #222; margin: 0 auto; max-width: 1400px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin: 0 0 12px; } nav a { margin-right: 14px; }
table.runs { border-collapse: collapse; font-size: 13px; }
table.runs th, table.runs td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
table.runs th { background: #fafafa; }
table.runs td.num, table.runs th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.runs td.name, code { font-family: "DejaVu Sans Mono", monospace; }
figure.plot { margin: 18px 0 28px; } figure.plot figcaption { color: #555; font-size: 12px; margin-top: 4px; }
.vega { min-height: 60px; } .vega .error { color: #a33c00; white-space: pre-wrap; }
.hint { color: #555; font-size: 12px; }
`;

/**
 * The report page of a comparison with its `plots` (themed specs; legend toggles are added here)
 * and the inlined viewer `scripts`. Pure: writes nothing. Every number is written with
 * {@link formatCompareNumber} (L2, normalized L2 and cosine to 6 significant digits, loss barriers
 * and losses to 5, error barriers and errors to 4, as the `compare` table prints them).
 */
export function renderCompareHtml(
  r: CompareResult,
  plots: readonly ReportPlot[],
  scripts: ViewerScripts,
): string {
  const al = r.alignment;
  const meta = [
    `${r.parameters} weights`,
    `data ${r.data} (train ${r.train.examples}${r.test ? `, test ${r.test.examples}` : ''} examples)`,
    `${r.alphas.length} points on the path`,
  ];
  const alignment = al
    ? `B aligned to A with the ${al.spec === 'file' ? 'permutation spec of --perm-spec' : 'permutation spec inferred from the graph'} ` +
      `(${al.groups} groups, ${al.units} units).`
    : `Aligned: ${escapeHtml(r.alignmentNote ?? 'not measured')}.`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="twinscope">
<title>compare ${escapeHtml(r.a)} / ${escapeHtml(r.b)} — twinscope report</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>compare</h1>
<p class="meta">A <code>${escapeHtml(r.a)}</code><br>B <code>${escapeHtml(r.b)}</code><br>${meta.map(escapeHtml).join(' · ')}</p>
<nav><a href="#distances">distances</a><a href="#barriers">barriers</a><a href="#cka">CKA</a><a href="#plots">curves</a><a href="#curve">curve values</a></nav>
</header>
<section id="normalization"><p>Normalization statistics (<code>--bn</code>): <span class="bn-mode" data-mode="${r.normalization ?? 'none'}">${normalizationText(r)}</span>.</p>
<p>${alignment}</p></section>
<section id="distances"><h2>Distances</h2>
${distanceTable(r)}
<p class="hint">normalized L2 = ‖θ_A − θ_B‖ / √(‖θ_A‖ ‖θ_B‖); aligned: A against B permuted to match A.</p>
</section>
<section id="barriers"><h2>Barriers</h2>
${barrierTable(r)}
<p class="hint">linear: the largest rise of the curve above the chord between its ends, at α* (Kwok et al. 2025); midpoint-mean: the value at α = ½ minus the mean of the ends (Frankle et al. 2020). Error is 1 − accuracy.</p>
</section>
<section id="cka"><h2>Linear CKA</h2>
${ckaTable(r)}
<p class="hint">Biased linear CKA (Kornblith et al. 2019) of A's and B's (unaligned) hidden outputs on the first ${r.ckaExamples} ${r.ckaSplit} examples.</p>
</section>
<section id="plots"><h2>Curves</h2>
<p class="hint">Hover a point for its value; click a legend entry to highlight that path (double-click the plot to reset).</p>
${plots.map(plotFigure).join('\n')}
</section>
<section id="curve"><h2>Curve values</h2>
<div>${curveTable(r)}</div>
</section>
${plotScriptsHtml(plots, scripts)}
</body>
</html>
`;
}
