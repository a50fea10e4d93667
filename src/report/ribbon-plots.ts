import type { TopLevelSpec } from 'vega-lite';
import { widthRatios } from '../measure/inpca.js';
import { cumulativeExplained } from '../results/embedding.js';
import { type EmbeddedGroup, gridValueLabel } from '../results/groups.js';
import type { EmbedPlot } from './embed-plots.js';

interface Layout {
  /** The x field: a numeric groupBy field, or undefined (x = group name). */
  readonly x?: string;
  /** The remaining groupBy fields (facets). */
  readonly facets: string[];
  readonly logX: boolean;
}

function facetLayout(groupBy: readonly string[], groups: readonly EmbeddedGroup[]): Layout {
  const x = groupBy.find((f) => groups.every((g) => typeof g.group.values[f] === 'number'));
  const logX = x !== undefined && groups.every((g) => (g.group.values[x] as number) > 0);
  return { ...(x !== undefined && { x }), facets: groupBy.filter((f) => f !== x), logX };
}

function base(layout: Layout, group: EmbeddedGroup['group']) {
  return {
    group: group.name,
    x: layout.x === undefined ? group.name : (group.values[layout.x] as number),
    panel: layout.facets.map((f) => gridValueLabel(f, group.values[f])).join(' · '),
  };
}

/** A line chart of `values` (x, y, series), faceted by `panel` when there are facet fields. */
function chart(
  layout: Layout,
  values: Record<string, string | number>[],
  y: { title: string; log: boolean },
  series: string,
  title: { text: string; subtitle: string },
): TopLevelSpec {
  const xEnc =
    layout.x === undefined
      ? { field: 'x', type: 'nominal', title: 'group', sort: null }
      : {
          field: 'x',
          type: 'quantitative',
          title: layout.x,
          scale: layout.logX ? { type: 'log', base: 2 } : { zero: false },
          // Ticks at the grid values only (a log scale would add 1.5, 2.5, …).
          axis: { values: [...new Set(values.map((v) => v.x))] },
        };
  const yEnc = {
    field: 'y',
    type: 'quantitative',
    title: y.title,
    scale: y.log ? { type: 'log' } : { zero: false },
  };
  const tooltip = [
    { field: 'group', type: 'nominal' },
    { field: 'series', type: 'nominal', title: series },
    { field: 'y', type: 'quantitative', title: y.title, format: '.4g' },
  ];
  const layer = {
    width: 260,
    height: 200,
    layer: [
      {
        mark: { type: 'line', point: true },
        encoding: {
          x: xEnc,
          y: yEnc,
          color: { field: 'series', type: 'nominal', title: series, sort: null },
          tooltip,
        },
      },
    ],
  };
  if (layout.facets.length === 0) return { title, data: { values }, ...layer } as TopLevelSpec;
  return {
    title,
    data: { values },
    facet: { field: 'panel', type: 'nominal', title: layout.facets.join(' · '), sort: null },
    columns: 3,
    spec: layer,
  } as TopLevelSpec;
}

/** The grouped-sweep figures (see the module comment); none when there are fewer than two axes. */
export function groupPlots(groupBy: readonly string[], groups: readonly EmbeddedGroup[]): EmbedPlot[] {
  const k = Math.min(...groups.map((g) => g.embedding.components));
  if (groups.length === 0 || k < 2) return [];
  const layout = facetLayout(groupBy, groups);
  const method = groups[0]?.embedding.method === 'pca' ? 'PCA' : 'InPCA';
  const subtitle = `${method} of each group's runs; ${groups.length} groups`;
  const ratios = groups.flatMap((g) =>
    widthRatios(g.embedding.eigenvalues)
      .slice(0, Math.min(k, 4) - 1)
      .map((r, i) => ({ ...base(layout, g.group), series: `|λ${i + 2}| / |λ${i + 1}|`, y: r }))
      // A ratio of 0 (after a zero eigenvalue, e.g. fewer checkpoints than axes) has no place on a log axis.
      .filter((r) => r.y > 0 && Number.isFinite(r.y)),
  );
  const explainedName = method === 'PCA' ? 'explained variance' : 'explained stress';
  const explained = groups.flatMap((g) =>
    cumulativeExplained(g.embedding)
      .slice(0, Math.min(k, 3))
      .map((v, i) => ({ ...base(layout, g.group), series: `top ${i + 1}`, y: v })),
  );
  return [
    {
      name: 'ribbon-widths',
      title: 'Ribbon widths: successive eigenvalue ratios',
      spec: chart(layout, ratios, { title: '|λₖ₊₁| / |λₖ|', log: true }, 'ratio', {
        text: 'Ribbon widths: successive eigenvalue ratios',
        subtitle,
      }),
    },
    {
      name: 'ribbon-explained',
      title: `${explainedName} of the top axes`,
      spec: chart(layout, explained, { title: explainedName, log: false }, 'axes', {
        text: `${explainedName[0]?.toUpperCase()}${explainedName.slice(1)} of the top axes`,
        subtitle,
      }),
    },
  ];
}
