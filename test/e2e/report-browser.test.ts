/**
 * The HTML report in a real browser: a generated report (hand-built study with a failed run and
 * hostile names) is served on localhost and opened in headless Chromium (Debian's `chromium`,
 * driven by playwright-core). Checks: no console errors and no page errors, no request leaves
 * localhost, no injected script runs, every plot is drawn with marks, hovering a mark shows the
 * vega-tooltip with σ, clicking a legend entry fades the other series, and a screenshot is taken.
 * Also the reports of the README's main job and of a grouped sweep, both made through the CLI.
 * Skipped, with a warning, only when Chromium is not installed (set CHROMIUM_PATH to use another).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { EXIT_OK } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { writeReport } from '../../src/report/html.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase, tinyLinear } from '../helpers/study.js';
import { FAILED_RUN, writeStudyFixture } from '../report/study-fixture.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) {
  console.warn(
    `test/e2e/report-browser.test.ts: SKIPPED, no Chromium at ${CHROMIUM} ` +
      '(apt-get install chromium, or set CHROMIUM_PATH)',
  );
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
};

/** Serve the files under `root` (GET only, no directory listing). */
function serve(root: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(join(root, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
    if (!path.startsWith(root) || !existsSync(path) || !statSync(path).isFile()) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
    res.end(readFileSync(path));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

/**
 * Serve `root`, open `path` under it in headless Chromium with every off-site request blocked, wait
 * until every plot is drawn, and return each plot's name, state and line + point marks, the console
 * and page errors, and the blocked requests.
 */
async function openOffline(root: string, path: string) {
  const served = await serve(root);
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
      const url = route.request().url();
      if (url.startsWith(served.url) || url.startsWith('data:')) return route.continue();
      offsite.push(url);
      return route.abort();
    });
    await page.goto(`${served.url}/${path}`);
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
          'path[aria-roledescription="line mark"], path[aria-roledescription="point"]',
        ).length,
      })),
    );
    return { plots, errors, offsite };
  } finally {
    await browser.close();
    await new Promise((r) => served.server.close(r));
  }
}

describe.skipIf(!haveChromium)('report in headless Chromium', () => {
  const root = scratchDir('twinscope-report-browser-');
  const study = join(root, 'study');
  let server: Server;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const offsite: string[] = [];
  const dialogs: string[] = [];
  let plotCount = 0;

  beforeAll(async () => {
    writeStudyFixture(study, { failed: true, running: true, hostile: true });
    plotCount = (await writeReport(study)).plots.length;
    const served = await serve(root);
    server = served.server;
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(served.url) || url.startsWith('data:')) return route.continue();
      offsite.push(url);
      return route.abort();
    });
    await page.goto(`${served.url}/study/report/index.html`);
    // (Expressions as strings: the project's TypeScript has no DOM types.)
    await page.waitForFunction(
      "[...document.querySelectorAll('.vega')].every((e) => e.getAttribute('data-rendered') !== null)",
      null,
      { timeout: 60_000 },
    );
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
  });

  test('loads without console errors, network requests or injected scripts', async () => {
    expect(consoleErrors).toEqual([]);
    expect(offsite).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(await page.evaluate('typeof window.__xss')).toBe('undefined');
    // The hostile run name is shown as text.
    const names = await page.$$eval('td.name', (els) => els.map((e) => e.textContent));
    expect(names).toContain('<img src=x onerror=alert(1)>');
    expect(await page.$$eval('td.name img', (els) => els.length)).toBe(0);
    // The failed run is marked.
    expect(await page.textContent(`tr[data-run="${FAILED_RUN}"] .badge`)).toBe('FAILED');
  });

  test('every plot is drawn with marks', async () => {
    const plots = await page.$$eval('.vega', (els) =>
      els.map((e) => ({
        name: e.getAttribute('data-plot'),
        rendered: e.getAttribute('data-rendered'),
        lines: e.querySelectorAll('path[aria-roledescription="line mark"]').length,
        points: e.querySelectorAll('path[aria-roledescription="point"]').length,
      })),
    );
    expect(plots).toHaveLength(plotCount);
    expect(plotCount).toBe(5);
    for (const p of plots) {
      expect(p.rendered, p.name ?? '').toBe('true');
      expect(p.lines + p.points, p.name ?? '').toBeGreaterThan(0);
    }
    expect(plots.find((p) => p.name === 'l2-vs-step')?.lines).toBeGreaterThan(10);
  });

  test('hovering a mark shows a tooltip with σ, t and the run', async () => {
    // The (transparent) points on the twin-distance lines: one per twin and step.
    const mark = page.locator('#fig-l2-vs-step path[aria-roledescription="point"]').nth(3);
    await mark.scrollIntoViewIfNeeded();
    const box = await mark.boundingBox();
    if (!box) throw new Error('mark has no box');
    await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
    const tooltip = page.locator('#vg-tooltip-element');
    await tooltip.waitFor({ state: 'visible', timeout: 5000 });
    const text = (await tooltip.textContent()) ?? '';
    expect(text).toContain('σ');
    expect(text).toContain('step');
    expect(text).toContain('twin B');
    expect(text).toMatch(/s0\/t\d+\/gaussian-|<img/);
  });

  test('clicking a legend entry fades the other series', async () => {
    const lines = page.locator('#fig-l2-vs-step path[aria-roledescription="line mark"]');
    const opacities = () =>
      lines.evaluateAll((els) => els.map((e) => e.getAttribute('stroke-opacity') ?? '1'));
    expect((await opacities()).every((o) => o === '1')).toBe(true);
    const symbol = page.locator('#fig-l2-vs-step .role-legend-symbol path').first();
    await symbol.scrollIntoViewIfNeeded();
    await symbol.click({ force: true });
    await expect
      .poll(async () => (await opacities()).filter((o) => Number(o) < 0.5).length)
      .toBeGreaterThan(0);
    expect((await opacities()).some((o) => o === '1')).toBe(true);
  });

  test('a screenshot is taken', async () => {
    const path = join(root, 'report.png');
    await page.screenshot({ path, fullPage: true });
    expect(statSync(path).size).toBeGreaterThan(0);
    expect(readFileSync(path).subarray(1, 4).toString()).toBe('PNG');
  });
});

describe.skipIf(!haveChromium)("the README's main job ends in a report that works offline", () => {
  test('twinscope run pipelines/butterfly-moons.json prints the report path; every plot draws', async () => {
    const root = scratchDir('twinscope-main-job-');
    const out = join(root, 'butterfly-moons');
    const io = capture();
    const argv = [
      'node',
      'twinscope',
      'run',
      'pipelines/butterfly-moons.json',
      '--out',
      out,
      '--workers',
      '1',
    ];
    expect(await main([...argv, '--no-progress'], io)).toBe(EXIT_OK);
    const last = io.out.trim().split('\n').pop() ?? '';
    const match = /^report\s+(.+)$/.exec(last);
    expect(match, last).not.toBeNull();
    const report = (match as RegExpExecArray)[1] as string;
    expect(report).toBe(join(out, 'report', 'index.html'));
    const page = await openOffline(root, 'butterfly-moons/report/index.html');
    // 5 butterfly plots, then the InPCA embedding of seed 0 (measure.embedding) and its pairs.
    expect(page.plots.map((p) => p.name).slice(5)).toEqual(['embedding-s0', 'embedding-pairs-s0']);
    expect(page.plots).toHaveLength(7);
    for (const p of page.plots) expect(p.marks, p.name).toBeGreaterThan(0);
    expect(page.errors).toEqual([]);
    expect(page.offsite).toEqual([]);
  }, 240_000);
});

describe.skipIf(!haveChromium)('a grouped sweep ends in a report that works offline', () => {
  test('twinscope run SWEEP.json prints the report path; the group comparison and every group draw', async () => {
    const root = scratchDir('twinscope-sweep-report-');
    const spec = join(root, 'sweep.json');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'decay-sweep',
        sweep: { base: tinyLinear, grid: { 'data.decay': [1, 3], seed: [0, 1, 2] } },
        embed: { method: 'inpca', components: 3, examples: 20, groupBy: ['data.decay'] },
      }),
    );
    const io = capture();
    const argv = ['node', 'twinscope', 'run', spec, '--out', join(root, 'out'), '--workers', '1'];
    expect(await main([...argv, '--no-progress'], io)).toBe(EXIT_OK);
    expect(io.out.trim().split('\n').pop()).toBe(`report   ${join(root, 'out', 'report', 'index.html')}`);
    const page = await openOffline(root, 'out/report/index.html');
    expect(page.plots.map((p) => p.name)).toEqual([
      'ribbon-widths',
      'ribbon-explained',
      'embedding-g0-decay1',
      'embedding-g1-decay3',
    ]);
    for (const p of page.plots) {
      expect(p.rendered, p.name).toBe('true');
      expect(p.marks, p.name).toBeGreaterThan(0);
    }
    expect(page.errors).toEqual([]);
    expect(page.offsite).toEqual([]);
  }, 240_000);
});

describe.skipIf(!haveChromium)(
  'a sweep with diagnostics and sharpness ends in a report that works offline',
  () => {
    test('the curves along training, sharpness against 2/η and the final-accuracy table draw', async () => {
      const root = scratchDir('twinscope-training-report-');
      const spec = join(root, 'sweep.json');
      const base = {
        ...tinyBase,
        data: { ...tinyBase.data, n: 200 },
        optimizer: { kind: 'sgd', lr: 0.1 },
        batchSize: 50,
        epochs: 2,
        checkpoints: { every: 3 },
        diagnostics: { every: 'epoch' },
        sharpness: { every: 'epoch', examples: 60 },
      };
      writeFileSync(
        spec,
        JSON.stringify({
          name: 'training-sweep',
          sweep: { base, grid: { 'optimizer.lr': [0.05, 0.3], seed: [0, 1] } },
          embed: { method: 'pca', components: 2 },
        }),
      );
      const io = capture();
      const argv = ['node', 'twinscope', 'run', spec, '--out', join(root, 'out'), '--workers', '1'];
      expect(await main([...argv, '--no-progress'], io)).toBe(EXIT_OK);
      const page = await openOffline(root, 'out/report/index.html');
      expect(page.plots.map((p) => p.name)).toEqual([
        'embedding',
        'training-test-accuracy',
        'training-train-loss',
        'training-grad-norm',
        'training-saturation',
        'training-saturation-layers',
        'sharpness-along-training',
        'sharpness-ratio-along-training',
      ]);
      for (const p of page.plots) {
        expect(p.rendered, p.name).toBe('true');
        expect(p.marks, p.name).toBeGreaterThan(0);
      }
      const html = readFileSync(join(root, 'out', 'report', 'index.html'), 'utf8');
      expect(html.match(/<tr data-setting=/g)).toHaveLength(2);
      expect(page.errors).toEqual([]);
      expect(page.offsite).toEqual([]);
    }, 240_000);
  },
);
