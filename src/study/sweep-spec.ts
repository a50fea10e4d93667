/**
 * Sweeps: many independent runs — the cartesian product of field overrides of one base run spec —
 * trained into one directory and embedded together (all their checkpoints) with InPCA or PCA, as in
 * the "hyper-ribbon" of Mao et al. 2024. `twinscope run` takes a sweep spec when its JSON has a
 * `sweep` key.
 *
 * ```json
 * { "name": "hyper-ribbon-mnist",
 *   "sweep": {
 *     "base": "mnist-mlp.json",
 *     "grid": { "model.hidden": [[64], [128, 128]], "batchSize": [64, 256], "seed": [0, 1] } },
 *   "embed": { "method": "inpca", "components": 3, "examples": 2000 },
 *   "workers": 2 }
 * ```
 *
 * - `base`: a run spec, inline or as a path relative to the sweep file.
 * - `grid`: dotted field paths of the run spec (`optimizer`, `optimizer.lr`, `model.hidden`, `seed`)
 *   to lists of values; every combination is one run (the first field varies slowest). A value
 *   replaces the field as a whole. `grid` may also be a list of such grids: the runs are the union
 *   of their products in list order, numbered across the list (a run two grids both give is an
 *   error; an `embed.groupBy` field must be a field of every grid). `name` cannot be swept (runs are named `<index>-<description>`),
 *   nor, for InPCA, `data` or `dataSeed` unless the field is in `embed.groupBy` (InPCA compares the
 *   outputs of the runs it embeds together on one fixed set of examples).
 * - Every run gets `dataSeed` = the base's `dataSeed` (else its `seed`) unless the grid sweeps
 *   `dataSeed`, so all runs share the same data and split, and, unless the base or the grid sets
 *   `orderSeed`, `orderSeed` = its own `seed`: a seed changes the initialization and the minibatch
 *   order, never the data.
 * - `embed`: `method` (default inpca), `components` (default 3), `examples` (InPCA; default 2000),
 *   `sigma` (InPCA of mse models: the Gaussian outputs' standard deviation; default 1) and
 *   `groupBy`: grid fields whose values split the runs into groups embedded separately (e.g.
 *   `["data.decay"]`: one embedding per input spectrum), compared in DIR/groups.json and plots.
 * - `measure`: the geometry of each run's network at its last checkpoint (sharpness, sensitivity,
 *   loss surfaces; see sweep-measure-spec.ts), measured by jobs after each run's train job.
 *
 * See run-sweep.ts for the directory it writes; sweep-grid.ts for field paths, grid expansion and names.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { EmbedMethod } from '../results/embedding.js';
import type { SweepGroup } from '../results/groups.js';
import { SpecError } from '../spec/errors.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import { loadRunSpec, parseRunSpec } from '../spec/run-spec.js';
import { BaseRunSpecSchema, posInt, SpecNameSchema } from '../spec/schemas.js';
import { parseSpecObject, readSpecJson } from '../spec/spec-file.js';
import { canonical } from '../util/json.js';
import {
  expandGrid,
  fieldProblem,
  gridList,
  groupPoints,
  pointName,
  type SweepGrid,
  type SweepPoint,
  setPath,
} from './sweep-grid.js';
import {
  oneOrList,
  resolveSweepMeasure,
  SweepMeasureSchema,
  type SweepMeasureSpec,
} from './sweep-measure-spec.js';

const SweepSpecSchema = z.strictObject({
  name: SpecNameSchema,
  sweep: z.strictObject({
    /** A run spec: inline, or a path relative to the sweep file. */
    base: BaseRunSpecSchema,
    /** One grid, or a list of grids (the union of their products, in order). */
    grid: oneOrList(z.record(z.string(), z.array(z.unknown()).min(1))),
  }),
  measure: SweepMeasureSchema.optional(),
  embed: z
    .strictObject({
      method: z.enum(['inpca', 'pca']).optional(),
      components: posInt().max(64).optional(),
      examples: posInt().optional(),
      sigma: z.number().gt(0).optional(),
      groupBy: z.array(z.string()).min(1).optional(),
    })
    .optional(),
  workers: posInt().max(64).optional(),
});

/** How a sweep embeds its runs (defaults filled). */
export interface SweepEmbedSpec {
  readonly method: EmbedMethod;
  readonly components: number;
  readonly examples: number;
  /** InPCA of mse models: the Gaussian outputs' standard deviation s. */
  readonly sigma?: number;
  /** Grid fields whose values split the runs into separately embedded groups (empty: one embedding). */
  readonly groupBy: string[];
}

/** A validated sweep spec with its grid expanded. */
export interface ResolvedSweepSpec {
  readonly name: string;
  /** The base run spec, resolved. */
  readonly base: ResolvedRunSpec;
  /** The grid as written: one grid, or a list of grids. */
  readonly grid: SweepGrid;
  readonly points: SweepPoint[];
  /** What is measured on each run's network (the `measure` block); absent: nothing. */
  readonly measure?: SweepMeasureSpec;
  readonly embed: SweepEmbedSpec;
  /** The embedding groups (one group holding every run when `embed.groupBy` is empty). */
  readonly groups: SweepGroup[];
  readonly workers?: number;
}

/** Whether a parsed JSON spec is a sweep (has a `sweep` key) rather than a twin study. */
export function isSweepJson(json: unknown): boolean {
  return json !== null && typeof json === 'object' && !Array.isArray(json) && 'sweep' in json;
}

/** Read a base run spec file as written (arrow data paths made absolute), or report why not. */
function baseJson(base: string | Record<string, unknown>, dir: string, source?: string) {
  if (typeof base !== 'string') {
    try {
      return { json: structuredClone(base), resolved: parseRunSpec(base) };
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      throw new SpecError(
        e.problems.map((p) => `sweep.base.${p}`),
        source,
      );
    }
  }
  const path = resolve(dir, base);
  const resolved = loadRunSpec(path);
  const json = readSpecJson(path) as Record<string, unknown>;
  if (resolved.data.name === 'arrow') json.data = resolved.data;
  return { json, resolved };
}

/**
 * Validate a parsed sweep spec, expand its grid and validate every run. `dir` resolves a `base`
 * given as a path. Throws a {@link SpecError} listing every problem, one line each: a bad grid field
 * is named once; a run spec problem names its grid point (or says it hits every point).
 */
export function parseSweepSpec(json: unknown, source?: string, dir = '.'): ResolvedSweepSpec {
  const s = parseSpecObject(SweepSpecSchema, json, source);
  const embed: SweepEmbedSpec = {
    method: s.embed?.method ?? 'inpca',
    components: s.embed?.components ?? 3,
    examples: s.embed?.examples ?? 2000,
    ...(s.embed?.sigma !== undefined && { sigma: s.embed.sigma }),
    groupBy: s.embed?.groupBy ?? [],
  };
  const problems: string[] = [];
  const grids = gridList(s.sweep.grid);
  const listed = Array.isArray(s.sweep.grid);
  const gridField = (g: number) => `sweep.grid${listed ? `[${g}]` : ''}`;
  grids.forEach((grid, g) => {
    const fields = Object.keys(grid);
    if (fields.length === 0) problems.push(`${gridField(g)}: empty (give at least one field to sweep)`);
    for (const field of fields) {
      const why = fieldProblem(field, embed.method, embed.groupBy.includes(field));
      if (why) problems.push(`${gridField(g)}."${field}": ${why}`);
      const values = grid[field] as unknown[];
      if (new Set(values.map((v) => canonical(v))).size !== values.length) {
        problems.push(`${gridField(g)}."${field}": contains duplicates`);
      }
    }
  });
  embed.groupBy.forEach((field, i) => {
    grids.forEach((grid, g) => {
      const fields = Object.keys(grid);
      if (!fields.includes(field)) {
        const where = listed ? ` of sweep.grid[${g}]` : '';
        problems.push(
          `embed.groupBy[${i}]: '${field}' is not a grid field${where} (expected one of ${fields.join(', ')})`,
        );
      }
    });
    if (embed.groupBy.indexOf(field) !== i) problems.push(`embed.groupBy[${i}]: '${field}' is listed twice`);
  });
  const measured = s.measure && resolveSweepMeasure(s.measure);
  if (measured) problems.push(...measured.problems);
  if (problems.length > 0) throw new SpecError(problems, source);

  const base = baseJson(s.sweep.base, dir, source);
  const dataSeed = base.resolved.dataSeed;
  const combos = expandGrid(s.sweep.grid);
  const width = String(combos.length - 1).length;
  const pointProblems = new Map<string, string[]>();
  const points: SweepPoint[] = [];
  combos.forEach((overrides, index) => {
    const name = pointName(index, width, overrides);
    const spec = structuredClone(base.json);
    for (const [field, value] of Object.entries(overrides)) setPath(spec, field, value);
    spec.name = name;
    if (!('dataSeed' in overrides)) spec.dataSeed = dataSeed;
    if (base.json.orderSeed === undefined && !('orderSeed' in overrides)) spec.orderSeed = spec.seed;
    try {
      points.push({ index, name, overrides, spec: parseRunSpec(spec) });
    } catch (e) {
      if (!(e instanceof SpecError)) throw e;
      for (const p of e.problems) pointProblems.set(p, [...(pointProblems.get(p) ?? []), name]);
    }
  });
  for (const [problem, names] of pointProblems) {
    if (names.length === combos.length) problems.push(`sweep: every grid point: ${problem}`);
    else for (const n of names) problems.push(`sweep: grid point ${n}: ${problem}`);
  }
  if (problems.length > 0) throw new SpecError(problems, source);
  // A list of grids must not hold one run twice (two grids giving the same run spec).
  const seen = new Map<string, string>();
  for (const p of points) {
    const { name: _name, ...rest } = p.spec;
    const key = canonical(rest);
    const first = seen.get(key);
    if (first) problems.push(`sweep.grid: grid point ${p.name} is the same run as ${first}`);
    else seen.set(key, p.name);
  }
  if (problems.length > 0) throw new SpecError(problems, source);
  const groups = groupPoints(points, embed.groupBy);
  if (embed.method === 'inpca') {
    // InPCA reads every checkpoint of a group as the same kind of distribution.
    const lossOf = new Map(points.map((p) => [p.name, p.spec.loss]));
    for (const g of groups) {
      const losses = new Set(g.points.map((n) => lossOf.get(n)));
      if (losses.size > 1) {
        problems.push(
          `sweep: ${embed.groupBy.length > 0 ? `group ${g.name}` : 'the runs'} mix losses ` +
            `(${[...losses].join(', ')}); InPCA embeds runs of one loss together (add the field that ` +
            'changes the loss to embed.groupBy)',
        );
      }
    }
  }
  if (problems.length > 0) throw new SpecError(problems, source);
  const out: ResolvedSweepSpec = {
    name: s.name,
    base: base.resolved,
    grid: s.sweep.grid,
    points,
    embed,
    groups,
    ...(measured && { measure: measured.measure }),
  };
  return s.workers === undefined ? out : { ...out, workers: s.workers };
}

/** Read and validate a sweep spec file; a `base` path is relative to the file's folder. */
export function loadSweepSpec(path: string): ResolvedSweepSpec {
  return parseSweepSpec(readSpecJson(path), path, dirname(resolve(path)));
}
