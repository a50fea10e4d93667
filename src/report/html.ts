/**
 * The study report: one self-contained HTML file (DIR/report/index.html) with the study's spec, a
 * table of its runs and their final metrics, what failed, and every plot, interactive through
 * vega-embed (tooltips on hover, legend entries toggle series). vega, vega-lite and vega-embed are
 * inlined from node_modules and the plot data is inlined in the specs, so the file opens offline
 * and can be mailed or archived as is. Each plot is also written as SVG and PNG (and its Vega-Lite
 * JSON) under DIR/report/plots/ for papers, with the same theme (see plot.ts).
 *
 * Plots are regenerated from results.arrow and study.json (and the trajectory embeddings from
 * embedding/s<seed>/, after the butterfly plots), so any study directory can be reported, also one
 * written by an older twinscope or one whose plots/ folder was deleted.
 *
 * Safety: every string from the study (run names, labels, spec strings, error messages) goes
 * through {@link escapeHtml}; JSON inside `<script>` goes through {@link jsonForScript}, which
 * escapes `<`, `>` and `&` so that no string can close the script element.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { formatDivergence } from '../train/run.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { formatPercent } from '../util/format.js';
import { butterflyPlots } from './butterfly-plots.js';
import { embedPlots, seedPlotOptions } from './embed-plots.js';
import { type GeometryCorrelation, geometryCorrelations, geometryPlots } from './geometry-plots.js';
import { withLegendToggle } from './interactive.js';
import { writePlot } from './plot.js';
import { groupPlots } from './ribbon-plots.js';
import { type ReportRun, readReportDir, type StudyDirContents, type SweepReport } from './study-dir.js';
import { type SpreadStats, sharpnessSummaries, trainingPlots } from './training-plots.js';

/** Escape text for HTML element content and (double- or single-quoted) attribute values. */
export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;');
}

/**
 * JSON text safe inside an HTML `<script>` element: `<`, `>` and `&` are written as `\u003c`,
 * `\u003e` and `\u0026` (valid JSON string escapes; they occur only inside strings), so neither
 * `</script>` nor `<!--` can appear; U+2028/2029 are escaped too, for JavaScript parsers.
 */
export function jsonForScript(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent)
    .replaceAll('<', '\\u003c')
    .replaceAll('>', '\\u003e')
    .replaceAll('&', '\\u0026')
    .replaceAll('\u2028', '\\u2028')
    .replaceAll('\u2029', '\\u2029');
}

/** A plot as the report shows it: its themed spec and its files relative to the report. */
export interface ReportPlot {
  readonly name: string;
  readonly title: string;
  /** The themed Vega-Lite spec (data inline), before interactivity is added. */
  readonly spec: TopLevelSpec;
  /** Paths of the plot's files relative to index.html. */
  readonly files: { readonly svg: string; readonly png: string; readonly spec: string };
}

/** The JavaScript libraries inlined into the report. */
export interface ViewerScripts {
  readonly vega: string;
  readonly vegaLite: string;
  readonly vegaEmbed: string;
}

/** Read the minified browser (UMD) builds of vega, vega-lite and vega-embed from node_modules. */
export function loadViewerScripts(): ViewerScripts {
  const read = (pkg: string) => {
    const path = join(packageRoot(pkg), 'build', `${pkg}.min.js`);
    if (!existsSync(path)) throw new Error(`${pkg}: no browser build at ${path}`);
    // The builds contain no '</script'; escaping it anyway keeps a future build from ending the element.
    return readFileSync(path, 'utf8').replace(/<\/(script)/gi, '<\\/$1');
  };
  return { vega: read('vega'), vegaLite: read('vega-lite'), vegaEmbed: read('vega-embed') };
}

/** The folder of an installed package (its exports map hides package.json, so walk up from main). */
function packageRoot(pkg: string): string {
  const require = createRequire(import.meta.url);
  let dir = dirname(require.resolve(pkg));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === pkg
    ) {
      return dir;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`${pkg}: package folder not found`);
    dir = up;
  }
}

/** What {@link writeReport} wrote. */
export interface ReportResult {
  /** DIR/report/index.html. */
  readonly html: string;
  /** Plots, with their SVG/PNG/JSON files under DIR/report/plots/. */
  readonly plots: readonly ReportPlot[];
  readonly runs: readonly ReportRun[];
  /** Whether the study is complete: status.json says so and every run has ended (complete or diverged). */
  readonly complete: boolean;
}

/**
 * Draw `figures` into `reportDir/plots/` (SVG, PNG and the spec; unchanged files are not drawn
 * again) and return them as the page embeds them, with paths relative to `reportDir`.
 */
export async function writeReportPlots(
  reportDir: string,
  figures: readonly { name: string; title: string; spec: TopLevelSpec }[],
): Promise<ReportPlot[]> {
  const plotsDir = join(reportDir, 'plots');
  mkdirSync(plotsDir, { recursive: true });
  const plots: ReportPlot[] = [];
  for (const p of figures) {
    const written = await writePlot(plotsDir, p.name, p.spec);
    plots.push({
      name: p.name,
      title: p.title,
      // The file holds the spec with the theme merged in, exactly what the SVG/PNG show.
      spec: JSON.parse(readFileSync(written.spec, 'utf8')) as TopLevelSpec,
      files: {
        svg: relative(reportDir, written.svg),
        png: relative(reportDir, written.png),
        spec: relative(reportDir, written.spec),
      },
    });
  }
  return plots;
}

/**
 * Write the report of the study directory `dir`: regenerate every plot from results.arrow,
 * study.json and the embeddings (embedding/s<seed>/) into `dir/report/plots/` (SVG, PNG, Vega-Lite
 * JSON) and write `dir/report/index.html`. A sweep directory (sweep.json) gets the same page with its
 * runs (and their grid values) and its embedding figures ({@link sweepFigures}).
 * Throws {@link NotAStudyError} (from study-dir.ts) when `dir` has neither a valid study.json nor
 * a sweep.json.
 */
export async function writeReport(dir: string): Promise<ReportResult> {
  const contents = readReportDir(dir);
  const reportDir = join(dir, 'report');
  const figures = contents.sweep
    ? sweepFigures(contents.sweep)
    : [
        ...butterflyPlots(contents.rows ?? [], contents.study.twins),
        ...contents.embeddings.flatMap((e) => embedPlots(e.embedding, seedPlotOptions(e.seed))),
      ];
  const plots = await writeReportPlots(reportDir, figures);
  const html = renderReportHtml(contents, plots, loadViewerScripts());
  const path = join(reportDir, 'index.html');
  writeFileAtomic(path, [new TextEncoder().encode(html)]);
  return { html: path, plots, runs: contents.runs, complete: isComplete(contents) };
}

/**
 * A sweep's figures: its embedding (axes 1–2 and pairs), or, for a grouped sweep, the comparison of
 * the groups (ribbon widths, explained stress) followed by each group's axes 1–2 (its pairs figure
 * stays under groups/<group>/plots/, to keep the page light); then the curves along training of
 * runs with `diagnostics` or `sharpness` (training-plots.ts); then, for a sweep with a `measure`
 * block, the geometry figures (geometry-plots.ts).
 */
function sweepFigures(sweep: SweepReport) {
  const after = [...trainingPlots(sweep.training), ...geometryPlots(sweep.rows ?? [], sweep.surfaces)];
  if (sweep.embedding) return [...embedPlots(sweep.embedding), ...after];
  return [
    ...groupPlots(sweep.groupBy, sweep.groups),
    ...sweep.groups.flatMap(({ group, embedding }) =>
      embedPlots(embedding, { nameSuffix: `-${group.name}`, titleSuffix: `, ${group.name}` }).slice(0, 1),
    ),
    ...after,
  ];
}

const fmtSpread = (s: SpreadStats | undefined, digits: number) =>
  s === undefined
    ? '<td class="num">—</td>'.repeat(3)
    : `<td class="num">${s.mean.toFixed(digits)}${Number.isFinite(s.std) ? ` ± ${s.std.toFixed(digits)}` : ''}</td>` +
      `<td class="num">${s.min.toFixed(digits)}</td><td class="num">${s.max.toFixed(digits)}</td>`;

/**
 * The section of a sweep whose runs measured along training: the final test accuracy (and loss) of
 * each setting, mean ± sample standard deviation over its seeds with n, min and max; and, when runs
 * tracked sharpness, each run's sharpness against its stability threshold. Empty otherwise.
 */
function trainingSection(sweep: SweepReport | undefined): string {
  if (!sweep || sweep.training.length === 0) return '';
  const acc = sweep.settings.some((s) => s.testAcc);
  const head =
    '<tr><th>setting</th><th class="num">runs</th><th class="num">n</th>' +
    (acc
      ? '<th class="num">test acc (mean ± std)</th><th class="num">min</th><th class="num">max</th>'
      : '') +
    '<th class="num">test loss (mean ± std)</th><th class="num">min</th><th class="num">max</th></tr>';
  const body = sweep.settings.map(
    (s) =>
      `<tr data-setting="${escapeHtml(s.setting)}"><td>${escapeHtml(s.setting)}</td><td class="num">${s.runs.length}</td>` +
      `<td class="num">${s.testAcc?.n ?? s.testLoss?.n ?? 0}</td>` +
      (acc ? fmtSpread(s.testAcc, 4) : '') +
      `${fmtSpread(s.testLoss, 4)}</tr>`,
  );
  const table = `<table class="runs settings"><thead>${head}</thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
  const sharp = sharpnessSummaries(sweep.training);
  const ratio = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '—');
  const sharpTable =
    sharp.length === 0
      ? ''
      : '\n<h3>Sharpness against the stability threshold</h3>\n' +
        '<p class="hint">λ_max for gradient descent, λ_max(P⁻¹H) for Adam (what each threshold bounds), ' +
        'at the measured steps; ratio = value / threshold; "≥ 0.9" is the first measured step where the ratio reaches 0.9.</p>\n' +
        '<div class="runs-wrap"><table class="runs sharpness-summary"><thead><tr><th>run</th><th>setting</th>' +
        '<th class="num">first</th><th class="num">max</th><th class="num">last</th><th class="num">threshold</th>' +
        '<th class="num">max ratio</th><th class="num">step ≥ 0.9</th></tr></thead><tbody>\n' +
        sharp
          .map(
            (s) =>
              `<tr><td class="name">${escapeHtml(s.run)}</td><td>${escapeHtml(s.setting)}</td>` +
              `<td class="num">${fmt(s.first)}</td><td class="num">${fmt(s.max)}</td><td class="num">${fmt(s.last)}</td>` +
              `<td class="num">${fmt(s.threshold)}</td><td class="num">${ratio(s.maxRatio)}</td>` +
              `<td class="num">${s.stepNear ?? '—'}</td></tr>`,
          )
          .join('\n') +
        '\n</tbody></table></div>';
  return (
    '<section id="training"><h2>Final test accuracy per setting</h2>\n' +
    '<p class="hint">A setting is a run\'s grid values without its seeds. Over the runs of each setting that ' +
    'completed: mean ± sample standard deviation (n − 1) of the final evaluation, n, min and max.</p>\n' +
    `<div class="runs-wrap">${table}</div>${sharpTable}</section>`
  );
}

const fmtP = (p: number) => (!Number.isFinite(p) ? '—' : p < 1e-4 ? p.toExponential(1) : p.toFixed(4));

/**
 * The geometry section of a measured sweep: each run's sharpness and critical σ, and the rank
 * correlation of sharpness with sensitivity across the runs (reported whatever it is). Empty for a
 * sweep without geometry rows.
 */
function geometrySection(sweep: SweepReport | undefined): string {
  const rows = sweep?.rows ?? [];
  const correlations = geometryCorrelations(rows, sweep?.correlateAt);
  const last = new Map<string, number>();
  for (const r of rows)
    last.set(`${r.runA}|${r.metric}`, Math.max(last.get(`${r.runA}|${r.metric}`) ?? -1, r.step));
  const at = rows.filter((r) => r.step === last.get(`${r.runA}|${r.metric}`));
  const runs = [...new Set(at.filter((r) => r.metric !== 'diverged').map((r) => r.runA))];
  if (runs.length === 0) return '';
  const noises = [
    ...new Set(at.filter((r) => r.metric === 'critical_sigma').map((r) => String(r.options.noise))),
  ];
  const value = (run: string, metric: string, keep: (o: Record<string, unknown>) => boolean = () => true) =>
    at.find((r) => r.runA === run && r.metric === metric && keep(r.options));
  const head =
    '<tr><th>run</th><th class="num">step</th><th class="num">λ_max</th><th class="num">trace ± s.e.</th>' +
    noises.map((n) => `<th class="num">critical σ (${escapeHtml(n)})</th>`).join('') +
    '</tr>';
  const body = runs.map((run) => {
    const l = value(run, 'sharpness', (o) => o.k === 1);
    const t = value(run, 'hessian_trace');
    const se = t?.options.stderr;
    const trace = t ? `${fmt(t.value)}${typeof se === 'number' ? ` ± ${fmt(se, 2)}` : ''}` : '—';
    const steps = [...new Set(at.filter((r) => r.runA === run).map((r) => r.step))].join(', ');
    const crit = noises.map(
      (n) => `<td class="num">${fmt(value(run, 'critical_sigma', (o) => o.noise === n)?.value)}</td>`,
    );
    return (
      `<tr><td class="name">${escapeHtml(run)}</td><td class="num">${steps}</td>` +
      `<td class="num">${fmt(l?.value)}</td><td class="num">${trace}</td>${crit.join('')}</tr>`
    );
  });
  const perRun = `<table class="runs geometry"><thead>${head}</thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
  const corr = (c: GeometryCorrelation) =>
    `<tr><td>${escapeHtml(c.sharpness)}</td><td>${escapeHtml(c.sensitivity)}</td>` +
    `<td class="num">${Number.isFinite(c.rho) ? c.rho.toFixed(3) : '—'}</td><td class="num">${fmtP(c.pValue)}</td>` +
    `<td class="num">${c.n}</td><td class="num">${c.expected < 0 ? '−' : '+'}</td></tr>`;
  const table =
    correlations.length === 0
      ? '<p>No rank correlation: it needs both sharpness and sensitivity measurements.</p>'
      : '<table class="runs correlations"><thead><tr><th>sharpness</th><th>sensitivity</th>' +
        '<th class="num">Spearman ρ</th><th class="num">p (t-test)</th><th class="num">runs</th>' +
        '<th class="num">sign if sharper is more sensitive</th></tr></thead><tbody>\n' +
        correlations.map(corr).join('\n') +
        '\n</tbody></table>';
  return (
    '<section id="geometry"><h2>Sharpness and sensitivity</h2>\n' +
    '<p class="hint">At each run\'s last measured step. Does sharpness predict sensitivity across the runs? ' +
    "Spearman's rank correlation ρ over the runs with both values (ties share their mean rank; the " +
    'p-value is the two-sided t-test SciPy reports, rough for few runs).</p>\n' +
    `${table}\n<div class="runs-wrap">${perRun}</div></section>`
  );
}

/** A run that ended: complete, or diverged (a result, not a failure). */
const ended = (r: ReportRun) => r.status === 'complete' || r.status === 'diverged';

function isComplete(c: StudyDirContents): boolean {
  return c.status?.complete === true && c.runs.every(ended);
}

const fmt = (v: number | null | undefined, digits = 4) =>
  v === null || v === undefined || !Number.isFinite(v) ? '—' : Number(v.toPrecision(digits)).toString();

const STATUS_TEXT: Record<ReportRun['status'], string> = {
  complete: 'complete',
  diverged: 'diverged',
  incomplete: 'incomplete',
  missing: 'missing',
  failed: 'FAILED',
};

function runsTable(runs: readonly ReportRun[]): string {
  const head =
    '<tr><th>run</th><th>role</th><th>status</th><th class="num">steps</th><th class="num">train loss</th>' +
    '<th class="num">train acc</th><th class="num">test loss</th><th class="num">test acc</th><th>problems</th></tr>';
  const body = runs.map((r) => {
    const f = r.final;
    const d = r.diverged;
    const steps = `${d ? d.step : f ? f.step : '—'} / ${r.totalSteps ?? '?'}`;
    const notes = [...(d ? [`diverged ${formatDivergence(d)}`] : []), ...r.problems];
    const problems = notes.map((p) => `<div>${escapeHtml(p)}</div>`).join('');
    const badge = d ? `diverged at step ${d.step}` : STATUS_TEXT[r.status];
    return (
      `<tr class="run status-${r.status}" data-run="${escapeHtml(r.name)}">` +
      `<td class="name">${escapeHtml(r.name)}</td><td>${escapeHtml(r.role)}</td>` +
      `<td class="status"><span class="badge">${badge}</span></td>` +
      `<td class="num">${steps}</td><td class="num">${fmt(f?.trainEvalLoss)}</td><td class="num">${formatPercent(f?.trainAcc)}</td>` +
      `<td class="num">${fmt(f?.testLoss)}</td><td class="num">${formatPercent(f?.testAcc)}</td>` +
      `<td class="problems">${problems}</td></tr>`
    );
  });
  return `<table class="runs"><thead>${head}</thead><tbody>\n${body.join('\n')}\n</tbody></table>`;
}

function statusSection(c: StudyDirContents): string {
  const items: string[] = [];
  const s = c.status;
  for (const f of s?.failed ?? []) {
    items.push(
      `<li><b>failed</b> <code>${escapeHtml(f.id)}</code>: <pre>${escapeHtml(f.message)}</pre></li>`,
    );
  }
  if (s && s.blocked.length > 0) {
    items.push(
      `<li><b>not run</b> (a dependency failed): ${s.blocked.map((b) => `<code>${escapeHtml(b)}</code>`).join(', ')}</li>`,
    );
  }
  for (const cf of s?.controlFailures ?? []) {
    items.push(`<li><b>σ = 0 control failed</b>: ${escapeHtml(cf)}</li>`);
  }
  const incomplete = c.runs.filter((r) => !ended(r));
  if (incomplete.length > 0) {
    items.push(`<li><b>${incomplete.length} run(s) not complete</b> (marked in the table below)</li>`);
  }
  for (const w of c.warnings) items.push(`<li>${escapeHtml(w)}</li>`);
  const diverged = divergedNote(c);
  if (isComplete(c) && items.length === 0) {
    const measured = c.sweep?.rows ? ', measured' : '';
    const what = c.sweep
      ? `Sweep complete: every run trained${diverged ? ' (or diverged)' : ''}${measured} and embedded.`
      : `Study complete: every run trained${diverged ? ' (or diverged)' : ''}, every pair measured, σ = 0 control passed.`;
    return `<section id="status" class="ok"><p>✓ ${what}</p>${diverged}</section>`;
  }
  return `<section id="status" class="problems"><h2>Problems</h2>${diverged}<ul>${items.join('\n')}</ul></section>`;
}

/**
 * The diverged runs, named: a divergence is a result (not a failure), so it is listed apart from
 * the problems. Empty when no run diverged.
 */
function divergedNote(c: StudyDirContents): string {
  const runs = c.runs.filter((r) => r.diverged);
  if (runs.length === 0) return '';
  const what = c.sweep
    ? `left out of the embeddings${c.sweep.rows ? ' and not measured' : ''}`
    : 'their pairs are measured at the checkpoints kept before it, embeddings leave them out';
  const list = runs.map(
    (r) => `<li><code>${escapeHtml(r.name)}</code> diverged at step ${r.diverged?.step}</li>`,
  );
  return (
    `<p class="diverged"><b>${runs.length} run(s) diverged</b> (a non-finite loss or parameters; ${what}):</p>` +
    `<ul class="diverged">${list.join('')}</ul>`
  );
}

function plotSection(p: ReportPlot, i: number): string {
  const link = (href: string, label: string) => `<a href="${escapeHtml(href)}">${label}</a>`;
  return (
    `<figure class="plot" id="${escapeHtml(`fig-${p.name}`)}">` +
    `<div class="vega" id="plot-${i}" data-plot="${escapeHtml(p.name)}"></div>` +
    `<figcaption>${escapeHtml(p.title)} — ${link(p.files.svg, 'SVG')} · ${link(p.files.png, 'PNG')} · ` +
    `${link(p.files.spec, 'Vega-Lite JSON')}</figcaption></figure>`
  );
}

const CSS = `
body { font: 14px/1.45 "DejaVu Sans", Arial, Helvetica, sans-serif; color: #222; margin: 0 auto; max-width: 1400px; padding: 16px 24px 48px; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
.meta { color: #555; margin: 0 0 12px; }
nav a { margin-right: 14px; }
#status.ok { background: #eef7f1; border-left: 4px solid #009E73; padding: 6px 12px; }
#status.problems { background: #fdf1e8; border-left: 4px solid #D55E00; padding: 2px 12px 6px; }
#status pre { white-space: pre-wrap; margin: 2px 0 6px; font-size: 12px; }
table.runs { border-collapse: collapse; font-size: 13px; }
table.runs th, table.runs td { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: left; vertical-align: top; }
table.runs th { position: sticky; top: 0; background: #fafafa; }
table.runs td.num, table.runs th.num { text-align: right; font-variant-numeric: tabular-nums; }
table.runs td.name { font-family: "DejaVu Sans Mono", monospace; }
.badge { padding: 0 6px; border-radius: 3px; font-size: 12px; }
tr.status-complete .badge { background: #e3f3ea; color: #00664a; }
tr.status-failed, tr.status-incomplete, tr.status-missing { background: #fff4ec; }
tr.status-failed .badge { background: #D55E00; color: white; font-weight: bold; }
tr.status-incomplete .badge, tr.status-missing .badge { background: #E69F00; color: black; }
tr.status-diverged { background: #f9eef4; }
tr.status-diverged .badge { background: #CC79A7; color: black; }
td.problems { color: #a33c00; font-size: 12px; max-width: 420px; white-space: pre-wrap; }
.runs-wrap { max-height: 480px; overflow: auto; border: 1px solid #eee; display: inline-block; }
figure.plot { margin: 18px 0 28px; }
figure.plot figcaption { color: #555; font-size: 12px; margin-top: 4px; }
.vega { min-height: 60px; }
.vega .error { color: #a33c00; white-space: pre-wrap; }
pre.spec { background: #f7f7f7; padding: 10px; font-size: 12px; max-height: 600px; overflow: auto; }
.hint { color: #555; font-size: 12px; }
`;

/** The embedding script: parse the plot specs and embed each with vega-embed; errors are shown in place. */
const EMBED_JS = `
(function () {
  var plots = JSON.parse(document.getElementById('twinscope-plots').textContent);
  var opts = { renderer: 'svg', actions: { export: true, source: false, compiled: false, editor: false } };
  plots.forEach(function (p, i) {
    var el = document.getElementById('plot-' + i);
    vegaEmbed(el, p.spec, opts).then(function () {
      el.setAttribute('data-rendered', 'true');
    }).catch(function (err) {
      var msg = document.createElement('div');
      msg.className = 'error';
      msg.textContent = 'plot ' + p.name + ' could not be drawn: ' + (err && err.message ? err.message : err);
      el.appendChild(msg);
      el.setAttribute('data-rendered', 'error');
      console.error(err);
    });
  });
})();
`;

/**
 * The end of a report page's body: the inlined viewer `scripts`, the `plots` (legend toggles added)
 * as JSON, and the script that embeds plot i into the element `plot-i`.
 */
export function plotScriptsHtml(plots: readonly ReportPlot[], scripts: ViewerScripts): string {
  const embedded = plots.map((p) => ({ name: p.name, spec: withLegendToggle(p.spec) }));
  return `<script>${scripts.vega}</script>
<script>${scripts.vegaLite}</script>
<script>${scripts.vegaEmbed}</script>
<script type="application/json" id="twinscope-plots">${jsonForScript(embedded)}</script>
<script>${EMBED_JS}</script>`;
}

/**
 * The report page for `contents` with `plots` (themed specs; legend toggles are added here) and the
 * inlined `scripts`. Pure: writes nothing.
 */
export function renderReportHtml(
  contents: StudyDirContents,
  plots: readonly ReportPlot[],
  scripts: ViewerScripts,
): string {
  const { study } = contents;
  const kind = contents.sweep ? 'sweep' : 'study';
  const name = typeof study.spec.name === 'string' ? study.spec.name : kind;
  const nFailed = contents.runs.filter((r) => !ended(r)).length;
  const nDiverged = contents.runs.filter((r) => r.status === 'diverged').length;
  const meta = [
    `${contents.runs.length} runs`,
    contents.sweep
      ? `${contents.sweep.groups.length > 0 ? `${contents.sweep.groups.length} embedded groups` : 'one embedding'}`
      : `${study.twins.length} compared pairs`,
    study.totalSteps !== undefined ? `${study.totalSteps} steps per run` : '',
    study.toolkit ? `twinscope ${study.toolkit}` : '',
    nFailed > 0 ? `${nFailed} run(s) not complete` : '',
    nDiverged > 0 ? `${nDiverged} run(s) diverged` : '',
  ].filter(Boolean);
  const geometry = geometrySection(contents.sweep);
  const training = trainingSection(contents.sweep);
  const plotHtml =
    plots.length > 0
      ? `<p class="hint">Hover a mark for ${contents.sweep ? 'its run, step and coordinates' : 'its run, σ, t, step and value'}. Click a legend entry to highlight ` +
        `that series (shift-click for more, double-click the plot to reset).</p>\n${plots.map(plotSection).join('\n')}`
      : `<p>No plots: the ${kind} has no ${contents.sweep ? 'embedding' : 'measurement results'} yet.</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="twinscope">
<title>${escapeHtml(name)} — twinscope report</title>
<style>${CSS}</style>
</head>
<body>
<header>
<h1>${escapeHtml(name)}</h1>
<p class="meta">${meta.map(escapeHtml).join(' · ')}</p>
<nav><a href="#status">status</a><a href="#runs">runs</a>${training ? '<a href="#training">final accuracy</a>' : ''}${geometry ? '<a href="#geometry">sharpness and sensitivity</a>' : ''}<a href="#plots">plots</a><a href="#spec">spec</a></nav>
</header>
${statusSection(contents)}
<section id="runs"><h2>Runs</h2>
<div class="runs-wrap">${runsTable(contents.runs)}</div>
</section>
${training}
${geometry}
<section id="plots"><h2>Plots</h2>
${plotHtml}
</section>
<section id="spec"><h2>${contents.sweep ? 'Sweep' : 'Study'} spec</h2>
<pre class="spec">${escapeHtml(JSON.stringify(study.spec, null, 2))}</pre>
</section>
${plotScriptsHtml(plots, scripts)}
</body>
</html>
`;
}
