/**
 * Grouped-sweep figures on synthetic group embeddings: the plotted width ratios and explained stress
 * are the groups' own numbers, a zero ratio (after a zero eigenvalue) is left off the log axis, the x
 * axis is the numeric groupBy field, the other fields facet the figure, and the SVG draws one line
 * per series and panel.
 */
import { describe, expect, test } from 'vitest';
import type { EmbedPlot } from '../../src/report/embed-plots.js';
import { renderPlot } from '../../src/report/plot.js';
import { groupPlots } from '../../src/report/ribbon-plots.js';
import type { RunEmbedding } from '../../src/results/embedding.js';
import type { EmbeddedGroup } from '../../src/results/groups.js';

function group(name: string, values: Record<string, unknown>, eigenvalues: number[]): EmbeddedGroup {
  const embedding: RunEmbedding = {
    method: 'inpca',
    runs: ['r'],
    runDirs: ['/x/r'],
    points: [{ run: 'r', step: 0, coords: eigenvalues.map(() => 0) }],
    components: eigenvalues.length,
    eigenvalues,
    explainedStress: eigenvalues.map((_, k) => 0.5 + 0.1 * k),
    options: { components: eigenvalues.length },
  };
  return { group: { name, values, points: ['r'] }, embedding };
}

type Values = { values: Record<string, string | number>[] };

describe('groupPlots', () => {
  const groups = [
    group('g0', { 'data.decay': 1, steps: 20 }, [8, 4, 1, 0.5]),
    group('g1', { 'data.decay': 4, steps: 20 }, [8, 1, 0.1, 0]),
    group('g2', { 'data.decay': 1, steps: 200 }, [10, -5, 2.5, 1]),
  ];

  test('plots each group’s width ratios and explained stress against the numeric field', () => {
    const [widths, explained] = groupPlots(['data.decay', 'steps'], groups) as [EmbedPlot, EmbedPlot];
    expect(widths.name).toBe('ribbon-widths');
    const w = (widths.spec as unknown as { data: Values }).data.values;
    const of = (g: string) => w.filter((v) => v.group === g).map((v) => v.y);
    expect(of('g0')).toEqual([0.5, 0.25, 0.5]);
    expect(of('g1')).toEqual([0.125, 0.1]); // |λ4|/|λ3| = 0 is left off the log axis
    expect(of('g2')).toEqual([0.5, 0.5, 0.4]);
    expect(w.find((v) => v.group === 'g1')?.x).toBe(4);
    expect(w.find((v) => v.group === 'g2')?.panel).toBe('steps200');
    const e = (explained.spec as unknown as { data: Values }).data.values;
    expect(e.filter((v) => v.group === 'g0').map((v) => v.y)).toEqual([0.5, 0.6, 0.7]);
  });

  test('renders one line per ratio series in each facet panel', async () => {
    const [widths] = groupPlots(['data.decay', 'steps'], groups);
    const { svg } = await renderPlot(widths?.spec as NonNullable<typeof widths>['spec']);
    // Panels steps20 (3 series) and steps200 (3 series).
    expect(svg.match(/aria-roledescription="line mark"/g)?.length).toBe(6);
  });

  test('no figures when a group has fewer than two axes', () => {
    expect(groupPlots(['data.decay'], [group('g0', { 'data.decay': 1 }, [3])])).toEqual([]);
  });
});
