/**
 * The grid of a sweep: which run spec fields a sweep may set (dotted paths checked against the run
 * spec schema), setting them, the cartesian product of the grid (or the union of the products of a
 * list of grids), and folder-safe names of grid points and embedding groups.
 */
import { z } from 'zod';
import type { EmbedMethod } from '../results/embedding.js';
import { gridValueLabel, type SweepGroup } from '../results/groups.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import { RunSpecSchema } from '../spec/schemas.js';
import { canonical } from '../util/json.js';

/** One run of a sweep. */
export interface SweepPoint {
  /** Position in the grid (0-based, first grid field slowest; over a list of grids, in list order). */
  readonly index: number;
  /** Folder-safe run name: `<index>-<description of the overrides>`. */
  readonly name: string;
  /** The grid values of this run, by field path. */
  readonly overrides: Record<string, unknown>;
  readonly spec: ResolvedRunSpec;
}

/** A dotted field path: identifiers (or array indices) separated by dots. */
const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;

/** The object fields a zod schema accepts (through optionals, unions and discriminated unions). */
function fieldsOf(schema: z.ZodType): Map<string, z.ZodType> | undefined {
  if (schema instanceof z.ZodOptional) return fieldsOf(schema.unwrap() as z.ZodType);
  if (schema instanceof z.ZodObject)
    return new Map(Object.entries(schema.shape as Record<string, z.ZodType>));
  if (schema instanceof z.ZodUnion) {
    const out = new Map<string, z.ZodType>();
    for (const option of schema.options as z.ZodType[]) {
      for (const [k, v] of fieldsOf(option) ?? []) if (!out.has(k)) out.set(k, v);
    }
    return out.size > 0 ? out : undefined;
  }
  return undefined;
}

/**
 * Why `path` is not a run spec field that a sweep may set, or undefined when it is. `grouped`: the
 * field is one of `embed.groupBy` (each group is embedded on its own, so InPCA may sweep data fields).
 */
export function fieldProblem(path: string, method: EmbedMethod, grouped: boolean): string | undefined {
  if (!FIELD_RE.test(path)) return 'not a dotted field path (e.g. "optimizer.lr")';
  const segments = path.split('.');
  const top = segments[0] as string;
  if (top === 'name') return 'cannot be swept (each run is named after its grid point)';
  if (method === 'inpca' && !grouped && (top === 'data' || top === 'dataSeed')) {
    return (
      'cannot be swept with InPCA unless listed in embed.groupBy (InPCA compares the outputs of ' +
      'the runs it embeds together on one fixed set of examples)'
    );
  }
  let schema: z.ZodType = RunSpecSchema;
  for (const [i, segment] of segments.entries()) {
    let inner: z.ZodType = schema;
    while (inner instanceof z.ZodOptional) inner = inner.unwrap() as z.ZodType;
    if (inner instanceof z.ZodArray && /^\d+$/.test(segment)) {
      schema = inner.element as z.ZodType;
      continue;
    }
    const fields = fieldsOf(inner);
    const where = segments.slice(0, i).join('.');
    if (!fields) return `'${where}' has no field '${segment}'`;
    const next = fields.get(segment);
    if (!next) {
      const known = [...fields.keys()].filter((k) => i > 0 || k !== 'name').join(', ');
      return `unknown run spec field '${segment}'${where ? ` in '${where}'` : ''} (expected one of ${known})`;
    }
    schema = next;
  }
  return undefined;
}

/** Set `path` (dotted) in a JSON object, creating intermediate objects; the value replaces the field. */
export function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const segments = path.split('.');
  let node: Record<string, unknown> | unknown[] = target;
  for (const segment of segments.slice(0, -1)) {
    const key = Array.isArray(node) ? Number(segment) : segment;
    const child = (node as Record<string | number, unknown>)[key];
    if (child === null || typeof child !== 'object') {
      (node as Record<string | number, unknown>)[key] = {};
    }
    node = (node as Record<string | number, unknown>)[key] as Record<string, unknown>;
  }
  const last = segments[segments.length - 1] as string;
  (node as Record<string | number, unknown>)[Array.isArray(node) ? Number(last) : last] =
    structuredClone(value);
}

/** `<prefix><index>-<description>`, folder-safe and at most 100 characters. */
export function pointName(
  index: number,
  width: number,
  overrides: Record<string, unknown>,
  prefix = '',
): string {
  const description = Object.entries(overrides)
    .map(([field, value]) => gridValueLabel(field, value))
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._-]+/, '');
  const name = `${prefix}${String(index).padStart(width, '0')}${description ? `-${description}` : ''}`;
  return name.slice(0, 100);
}

/** Split the points into groups by their values of `groupBy` (first-seen order). */
export function groupPoints(points: readonly SweepPoint[], groupBy: readonly string[]): SweepGroup[] {
  const byKey = new Map<string, { values: Record<string, unknown>; points: string[] }>();
  for (const p of points) {
    const values = Object.fromEntries(groupBy.map((f) => [f, p.overrides[f]]));
    const key = canonical(values);
    const group = byKey.get(key) ?? { values, points: [] };
    group.points.push(p.name);
    byKey.set(key, group);
  }
  const width = String(byKey.size - 1).length;
  return [...byKey.values()].map((g, i) => ({ name: pointName(i, width, g.values, 'g'), ...g }));
}

/** One grid: dotted run spec fields to the values they take. */
export type Grid = Readonly<Record<string, readonly unknown[]>>;

/**
 * A sweep's `grid`: one grid, or a list of grids whose products are concatenated in order (e.g.
 * gradient descent at several learning rates, then SGD at several batch sizes).
 */
export type SweepGrid = Grid | readonly Grid[];

/** The grids of a sweep's `grid` (one grid: a list of one). */
export function gridList(grid: SweepGrid): readonly Grid[] {
  return Array.isArray(grid) ? (grid as readonly Grid[]) : [grid as Grid];
}

/**
 * The points of the grid: the cartesian product of each grid's values (first field slowest), and
 * for a list of grids the union of their products, in list order (duplicates are kept; the sweep
 * spec rejects a run that two grids both hold).
 */
export function expandGrid(grid: SweepGrid): Record<string, unknown>[] {
  return gridList(grid).flatMap((g) => {
    let out: Record<string, unknown>[] = [{}];
    for (const [field, values] of Object.entries(g)) {
      out = out.flatMap((o) => values.map((v) => ({ ...o, [field]: v })));
    }
    return out;
  });
}
