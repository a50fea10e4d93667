/**
 * Embedding figures on a synthetic 3-run embedding: axis titles (sign of λ and explained stress,
 * PCA variance), the rendered SVG (one line per run, one point per checkpoint in every panel) and
 * the files written.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import {
  axisTitle,
  type EmbedPlot,
  embedPlots,
  seedPlotOptions,
  writeEmbedPlots,
} from '../../src/report/embed-plots.js';
import { renderPlot } from '../../src/report/plot.js';
import type { EmbedPoint, RunEmbedding } from '../../src/results/embedding.js';
import { scratchDir } from '../helpers/scratch.js';

const RUNS = ['run-a', 'run-b', 'run-c'];
const STEPS = [0, 10, 20, 30, 40, 45];

function embedding(method: 'pca' | 'inpca', components = 3): RunEmbedding {
  const points: EmbedPoint[] = [];
  RUNS.forEach((run, r) => {
    for (const step of STEPS) {
      const s = step / 45;
      points.push({
        run,
        step,
        coords: [s * (1 + r), Math.sin(3 * s + r), s * s - r / 3].slice(0, components),
      });
    }
  });
  const common = { runs: RUNS, runDirs: RUNS.map((r) => `/x/${r}`), points, components };
  return method === 'pca'
    ? {
        ...common,
        method,
        eigenvalues: [4, 1, 0.5].slice(0, components),
        explainedVarianceRatio: [0.48, 0.12, 0.06].slice(0, components),
        options: { components },
      }
    : {
        ...common,
        method,
        eigenvalues: [2, -1, 0.5].slice(0, components),
        explainedStress: [0.62, 0.8, 0.88].slice(0, components),
        options: { components, examples: 100, split: 'test' },
      };
}

/** Number of `<g class="CLASS ...">` groups in the SVG, and the paths inside those groups. */
function marks(svg: string, cls: string): { groups: number; paths: number } {
  const re = new RegExp(`<g class="${cls} role-mark[^"]*"[^>]*>(.*?)</g>`, 'g');
  let groups = 0;
  let paths = 0;
  for (const m of svg.matchAll(re)) {
    groups++;
    paths += (m[1]?.match(/<path/g) ?? []).length;
  }
  return { groups, paths };
}

describe('embedding plots', () => {
  test('axis titles carry the sign of λ and the explained stress / variance', () => {
    const e = embedding('inpca');
    expect(axisTitle(e, 0)).toEqual(['axis 1 (λ > 0)', 'stress 62%']);
    expect(axisTitle(e, 1)).toEqual(['axis 2 (λ < 0)', 'stress 80% with axes 1–2']);
    expect(axisTitle(embedding('pca'), 0)).toBe('PC1 (48% variance)');
    expect(axisTitle(embedding('pca'), 2)).toBe('PC3 (6.0% variance)');
  });

  test('the scatter renders one line per run and one point per checkpoint', async () => {
    const [scatter, pairs] = embedPlots(embedding('inpca'));
    expect(scatter?.name).toBe('embedding');
    const { svg } = await renderPlot(scatter?.spec as NonNullable<typeof scatter>['spec']);
    expect(marks(svg, 'mark-line')).toEqual({ groups: RUNS.length, paths: RUNS.length });
    expect(marks(svg, 'mark-symbol').paths).toBe(RUNS.length * STEPS.length);
    expect(svg).toContain('axis 1 (λ &gt; 0)');
    expect(svg).toContain('stress 62%');
    // The two-line vertical title fits the panel: the figure is not padded beyond its panel height.
    const height = Number(svg.match(/height="(\d+)"/)?.[1]);
    expect(height).toBeLessThan(400); // a one-line title longer than the 260-px panel padded the figure
    // Pairs of the top 3 axes: three panels of the same marks.
    expect(pairs?.name).toBe('embedding-pairs');
    const p = await renderPlot(pairs?.spec as NonNullable<typeof pairs>['spec']);
    expect(marks(p.svg, 'mark-line')).toEqual({ groups: 3 * RUNS.length, paths: 3 * RUNS.length });
    expect(marks(p.svg, 'mark-symbol').paths).toBe(3 * RUNS.length * STEPS.length);
    expect(p.svg).toContain('stress 88% with axes 1–3');
  });

  test('tooltips name run, step and every axis; colour is step on viridis', () => {
    const scatter = embedPlots(embedding('pca'))[0] as EmbedPlot;
    const layer = (scatter.spec as { layer: { encoding: Record<string, unknown> }[] }).layer;
    const points = (layer[1] as { encoding: Record<string, unknown> }).encoding as {
      tooltip: { field: string }[];
      color: { field: string; scale: { scheme: string } };
    };
    expect(points.tooltip.map((t) => t.field)).toEqual(['run', 'step', 'axis0', 'axis1', 'axis2']);
    expect(points.color.field).toBe('step');
    expect(points.color.scale.scheme).toBe('viridis');
    const lines = (layer[0] as { encoding: Record<string, unknown> }).encoding as {
      detail: { field: string };
    };
    expect(lines.detail.field).toBe('run');
  });

  test('two axes: no pairs figure; one axis: no figures; files are written under DIR/plots', async () => {
    expect(embedPlots(embedding('pca', 2)).map((p) => p.name)).toEqual(['embedding']);
    expect(embedPlots(embedding('pca', 1))).toEqual([]);
    const dir = scratchDir('twinscope-embed-plots-');
    const written = await writeEmbedPlots(dir, embedding('pca'));
    expect(written.map((w) => w.svg)).toEqual([
      join(dir, 'plots', 'embedding.svg'),
      join(dir, 'plots', 'embedding-pairs.svg'),
    ]);
    for (const w of written) for (const f of [w.svg, w.png, w.spec]) expect(existsSync(f)).toBe(true);
  });

  test('a name and title suffix tell apart the embeddings of a study (one per seed)', async () => {
    const e = embedding('inpca');
    const plain = embedPlots(e);
    const seeded = embedPlots(e, seedPlotOptions(2));
    expect(seeded.map((p) => p.name)).toEqual(['embedding-s2', 'embedding-pairs-s2']);
    expect(seeded.map((p) => p.title)).toEqual([
      'Trajectory InPCA, seed 2',
      'Trajectory InPCA, seed 2: pairs of the top 3 axes',
    ]);
    // Only names and titles change.
    const strip = (p: EmbedPlot) => JSON.stringify({ ...p.spec, title: undefined });
    expect(seeded.map(strip)).toEqual(plain.map(strip));
    const dir = scratchDir('twinscope-embed-plots-');
    const written = await writeEmbedPlots(dir, e, { nameSuffix: '-x' });
    expect(written.map((w) => w.svg)).toEqual([
      join(dir, 'plots', 'embedding-x.svg'),
      join(dir, 'plots', 'embedding-pairs-x.svg'),
    ]);
  });
});
