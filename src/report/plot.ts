/**
 * Server-side plot rendering: Vega-Lite spec → Vega spec → SVG → PNG.
 *
 * Why vega + resvg: `vega` renders a scenegraph to SVG text with `renderer: 'none'` and needs no DOM
 * and no native canvas (node-canvas would need Cairo and a compiler at install time). Text widths
 * are then estimated rather than measured, which is close enough for axis and legend layout. The
 * SVG is rasterised with `@resvg/resvg-js`, a Rust SVG renderer whose prebuilt binaries come from
 * npm as platform-specific optional dependencies, so nothing is compiled or downloaded by an
 * install script.
 *
 * Fonts: resvg draws text only with fonts it can load. We load the system fonts and ask for
 * {@link FONT_FAMILY} (DejaVu Sans first, which most Linux images ship; Arial/Helvetica elsewhere).
 * On a machine with no fonts at all the PNG still renders every mark, axis line and legend symbol
 * but no text; the SVG is unaffected (a browser uses its own fonts).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { parse, type Spec, View } from 'vega';
import { type Config, compile, type TopLevelSpec } from 'vega-lite';
import { writeFileAtomic } from '../util/atomic-file.js';

/** Okabe–Ito colour-blind-safe categorical palette (black moved last: it reads as "axis"). */
const OKABE_ITO = [
  '#E69F00',
  '#56B4E9',
  '#009E73',
  '#F0E442',
  '#0072B2',
  '#D55E00',
  '#CC79A7',
  '#000000',
] as const;

/** Font family written into the SVG; the first entry is what the PNG renderer looks for. */
const FONT_FAMILY = 'DejaVu Sans, Arial, Helvetica, sans-serif';

/** Scale factor of the PNG relative to the SVG's pixel size (2 = print quality). */
export const PNG_SCALE = 2;

/**
 * A nominal colour encoding of `field` for a plot with `count` distinct values: the house palette
 * (Okabe–Ito, 8 colours) while it suffices, tableau20 beyond, so that no two series share a colour
 * up to 20; legend labels up to 420 px (run names are long), symbols opaque (bands are faint).
 */
export function seriesColor(field: string, title: string, count: number) {
  return {
    field,
    type: 'nominal',
    title,
    sort: null,
    legend: { labelLimit: 420, symbolOpacity: 1 },
    ...(count > OKABE_ITO.length && { scale: { scheme: 'tableau20' } }),
  } as const;
}

/**
 * The house Vega-Lite config: Okabe–Ito categorical colours, viridis (also colour-blind safe) for
 * ordered colours such as σ, readable font sizes, white background and the same default panel size
 * everywhere. {@link renderPlot} applies it under any config the spec carries (the spec wins).
 */
export const THEME: Config = {
  background: 'white',
  padding: 8,
  font: FONT_FAMILY,
  view: { continuousWidth: 320, continuousHeight: 220, stroke: '#bbb' },
  range: {
    category: [...OKABE_ITO],
    ordinal: { scheme: 'viridis', extent: [0, 0.9] },
    ramp: { scheme: 'viridis', extent: [0, 0.9] },
  },
  title: { fontSize: 15, subtitleFontSize: 12, subtitleColor: '#444', anchor: 'start', offset: 8 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#e6e6e6' },
  header: { labelFontSize: 12, titleFontSize: 12, titleFontWeight: 'normal' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  line: { strokeWidth: 1.6 },
  point: { size: 30 },
};

/** The rendered plot: SVG text and PNG bytes ({@link PNG_SCALE}× the SVG's size). */
export interface RenderedPlot {
  readonly svg: string;
  readonly png: Uint8Array;
}

/**
 * Compile a Vega-Lite spec with {@link THEME} merged under its own config, render it to SVG with
 * vega (no canvas, no DOM) and rasterise the SVG to PNG with resvg at {@link PNG_SCALE}×.
 */
export async function renderPlot(spec: TopLevelSpec): Promise<RenderedPlot> {
  const vg = compile(themed(spec)).spec;
  const view = new View(parse(vg as Spec), { renderer: 'none' });
  let svg: string;
  try {
    svg = await view.toSVG();
  } finally {
    view.finalize();
  }
  return { svg, png: rasterize(svg) };
}

/** Paths of the three files written by {@link writePlot}. */
export interface WrittenPlot {
  readonly svg: string;
  readonly png: string;
  readonly spec: string;
}

/**
 * Render `spec` and write `<name>.svg`, `<name>.png` and `<name>.vl.json` into `dir`, each atomically.
 * The JSON is the spec with THEME merged into its config, so it renders the same elsewhere (e.g.
 * vega-embed in an HTML report). Its data must be inline (`data.values`): a spec that loads data
 * from a URL is rejected, since the saved file would not be self-contained. `name` is a plain file
 * stem (letters, digits, `.`, `_`, `-`; no path separators). When the three files exist and the
 * JSON on disk is exactly this spec's, nothing is rendered or written (re-runs and re-reports of
 * unchanged results are cheap); the JSON is written after the SVG and PNG, so a half-written figure
 * is rendered again.
 */
export async function writePlot(dir: string, name: string, spec: TopLevelSpec): Promise<WrittenPlot> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) {
    throw new Error(
      `invalid plot name ${JSON.stringify(name)}: use letters, digits, '.', '_' and '-' only ` +
        '(no path separators, not starting with a dot)',
    );
  }
  const url = findDataUrl(spec);
  if (url !== undefined) {
    throw new Error(`plot ${name}: data must be inline (data.values), found data.url ${JSON.stringify(url)}`);
  }
  const full = themed(spec);
  const text = `${JSON.stringify(full, null, 2)}\n`;
  const out: WrittenPlot = {
    svg: path.join(dir, `${name}.svg`),
    png: path.join(dir, `${name}.png`),
    spec: path.join(dir, `${name}.vl.json`),
  };
  // The same spec was rendered before (its JSON is written last): keep the files, skip the render.
  if (existsSync(out.svg) && existsSync(out.png) && existsSync(out.spec)) {
    if (readFileSync(out.spec, 'utf8') === text) return out;
  }
  const { svg, png } = await renderPlot(full);
  const utf8 = new TextEncoder();
  writeFileAtomic(out.svg, [utf8.encode(svg)]);
  writeFileAtomic(out.png, [png]);
  writeFileAtomic(out.spec, [utf8.encode(text)]);
  return out;
}

/** The spec with `$schema` set and THEME deep-merged under its config. */
function themed(spec: TopLevelSpec): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...spec,
    config: mergeDeep(THEME as Json, (spec.config ?? {}) as Json) as Config,
  } as TopLevelSpec;
}

function rasterize(svg: string): Uint8Array {
  const resvg = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: PNG_SCALE },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  const png = resvg.render().asPng();
  return new Uint8Array(png.buffer, png.byteOffset, png.byteLength);
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Plain-object deep merge; `over` wins, arrays are replaced, not concatenated. */
function mergeDeep(under: Json, over: Json): Json {
  const out: Json = { ...under };
  for (const [k, v] of Object.entries(over)) {
    const u = out[k];
    out[k] = isObject(u) && isObject(v) ? mergeDeep(u, v) : v;
  }
  return out;
}

/** The first `data.url` anywhere in the spec (nested layers, facets, lookups), if any. */
function findDataUrl(node: unknown): string | undefined {
  if (Array.isArray(node)) {
    for (const n of node) {
      const u = findDataUrl(n);
      if (u !== undefined) return u;
    }
    return undefined;
  }
  if (!isObject(node)) return undefined;
  const data = node.data;
  if (isObject(data) && typeof data.url === 'string') return data.url;
  for (const [k, v] of Object.entries(node)) {
    if (k === 'values' || k === 'config') continue;
    const u = findDataUrl(v);
    if (u !== undefined) return u;
  }
  return undefined;
}

/** Write each named plot into `dir` with {@link writePlot} (creating `dir`); returns what was written. */
export async function writePlots(
  dir: string,
  plots: readonly { readonly name: string; readonly spec: TopLevelSpec }[],
): Promise<WrittenPlot[]> {
  mkdirSync(dir, { recursive: true });
  const written: WrittenPlot[] = [];
  for (const p of plots) written.push(await writePlot(dir, p.name, p.spec));
  return written;
}
