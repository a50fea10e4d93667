/**
 * The report of a sweep with a `measure` block, in a real browser (the pattern of
 * report-browser.test.ts): `twinscope run SWEEP.json` trains a grid list (gradient descent at two
 * learning rates, SGD with small batches), measures sharpness, sensitivity and two surfaces per
 * run, prints the rank correlations and the report path; the report, served on localhost and
 * opened in headless Chromium with every off-site request blocked, draws every figure with marks
 * (the surfaces' heatmap cells included), with no console error, and shows the rank-correlation
 * table. Skipped, with a warning, only when Chromium is not installed (set CHROMIUM_PATH).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { describe, expect, test } from 'vitest';
import { EXIT_OK } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `test/e2e/geometry-report-browser.test.ts: SKIPPED, no Chromium at ${CHROMIUM} ` +
      '(apt-get install chromium, or set CHROMIUM_PATH)',
  );
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/** Open `path` under `root` (served on localhost) offline; every plot's name, state and marks. */
async function openOffline(root: string, path: string) {
  const server = createServer((req, res) => {
    const file = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!file.startsWith(root) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
    res.end(readFileSync(file));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    const offsite: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.route('**/*', (route) => {
      const u = route.request().url();
      if (u.startsWith(url) || u.startsWith('data:')) return route.continue();
      offsite.push(u);
      return route.abort();
    });
    await page.goto(`${url}/${path}`);
    await page.waitForFunction(
      "[...document.querySelectorAll('.vega')].every((e) => e.getAttribute('data-rendered') !== null)",
      null,
      { timeout: 60_000 },
    );
    const plots = await page.$$eval('.vega', (els) =>
      els.map((e) => ({
        name: e.getAttribute('data-plot') ?? '',
        rendered: e.getAttribute('data-rendered'),
        marks: e.querySelectorAll(
          'path[aria-roledescription="line mark"], path[aria-roledescription="point"], path[aria-roledescription="rect mark"]',
        ).length,
        rects: e.querySelectorAll('path[aria-roledescription="rect mark"]').length,
      })),
    );
    const correlations = await page.$$eval('table.correlations tbody tr', (trs) => trs.length);
    return { plots, errors, offsite, correlations };
  } finally {
    await browser.close();
    await new Promise((r) => server.close(r));
  }
}

describe.skipIf(!haveChromium)('a measured sweep ends in a report that works offline', () => {
  test('twinscope run SWEEP.json with a measure block: rank correlations printed, every figure drawn', async () => {
    const root = scratchDir('twinscope-geometry-report-');
    const spec = join(root, 'sweep.json');
    const base = {
      ...tinyBase,
      epochs: 3,
      batchSize: 'full',
      optimizer: { kind: 'sgd', lr: 0.5 },
      checkpoints: { every: 1 },
    };
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'geometry-moons',
        sweep: { base, grid: [{ 'optimizer.lr': [0.2, 1] }, { batchSize: [8, 32], epochs: [1] }] },
        embed: { method: 'pca', components: 2 },
        measure: {
          sharpness: { examples: 100, probes: 4 },
          sensitivity: { sigmas: [0, 0.1, 0.3], draws: 2 },
          surface: [
            { directions: 'random', points: 5, examples: 60 },
            { directions: 'pca', points: 5, examples: 60 },
            { directions: 'line', points: 7, examples: 60 },
          ],
        },
      }),
    );
    const io = capture();
    const out = join(root, 'out');
    const argv = ['node', 'twinscope', 'run', spec, '--out', out, '--workers', '1', '--no-progress'];
    expect(await main(argv, io)).toBe(EXIT_OK);
    const lines = io.out.trim().split('\n');
    expect(lines).toContain('measured 4 run(s) (4 now): 120 result rows');
    expect(lines.filter((l) => l.startsWith('spearman  '))).toHaveLength(6);
    expect(lines).toContainEqual(
      expect.stringMatching(/^spearman {2}λ_max vs critical σ \(iid\): ρ = -?\d\.\d{3} \(4 runs, p = /),
    );
    expect(lines.at(-1)).toBe(`report   ${join(out, 'report', 'index.html')}`);
    const page = await openOffline(root, 'out/report/index.html');
    expect(page.plots.map((p) => p.name)).toEqual([
      'embedding',
      'sensitivity-accuracy',
      'sensitivity-loss',
      'critical-sigma',
      'sharpness',
      'sharpness-vs-critical-sigma',
      ...['0-lr0.2-3', '1-lr1-3', '2-batchSize8-epochs1-37', '3-batchSize32-epochs1-9'].flatMap((r) => {
        const [run, step] = [r.slice(0, r.lastIndexOf('-')), r.slice(r.lastIndexOf('-') + 1)];
        return [
          `surface-${run}-random-0-${step}`,
          `surface-${run}-pca-0-${step}`,
          `surface-${run}-line-0-${step}`,
        ];
      }),
    ]);
    for (const p of page.plots) {
      expect(p.rendered, p.name).toBe('true');
      expect(p.marks, p.name).toBeGreaterThan(0);
      if (p.name.startsWith('surface-')) expect(p.rects, p.name).toBe(p.name.includes('-line-') ? 0 : 25);
    }
    expect(page.correlations).toBe(6);
    expect(page.errors).toEqual([]);
    expect(page.offsite).toEqual([]);
  }, 240_000);
});
