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
 *   replaces the field as a whole. `name` cannot be swept (runs are named `<index>-<description>`),
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
 *
 * Layout of the sweep directory:
 *
 * ```
 * DIR/sweep.json       the resolved sweep: every run's name, overrides and resolved spec
 * DIR/runs/<name>/     every run (resumable; a complete run is not trained again)
 * DIR/embedding.arrow  DIR/embedding.json   all checkpoints embedded (see embedding-files.ts)
 * DIR/key.json         what the embedding was made from: unchanged inputs are read back (embedKeyed)
 * DIR/plots/           embedding plots (SVG, PNG, Vega-Lite JSON)
 * DIR/status.json      complete (every run trained and embedded), failed runs (as a study's)
 * ```
 *
 * With `embed.groupBy`, instead of the single embedding:
 *
 * ```
 * DIR/groups/<group>/embedding.{arrow,json}, key.json, plots/   each group's embedding (g<i>-<values>)
 * DIR/groups.json  DIR/groups.arrow   per group: values, runs, eigenvalues, explained stress, width ratios
 * DIR/plots/ribbon-widths.*  ribbon-explained.*      width ratios and explained stress across groups
 * ```
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { loadDataset } from '../data/load.js';
import { widthRatios } from '../measure/inpca.js';
import { writeEmbedPlots } from '../report/embed-plots.js';
import { writeGroupPlots } from '../report/ribbon-plots.js';
import { SpecError } from '../spec/errors.js';
import {
  BaseRunSpecSchema,
  loadRunSpec,
  parseRunSpec,
  parseSpecObject,
  planRun,
  type ResolvedRunSpec,
  RunSpecSchema,
  readSpecJson,
  SpecNameSchema,
} from '../spec/run-spec.js';
import { canonical, readRunJson, writeJsonAtomic } from '../train/run.js';
import { toolkitVersion } from '../version.js';
import { cumulativeExplained, EmbedInputError, type EmbedMethod, type RunEmbedding } from './embed-runs.js';
import { embedKeyed } from './embed-study.js';
import { type PoolJob, type PoolResult, runPool } from './pool.js';
import { runComplete, type StudyEvents } from './run-study.js';
import { describeGridValue, writeGroupSummary } from './sweep-groups.js';

const posInt = () => z.number().int().positive();

/** A dotted field path: identifiers (or array indices) separated by dots. */
const FIELD_RE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$/;

export const SweepSpecSchema = z.strictObject({
  name: SpecNameSchema,
  sweep: z.strictObject({
    /** A run spec: inline, or a path relative to the sweep file. */
    base: BaseRunSpecSchema,
    grid: z.record(z.string(), z.array(z.unknown()).min(1)),
  }),
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

/** One run of a sweep. */
export interface SweepPoint {
  /** Position in the grid (0-based, first grid field slowest). */
  readonly index: number;
  /** Folder-safe run name: `<index>-<description of the overrides>`. */
  readonly name: string;
  /** The grid values of this run, by field path. */
  readonly overrides: Record<string, unknown>;
  readonly spec: ResolvedRunSpec;
}

/** One embedding group of a sweep: the runs that share the values of the `embed.groupBy` fields. */
export interface SweepGroup {
  /** Folder-safe group name: `g<index>-<description of its values>`. */
  readonly name: string;
  /** Its value of every groupBy field, by field path. */
  readonly values: Record<string, unknown>;
  /** Names of its runs, in grid order. */
  readonly points: string[];
}

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
  readonly grid: Record<string, unknown[]>;
  readonly points: SweepPoint[];
  readonly embed: SweepEmbedSpec;
  /** The embedding groups (one group holding every run when `embed.groupBy` is empty). */
  readonly groups: SweepGroup[];
  readonly workers?: number;
}

/** Whether a parsed JSON spec is a sweep (has a `sweep` key) rather than a twin study. */
export function isSweepJson(json: unknown): boolean {
  return json !== null && typeof json === 'object' && !Array.isArray(json) && 'sweep' in json;
}

// ---------------------------------------------------------------------------------------------
// Field paths

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
function fieldProblem(path: string, method: EmbedMethod, grouped: boolean): string | undefined {
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
function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
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

// ---------------------------------------------------------------------------------------------
// Names

/** `<prefix><index>-<description>`, folder-safe and at most 100 characters. */
function pointName(index: number, width: number, overrides: Record<string, unknown>, prefix = ''): string {
  const description = Object.entries(overrides)
    .map(([field, value]) => describeGridValue(field, value))
    .join('-')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._-]+/, '');
  const name = `${prefix}${String(index).padStart(width, '0')}${description ? `-${description}` : ''}`;
  return name.slice(0, 100);
}

/** Split the points into groups by their values of `groupBy` (first-seen order). */
function groupPoints(points: readonly SweepPoint[], groupBy: readonly string[]): SweepGroup[] {
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

// ---------------------------------------------------------------------------------------------
// Parsing

/** The cartesian product of the grid, first field slowest. */
export function expandGrid(grid: Record<string, readonly unknown[]>): Record<string, unknown>[] {
  let out: Record<string, unknown>[] = [{}];
  for (const [field, values] of Object.entries(grid)) {
    out = out.flatMap((o) => values.map((v) => ({ ...o, [field]: v })));
  }
  return out;
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
  const fields = Object.keys(s.sweep.grid);
  if (fields.length === 0) problems.push('sweep.grid: empty (give at least one field to sweep)');
  embed.groupBy.forEach((field, i) => {
    if (!fields.includes(field)) {
      problems.push(
        `embed.groupBy[${i}]: '${field}' is not a grid field (expected one of ${fields.join(', ')})`,
      );
    }
    if (embed.groupBy.indexOf(field) !== i) problems.push(`embed.groupBy[${i}]: '${field}' is listed twice`);
  });
  for (const field of fields) {
    const why = fieldProblem(field, embed.method, embed.groupBy.includes(field));
    if (why) problems.push(`sweep.grid."${field}": ${why}`);
    const values = s.sweep.grid[field] as unknown[];
    if (new Set(values.map((v) => canonical(v))).size !== values.length) {
      problems.push(`sweep.grid."${field}": contains duplicates`);
    }
  }
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
  };
  return s.workers === undefined ? out : { ...out, workers: s.workers };
}

/** Read and validate a sweep spec file; a `base` path is relative to the file's folder. */
export function loadSweepSpec(path: string): ResolvedSweepSpec {
  return parseSweepSpec(readSpecJson(path), path, dirname(resolve(path)));
}

// ---------------------------------------------------------------------------------------------
// Running

/** What a sweep reports while it runs: the same events as a study (onLog: the embedding's progress). */
export type SweepEvents = StudyEvents;

export interface SweepOptions {
  /** Worker processes (default: the spec's, else the number of cores). */
  readonly workers?: number;
}

/** The outcome of a sweep. */
export interface SweepResult {
  readonly dir: string;
  readonly runDirs: string[];
  /** Runs trained by this call (0 when every run was already complete). */
  readonly trained: number;
  /**
   * Failed training jobs (`train:<run>`; nothing is embedded then) and groups that could not be
   * embedded (`embed:<group>`, e.g. a diverged run).
   */
  readonly failed: PoolResult['failed'];
  /** The embedding of all runs (no `embed.groupBy`); absent when a run failed (nothing is embedded then). */
  readonly embedding?: RunEmbedding;
  /** One embedding per group that could be embedded (with `embed.groupBy`); empty when a run failed. */
  readonly groups: { readonly group: SweepGroup; readonly embedding: RunEmbedding }[];
  /** Plot files written (SVG paths). */
  readonly plots: string[];
}

/**
 * Train every run of `sweep` into DIR/runs/ (skipping complete runs, resuming interrupted ones),
 * then embed all their checkpoints and write DIR/embedding.{arrow,json} and DIR/plots/ (or, with
 * `embed.groupBy`, each group's embedding and the group summaries), and DIR/status.json. When a run
 * fails, the others still train and nothing is embedded; a group that cannot be embedded is skipped
 * and reported (see {@link SweepResult.failed}).
 */
export async function runSweep(
  sweep: ResolvedSweepSpec,
  dir: string,
  events: SweepEvents = {},
  options: SweepOptions = {},
): Promise<SweepResult> {
  mkdirSync(dir, { recursive: true });
  const workers = options.workers ?? sweep.workers ?? Math.max(1, cpus().length);
  const runDir = (p: SweepPoint) => join(dir, 'runs', p.name);
  writeJsonAtomic(join(dir, 'sweep.json'), {
    format: 1,
    toolkit: toolkitVersion(),
    name: sweep.name,
    base: sweep.base,
    grid: sweep.grid,
    embed: sweep.embed,
    runs: sweep.points.map((p) => ({ name: p.name, overrides: p.overrides, spec: p.spec })),
  });

  const todo = sweep.points.filter((p) => !runComplete(runDir(p), p));
  let runSteps = 0;
  const nTrain = new Map<string, number>();
  for (const p of todo) {
    const key = canonical({ data: p.spec.data, seed: p.spec.dataSeed });
    if (!nTrain.has(key)) nTrain.set(key, loadDataset(p.spec.data, p.spec.dataSeed).train.n);
    runSteps += planRun(p.spec, nTrain.get(key) as number).totalSteps;
  }
  const jobs: PoolJob[] = sweep.points.map((p) => ({
    id: `train:${p.name}`,
    deps: [],
    job: { kind: 'train', dir: runDir(p), spec: p.spec },
    done: () => runComplete(runDir(p), p),
  }));
  events.onRound?.({ label: sweep.name, jobs: todo.length, runSteps, workers });
  let trained = 0;
  const pool = await runPool(jobs, {
    workers: Math.min(workers, Math.max(1, todo.length)),
    ...(events.onSteps && { onSteps: events.onSteps }),
    onFinished: (job, outcome, message) => {
      if (outcome === 'done') trained++;
      if (outcome !== 'skipped') events.onJob?.(job.id, outcome, message);
    },
  });
  const runDirs = sweep.points.map(runDir);
  // What went wrong, for reports (the same shape as a study's status.json).
  const failed: PoolResult['failed'] = [...pool.failed];
  const writeStatus = (complete: boolean) =>
    writeJsonAtomic(join(dir, 'status.json'), { complete, failed, blocked: [], controlFailures: [] });
  writeStatus(false);
  if (failed.length > 0) return { dir, runDirs, trained, failed, groups: [], plots: [] };

  const dirOf = new Map(sweep.points.map((p) => [p.name, runDir(p)]));
  const embedOptions = {
    method: sweep.embed.method,
    components: sweep.embed.components,
    examples: sweep.embed.examples,
    ...(sweep.embed.sigma !== undefined && { sigma: sweep.embed.sigma }),
  };
  // Keyed by the runs and options: a re-run of an unchanged sweep reads its embeddings back.
  const embed = (names: readonly string[], outDir: string, clear: () => void) =>
    embedKeyed(
      outDir,
      names.map((name) => {
        const runDir = dirOf.get(name) as string;
        return { name, dir: runDir, json: readRunJson(runDir) };
      }),
      embedOptions,
      [],
      { clear, relativeTo: dir, ...(events.onLog && { log: events.onLog }) },
    );
  removeStaleEmbeddings(dir, sweep);
  if (sweep.embed.groupBy.length === 0) {
    const { embedding } = await embed(
      sweep.points.map((p) => p.name),
      dir,
      () =>
        removeOutputs(
          dir,
          ['key.json', 'embedding.arrow', 'embedding.json'],
          ['embedding', 'embedding-pairs'],
        ),
    );
    const plots = (await writeEmbedPlots(dir, embedding)).map((p) => p.svg);
    writeStatus(true);
    return { dir, runDirs, trained, failed, embedding, groups: [], plots };
  }
  const groups: SweepResult['groups'] = [];
  const plots: string[] = [];
  for (const group of sweep.groups) {
    events.onLog?.(`group ${group.name}: ${group.points.length} runs`);
    const groupDir = join(dir, 'groups', group.name);
    const clear = () => rmSync(groupDir, { recursive: true, force: true });
    // A group that cannot be embedded (e.g. a diverged run) is reported; the others still are.
    let embedding: RunEmbedding;
    try {
      ({ embedding } = await embed(group.points, groupDir, clear));
    } catch (e) {
      if (!(e instanceof EmbedInputError)) throw e;
      failed.push({ id: `embed:${group.name}`, message: e.message });
      events.onLog?.(`group ${group.name}: not embedded: ${e.message}`);
      clear();
      continue;
    }
    plots.push(...(await writeEmbedPlots(groupDir, embedding)).map((p) => p.svg));
    groups.push({ group, embedding });
  }
  writeGroupSummary(dir, sweep, groups);
  plots.push(...(await writeGroupPlots(dir, sweep.embed.groupBy, groups)).map((p) => p.svg));
  writeStatus(failed.length === 0);
  return { dir, runDirs, trained, failed, groups, plots };
}

/** Remove `files` (and folders) of `dir` and the figures `plotStems` under DIR/plots/ (every format). */
function removeOutputs(dir: string, files: readonly string[], plotStems: readonly string[]): void {
  for (const f of files) rmSync(join(dir, f), { recursive: true, force: true });
  const plotsDir = join(dir, 'plots');
  if (!existsSync(plotsDir)) return;
  for (const f of readdirSync(plotsDir)) {
    if (plotStems.includes(f.slice(0, f.indexOf('.')))) rmSync(join(plotsDir, f), { force: true });
  }
}

/**
 * Remove embedding outputs this sweep will not rewrite: the single embedding when it is grouped, the
 * groups when it is not, and directories of groups it no longer has (after a grid change).
 */
function removeStaleEmbeddings(dir: string, sweep: ResolvedSweepSpec): void {
  if (sweep.embed.groupBy.length === 0) {
    removeOutputs(dir, ['groups', 'groups.json', 'groups.arrow'], ['ribbon-widths', 'ribbon-explained']);
    return;
  }
  removeOutputs(dir, ['key.json', 'embedding.arrow', 'embedding.json'], ['embedding', 'embedding-pairs']);
  const keep = new Set(sweep.groups.map((g) => g.name));
  const groupsDir = join(dir, 'groups');
  if (!existsSync(groupsDir)) return;
  for (const g of readdirSync(groupsDir)) {
    if (!keep.has(g)) rmSync(join(groupsDir, g), { recursive: true, force: true });
  }
}

/** One line per kept axis: eigenvalue and the explained stress (InPCA) or variance (PCA) so far. */
export function describeEmbedding(e: RunEmbedding): string[] {
  const explained = cumulativeExplained(e);
  return e.eigenvalues.map((lambda, k) => {
    const share = `${(100 * (explained[k] ?? 0)).toFixed(1)}%`;
    const value = `λ${k + 1} = ${lambda.toPrecision(4)}`;
    if (e.explainedStress) {
      const sign = lambda < 0 ? 'time-like' : 'space-like';
      return `top ${k + 1} axes: explained stress ${share}  (${value}, ${sign})`;
    }
    return `top ${k + 1} axes: explained variance ${share}  (${value})`;
  });
}

/** One line per group: its values, the explained stress (or variance) of its top axes and its width ratios. */
export function describeGroups(groups: SweepResult['groups']): string[] {
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  return groups.map(({ group, embedding }) => {
    const values = Object.entries(group.values)
      .map(([f, v]) => `${f}=${JSON.stringify(v)}`)
      .join(' ');
    const what = embedding.explainedStress ? 'stress' : 'variance';
    const explained = cumulativeExplained(embedding).map(pct).join('/');
    const ratios = widthRatios(embedding.eigenvalues).map((r) => r.toPrecision(3));
    const widths = ratios.length > 0 ? `; |λk+1|/|λk| ${ratios.join(', ')}` : '';
    return `${group.name} (${values}): ${what} ${explained}${widths}`;
  });
}
