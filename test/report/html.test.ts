/**
 * The HTML report of a study directory: self-contained (no external scripts or URLs), every plot
 * embedded with a legend toggle that compiles, runs table with final metrics, failures marked, and
 * every study string escaped (HTML and `</script>` in JSON).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parse, type Spec, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { describe, expect, test } from 'vitest';
import { butterflyPlots } from '../../src/report/butterfly-plots.js';
import { escapeHtml, jsonForScript, writeReport } from '../../src/report/html.js';
import { LEGEND_PARAM, withLegendToggle } from '../../src/report/interactive.js';
import { NotAStudyError, readStudyDir } from '../../src/report/study-dir.js';
import { scratchDir } from '../helpers/scratch.js';
import {
  FAIL_MESSAGE,
  FAILED_RUN,
  RUNNING_RUN,
  writeStudyFixture,
  XSS_NAME,
  XSS_RUN,
} from './study-fixture.js';

const root = scratchDir('twinscope-report-');

/** The JSON of the plot-data script element. */
function embeddedPlots(html: string): { name: string; spec: TopLevelSpec }[] {
  const m = /<script type="application\/json" id="twinscope-plots">([\s\S]*?)<\/script>/.exec(html);
  if (!m) throw new Error('no plot data element');
  return JSON.parse(m[1] as string);
}

describe('escaping', () => {
  test('escapeHtml escapes markup and both quotes', () => {
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe(
      '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;',
    );
  });

  test('jsonForScript cannot close a script element and round-trips', () => {
    const value = { s: '</script><script>alert(1)</script> <!-- & \u2028', n: [1, 2] };
    const text = jsonForScript(value);
    expect(text).not.toMatch(/[<>&\u2028]/);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('withLegendToggle', () => {
  const twins = writeStudyFixture(join(root, 'toggle'));
  const { rows } = readStudyDir(join(root, 'toggle'));
  const plots = butterflyPlots(rows ?? [], twins);

  test('every butterfly plot gets a legend-bound selection that compiles without warnings and runs', async () => {
    expect(plots.map((p) => p.name)).toEqual([
      'l2-vs-step',
      'l2-final-vs-sigma',
      'barrier-vs-sigma',
      'interpolation',
      'cka-vs-sigma',
    ]);
    for (const p of plots) {
      const spec = withLegendToggle(p.spec);
      const text = JSON.stringify(spec);
      expect(text, p.name).toContain(`"bind":"legend"`);
      expect(text, p.name).toContain(`"param":"${LEGEND_PARAM}"`);
      const warnings: string[] = [];
      const logger = {
        level: () => logger,
        error: (...a: unknown[]) => {
          warnings.push(String(a));
          return logger;
        },
        warn: (...a: unknown[]) => {
          warnings.push(String(a));
          return logger;
        },
        info: () => logger,
        debug: () => logger,
      };
      const vg = compile(spec, { logger: logger as never }).spec;
      expect(warnings, p.name).toEqual([]);
      const view = new View(parse(vg as Spec), { renderer: 'none' });
      await view.runAsync();
      view.finalize();
    }
  });

  test('specs without a colour field, or with their own params, are unchanged', () => {
    const plain = {
      mark: 'point',
      data: { values: [] },
      encoding: { x: { field: 'a', type: 'quantitative' } },
    };
    expect(withLegendToggle(plain as TopLevelSpec)).toBe(plain);
    const own = {
      ...plain,
      params: [{ name: 'p', select: 'interval' }],
      encoding: { color: { field: 'c' } },
    };
    expect(withLegendToggle(own as TopLevelSpec)).toBe(own);
  });

  test('the input spec is not modified', () => {
    const before = JSON.stringify(plots[0]?.spec);
    withLegendToggle(plots[0]?.spec as TopLevelSpec);
    expect(JSON.stringify(plots[0]?.spec)).toBe(before);
  });
});

describe('writeReport', () => {
  test('a complete study: self-contained page, runs table, every plot, SVG and PNG files', async () => {
    const dir = join(root, 'ok');
    writeStudyFixture(dir);
    const result = await writeReport(dir);
    expect(result.html).toBe(join(dir, 'report', 'index.html'));
    expect(result.complete).toBe(true);
    const html = readFileSync(result.html, 'utf8');

    // Self-contained: no external scripts, stylesheets or fetched URLs.
    expect(html).not.toMatch(/<script[^>]+src=/i);
    expect(html).not.toMatch(/<link[^>]+href=/i);
    expect(html).not.toMatch(/(src|href)="https?:/i);
    for (const lib of ['vega', 'vegaLite', 'vegaEmbed']) expect(html).toContain(`.${lib}=`);

    expect(html).toContain('Study complete');
    expect(html).toContain('<td class="name">s0/t10/gaussian-1e-4-r0</td>');
    expect(html).toContain('1000 / 1000'); // steps
    expect(html).toContain('88.0%'); // test acc
    expect(html).toContain('&quot;name&quot;: &quot;fixture-study&quot;'); // pretty spec

    const plots = embeddedPlots(html);
    expect(plots.map((p) => p.name)).toEqual(result.plots.map((p) => p.name));
    expect(plots).toHaveLength(5);
    for (const p of result.plots) {
      expect(html).toContain(`data-plot="${p.name}"`);
      for (const file of [p.files.svg, p.files.png, p.files.spec]) {
        const path = join(dir, 'report', file);
        expect(existsSync(path), path).toBe(true);
        expect(statSync(path).size).toBeGreaterThan(1000);
      }
      expect(
        readFileSync(join(dir, 'report', p.files.png))
          .subarray(1, 4)
          .toString(),
      ).toBe('PNG');
    }
    // Themed (Okabe–Ito), with tooltips, as in the SVG/PNG files.
    expect(JSON.stringify(plots[0]?.spec)).toContain('#E69F00');
    expect(JSON.stringify(plots[0]?.spec)).toContain('"tooltip"');
  });

  test('hostile run and study names are escaped in HTML and cannot break out of the data script', async () => {
    const dir = join(root, 'hostile');
    writeStudyFixture(dir, { hostile: true, failed: true });
    const html = readFileSync((await writeReport(dir)).html, 'utf8');
    expect(html).not.toContain(XSS_RUN);
    expect(html).toContain(escapeHtml(XSS_RUN));
    expect(html).not.toContain('<script>window.__xss');
    expect(html).toContain(
      '<title>evil&lt;/script&gt;&lt;script&gt;window.__xss=1&lt;/script&gt; — twinscope report',
    );
    // Exactly the page's own five script elements open and close.
    expect(html.match(/<script/gi)).toHaveLength(5);
    expect(html.match(/<\/script/gi)).toHaveLength(5);
    // The hostile names survive as data (tooltips show them as text).
    const data = JSON.stringify(embeddedPlots(html));
    expect(data).toContain(JSON.stringify(XSS_RUN).slice(1, -1));
    expect(html).toContain(escapeHtml(XSS_NAME));
  });

  test('a study with a failed and an unfinished run still renders and marks both', async () => {
    const dir = join(root, 'failed');
    writeStudyFixture(dir, { failed: true, running: true });
    const result = await writeReport(dir);
    expect(result.complete).toBe(false);
    const html = readFileSync(result.html, 'utf8');
    const rowOf = (name: string) => {
      const m = new RegExp(`<tr class="run status-(\\w+)" data-run="${name}">(.*?)</tr>`).exec(html);
      if (!m) throw new Error(`no row for ${name}`);
      return { status: m[1], cells: m[2] as string };
    };
    const failed = rowOf(FAILED_RUN);
    expect(failed.status).toBe('failed');
    expect(failed.cells).toContain('FAILED');
    expect(failed.cells).toContain(escapeHtml(FAIL_MESSAGE));
    const running = rowOf(RUNNING_RUN);
    expect(running.status).toBe('incomplete');
    expect(running.cells).toContain('— / 1000');
    expect(rowOf('s0/t10/gaussian-1e-4-r0').status).toBe('complete');
    expect(html).toContain('<section id="status" class="problems">');
    expect(html).toContain(`<code>fork:${FAILED_RUN}</code>`);
    expect(html).toContain('not run</b> (a dependency failed)');
    expect(html).toContain('2 run(s) not complete');
    expect(embeddedPlots(html)).toHaveLength(5); // the other twins are still plotted
  });

  test('a study without results.arrow or status.json is reported with a note and no plots', async () => {
    const dir = join(root, 'bare');
    writeStudyFixture(dir);
    const { rmSync } = await import('node:fs');
    rmSync(join(dir, 'results.arrow'));
    rmSync(join(dir, 'status.json'));
    const result = await writeReport(dir);
    const html = readFileSync(result.html, 'utf8');
    expect(result.plots).toHaveLength(0);
    expect(html).toContain('no results.arrow');
    expect(html).toContain('No plots');
  });

  test('a directory without study.json is not a study', async () => {
    await expect(writeReport(join(root, 'nothing'))).rejects.toBeInstanceOf(NotAStudyError);
  });
});
