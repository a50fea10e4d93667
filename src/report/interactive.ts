/**
 * Make a static Vega-Lite plot spec interactive for the HTML report: clicking a legend entry of the
 * colour field highlights that series (shift-click adds more; clicking the legend background or
 * double-clicking clears). Tooltips come from the specs themselves (every butterfly mark has one).
 */
import type { TopLevelSpec } from 'vega-lite';

/** Name of the legend-bound selection parameter added by {@link withLegendToggle}. */
export const LEGEND_PARAM = 'legend_series';

/** Opacity of the series that are not selected while a legend selection is active. */
const FADED_OPACITY = 0.08;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Unit specs (those with a `mark`) anywhere in a (layered / faceted) spec, in document order. */
function units(node: Json, out: Json[] = []): Json[] {
  if (node.mark !== undefined) out.push(node);
  if (Array.isArray(node.layer)) for (const l of node.layer) if (isObject(l)) units(l, out);
  if (isObject(node.spec)) units(node.spec, out);
  for (const key of ['hconcat', 'vconcat', 'concat'] as const) {
    const list = node[key];
    if (Array.isArray(list)) for (const l of list) if (isObject(l)) units(l, out);
  }
  return out;
}

function colorField(unit: Json): string | undefined {
  const enc = unit.encoding;
  if (!isObject(enc) || !isObject(enc.color)) return undefined;
  const field = enc.color.field;
  return typeof field === 'string' && enc.color.legend !== null ? field : undefined;
}

const markOf = (unit: Json): Json => (isObject(unit.mark) ? unit.mark : { type: unit.mark });

/**
 * A copy of `spec` with a legend-bound point selection on the first colour field found (its name is
 * {@link LEGEND_PARAM}) and, on every unit spec coloured by that field, an opacity condition: the
 * selected series keep their opacity, the rest fade to {@link FADED_OPACITY}. Lines fade through
 * `strokeOpacity`, so the (possibly invisible, hover-only) points a line mark overlays keep theirs.
 * Specs with no colour field, with their own `params`, or with a quantitative colour (a gradient
 * legend cannot be clicked) are returned unchanged.
 */
export function withLegendToggle(spec: TopLevelSpec): TopLevelSpec {
  const copy = structuredClone(spec) as unknown as Json;
  const all = units(copy);
  if (all.some((u) => u.params !== undefined) || copy.params !== undefined) return spec;
  const first = all.find((u) => colorField(u) !== undefined);
  const field = first && colorField(first);
  if (!first || !field) return spec;
  const colored = all.filter((u) => colorField(u) === field);
  if (
    colored.some((u) => {
      const c = (u.encoding as Json).color as Json;
      return c.type === 'quantitative' || c.type === 'temporal';
    })
  ) {
    return spec;
  }
  first.params = [{ name: LEGEND_PARAM, select: { type: 'point', fields: [field] }, bind: 'legend' }];
  for (const u of colored) {
    const mark = markOf(u);
    const channel = mark.type === 'line' || mark.type === 'rule' ? 'strokeOpacity' : 'opacity';
    const enc = u.encoding as Json;
    if (enc[channel] !== undefined) continue;
    const base =
      typeof mark[channel] === 'number'
        ? (mark[channel] as number)
        : typeof mark.opacity === 'number'
          ? (mark.opacity as number)
          : 1;
    enc[channel] = {
      condition: { param: LEGEND_PARAM, value: base },
      value: Math.min(base, FADED_OPACITY),
    };
  }
  return copy as unknown as TopLevelSpec;
}
