import fs from 'node:fs';
import path from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { describe, expect, test } from 'vitest';
import { PNG_SCALE, renderPlot, THEME, writePlot } from '../../src/report/plot.js';
import { scratchDir } from '../helpers/scratch.js';

const POINTS = 5;
const LINES = 3;

/** A tiny line chart: LINES series of POINTS points each, with point overlays. */
function lineChart(): TopLevelSpec {
  const values = Array.from({ length: LINES * POINTS }, (_, i) => ({
    x: i % POINTS,
    y: (i % POINTS) * (1 + Math.floor(i / POINTS)),
    s: `s${Math.floor(i / POINTS)}`,
  }));
  return {
    title: 'tiny',
    data: { values },
    mark: { type: 'line', point: true, tooltip: true },
    encoding: {
      x: { field: 'x', type: 'quantitative' },
      y: { field: 'y', type: 'quantitative' },
      color: { field: 's', type: 'nominal' },
    },
  };
}

const count = (svg: string, s: string) => svg.split(s).length - 1;

/** Width and height from a PNG's IHDR chunk (bytes 16..24). */
function pngSize(png: Uint8Array): { width: number; height: number } {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  expect(String.fromCharCode(...png.subarray(12, 16))).toBe('IHDR');
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

describe('renderPlot', () => {
  test('renders a line chart to SVG and a 2x PNG', async () => {
    const { svg, png } = await renderPlot(lineChart());
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    // One path per series, one symbol per point.
    expect(count(svg, 'aria-roledescription="line mark"')).toBe(LINES);
    expect(count(svg, 'aria-roledescription="point"')).toBe(LINES * POINTS);
    expect(count(svg, 'class="mark-line role-mark')).toBe(LINES);
    // THEME applied: Okabe–Ito colours and the font the PNG renderer looks for.
    expect(svg).toContain('stroke="#E69F00"');
    expect(svg).toContain('font-family="DejaVu Sans');

    expect([...png.subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const width = Number(/<svg[^>]* width="(\d+(?:\.\d+)?)"/.exec(svg)?.[1]);
    const height = Number(/<svg[^>]* height="(\d+(?:\.\d+)?)"/.exec(svg)?.[1]);
    expect(width).toBeGreaterThan(0);
    expect(pngSize(png)).toEqual({
      width: Math.round(PNG_SCALE * width),
      height: Math.round(PNG_SCALE * height),
    });
  });

  test("the spec's own config wins over THEME", async () => {
    const spec = { ...lineChart(), config: { range: { category: ['#123456', '#654321', '#abcdef'] } } };
    const { svg } = await renderPlot(spec);
    expect(svg).toContain('stroke="#123456"');
    expect(svg).not.toContain('stroke="#E69F00"');
    expect(THEME.background).toBe('white');
  });
});

describe('writePlot', () => {
  const tempDir = () => scratchDir('twinscope-plot-');

  test('writes <name>.svg, .png and .vl.json', async () => {
    const dir = tempDir();
    const out = await writePlot(dir, 'tiny-line_1', lineChart());
    expect(out).toEqual({
      svg: path.join(dir, 'tiny-line_1.svg'),
      png: path.join(dir, 'tiny-line_1.png'),
      spec: path.join(dir, 'tiny-line_1.vl.json'),
    });
    expect(fs.readdirSync(dir).sort()).toEqual(['tiny-line_1.png', 'tiny-line_1.svg', 'tiny-line_1.vl.json']);
    expect(fs.readFileSync(out.svg, 'utf8').startsWith('<svg')).toBe(true);
    expect([...fs.readFileSync(out.png).subarray(0, 8)]).toEqual(PNG_SIGNATURE);
    const saved = JSON.parse(fs.readFileSync(out.spec, 'utf8'));
    expect(saved.data.values).toHaveLength(LINES * POINTS);
    expect(saved.config.font).toBe(THEME.font);
    // The saved spec re-renders to the same SVG.
    expect((await renderPlot(saved)).svg).toBe(fs.readFileSync(out.svg, 'utf8'));
  });

  test('an unchanged figure is not rendered again; a changed or half-written one is', async () => {
    const dir = tempDir();
    const first = await writePlot(dir, 'again', lineChart());
    // Mark the files so a rewrite shows, whatever the file-system timestamp resolution.
    fs.writeFileSync(first.svg, 'kept');
    await writePlot(dir, 'again', lineChart());
    expect(fs.readFileSync(first.svg, 'utf8')).toBe('kept');
    await writePlot(dir, 'again', { ...lineChart(), title: 'changed' });
    expect(fs.readFileSync(first.svg, 'utf8')).toContain('changed');
    fs.rmSync(first.png);
    fs.writeFileSync(first.svg, 'kept');
    await writePlot(dir, 'again', { ...lineChart(), title: 'changed' });
    expect(fs.readFileSync(first.svg, 'utf8').startsWith('<svg')).toBe(true);
    expect(fs.existsSync(first.png)).toBe(true);
  });

  test('rejects names with path separators and specs loading data from a URL', async () => {
    const dir = tempDir();
    for (const name of ['a/b', 'a\\b', '../x', '.hidden', '']) {
      await expect(writePlot(dir, name, lineChart())).rejects.toThrow(/invalid plot name/);
    }
    const remote = { ...lineChart(), data: { url: 'https://example.org/data.json' } };
    await expect(writePlot(dir, 'remote', remote)).rejects.toThrow(/data must be inline/);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});
