/**
 * `twinscope compare A B --out DIR` writes DIR/report/index.html: the numbers of summary.json
 * (distances, barriers under both conventions, CKA, the BatchNorm mode) as the page writes them,
 * and every figure it links (SVG, PNG, Vega-Lite JSON under DIR/report/plots/) exists; the report's
 * path is the last line on stdout. `--no-report` writes the data files only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type CliIo, EXIT_OK } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { formatCompareNumber as f } from '../../src/report/compare-report.js';
import { capture } from '../helpers/cli-io.js';
import { fixturePath } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-cli-compare-report-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);
const onnx = (name: string) => fixturePath('onnx', name);
const FAST = ['--examples', '300', '--cka-examples', '100', '--alphas', '5', '--align-examples', '300'];

interface Barriers {
  loss: { linear: number; midpointMean: number; alphaStar: number };
  error: { linear: number; midpointMean: number; alphaStar: number };
}

/** Run compare with --out DIR; return the stdout lines, the summary and the report's HTML. */
async function compareOut(dir: string, ...args: string[]) {
  const io = capture();
  expect(
    await cli(
      io,
      'compare',
      onnx('mlp-s0.onnx'),
      onnx('mlp-s1.onnx'),
      '--data',
      'mnist',
      ...FAST,
      ...args,
      '--out',
      dir,
    ),
    io.err,
  ).toBe(EXIT_OK);
  const lines = io.out.trimEnd().split('\n');
  const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8'));
  const index = join(dir, 'report', 'index.html');
  return { lines, summary, index, html: existsSync(index) ? readFileSync(index, 'utf8') : null };
}

/** Every local file the page's markup links or embeds (href / src, outside the inlined scripts), relative to index.html. */
function linkedFiles(html: string): string[] {
  const markup = html.replace(/<script[^>]*>[\s\S]*?<\/script>/g, '');
  return [...markup.matchAll(/(?:href|src)="([^"#:]+)"/g)].map((m) => m[1] as string);
}

describe('twinscope compare --out: the HTML report', () => {
  test('two MLPs, aligned both ways: every number of summary.json on the page, every linked figure on disk', async () => {
    const dir = join(root, 'mlp');
    const { lines, summary, index, html } = await compareOut(dir);
    expect(lines.at(-1)).toBe(`report   ${index}`);
    expect(html).not.toBeNull();
    const page = html as string;
    // Distances, plain and aligned.
    expect(page).toContain(`<td class="num">${f(summary.l2)}</td>`);
    expect(page).toContain(`<td class="num">${f(summary.normalizedL2)}</td>`);
    expect(page).toContain(`<td class="num">${f(summary.cosine)}</td>`);
    expect(page).toContain(`<td class="num">${f(summary.aligned.weight.l2)}</td>`);
    expect(page).toContain(`<td class="num">${f(summary.aligned.activation.l2)}</td>`);
    // Barriers: both splits, both conventions, plain and aligned.
    const barrierRow = (path: string, split: string, b: Barriers) => {
      const start = page.indexOf(`<tr data-path="${path}" data-split="${split}">`);
      expect(start, `${path} ${split}`).toBeGreaterThan(0);
      const row = page.slice(start, page.indexOf('</tr>', start));
      for (const v of [
        f(b.loss.linear, 5),
        f(b.loss.midpointMean, 5),
        f(b.error.linear, 4),
        f(b.error.midpointMean, 4),
      ])
        expect(row).toContain(`<td class="num">${v}</td>`);
    };
    for (const split of ['train', 'test']) {
      barrierRow('plain', split, summary.barriers[split]);
      const w = summary.aligned.weight.barriers[split];
      barrierRow('aligned (weight matching)', split, { loss: w.loss, error: w.error });
      const a = summary.aligned.activation.barriers[split];
      barrierRow('aligned (activation matching)', split, { loss: a.loss, error: a.error });
    }
    expect(page).toContain(f(summary.barrierLoss, 5));
    expect(page).toContain(f(summary.alignedBarrierError, 4));
    expect(summary.barrierLoss).toBeGreaterThan(0);
    // CKA per hidden output; the BatchNorm mode (an MLP has none).
    expect(Object.keys(summary.cka).length).toBeGreaterThan(0);
    for (const [layer, v] of Object.entries(summary.cka) as [string, number][])
      expect(page).toContain(`<td class="name">${layer}</td><td class="num">${f(v, 5)}</td>`);
    expect(summary.normalization).toBeNull();
    expect(page).toContain('data-mode="none"');
    // Figures: loss and error curves and CKA, each as SVG, PNG and Vega-Lite JSON, all on disk.
    const files = linkedFiles(page);
    for (const name of ['interpolation-loss', 'interpolation-error', 'cka'])
      for (const ext of ['svg', 'png', 'vl.json']) expect(files).toContain(`plots/${name}.${ext}`);
    for (const file of files) expect(existsSync(join(dir, 'report', file)), file).toBe(true);
    // The curve figure draws the three paths on both splits, with the summary's values.
    const loss = JSON.parse(readFileSync(join(dir, 'report', 'plots', 'interpolation-loss.vl.json'), 'utf8'));
    const values = loss.data.values as { path: string; split: string; alpha: number; value: number }[];
    expect(new Set(values.map((v) => v.path))).toEqual(
      new Set(['plain', 'aligned (weight matching)', 'aligned (activation matching)']),
    );
    expect(values.filter((v) => v.path === 'plain' && v.split === 'test').map((v) => v.value)).toEqual(
      summary.curves.test.loss,
    );
  }, 120_000);

  test('--bn repair --align none: the mode and the note on the page; --no-report writes no report', async () => {
    const dir = join(root, 'repair');
    const { summary, html } = await compareOut(dir, '--bn', 'repair', '--align', 'none');
    expect(summary.normalization).toBe('repair');
    expect(html).toContain('data-mode="repair"');
    expect(html).toContain('not measured (--align none)');
    expect(html).not.toContain('data-path="aligned');
    const bare = join(root, 'bare');
    const { lines, html: none } = await compareOut(bare, '--align', 'none', '--no-report');
    expect(none).toBeNull();
    expect(existsSync(join(bare, 'report'))).toBe(false);
    expect(existsSync(join(bare, 'summary.json'))).toBe(true);
    expect(lines.some((l) => l.startsWith('report'))).toBe(false);
  }, 120_000);
});
