/**
 * Per-group summaries of a grouped sweep (`embed.groupBy`): how the embedding of each group of runs
 * looks in numbers — signed eigenvalues, explained stress (InPCA) or variance (PCA) of the first k
 * axes, and the ribbon's width ratios |λ_{k+1}| / |λ_k| ({@link widthRatios}) — written as
 * DIR/groups.json and, in long form (one row per group and axis), DIR/groups.arrow.
 */
import { join } from 'node:path';
import {
  type DataType,
  Float64,
  Int32,
  Table,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import { widthRatios } from '../measure/inpca.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import type { FileDigest } from '../util/file-digest.js';
import { writeSealedJson } from '../util/sealed-json.js';
import { cumulativeExplained, type EmbedMethod, type RunEmbedding } from './embedding.js';

/** One embedding group of a sweep: the runs that share the values of the `embed.groupBy` fields. */
export interface SweepGroup {
  /** Folder-safe group name: `g<index>-<description of its values>`. */
  readonly name: string;
  /** Its value of every groupBy field, by field path. */
  readonly values: Record<string, unknown>;
  /** Names of its runs, in grid order. */
  readonly points: string[];
}

/** How the groups were embedded: the method and the grid fields that split the runs. */
export interface GroupedEmbedding {
  readonly method: EmbedMethod;
  readonly groupBy: readonly string[];
}

/** One embedded group. */
export interface EmbeddedGroup {
  readonly group: SweepGroup;
  readonly embedding: RunEmbedding;
}

/** A short, folder-safe rendering of one grid value (`decay0.5`, `hidden64x64`, `normal-0.01`). */
export function gridValueLabel(field: string, value: unknown): string {
  const key = field.split('.').pop() as string;
  if (Array.isArray(value)) return `${key}${value.map((v) => gridValueLabel('', v)).join('x')}`;
  if (value !== null && typeof value === 'object') {
    return Object.values(value as Record<string, unknown>)
      .filter((v) => v === null || typeof v !== 'object')
      .map(String)
      .join('-');
  }
  return `${key}${String(value)}`;
}

/** A groupBy value as a table cell: numbers stay numbers, anything else becomes its JSON text. */
function cell(value: unknown): number | string {
  return typeof value === 'number' ? value : JSON.stringify(value);
}

/**
 * Version of groups.json. 2: sealed (util/sealed-json.ts), with the digest of groups.arrow in
 * `files`; 1 had neither.
 */
export const GROUPS_FORMAT = 2;

/** DIR/groups.json: per group its values, runs and embedding spectrum; `arrow` is groups.arrow's digest. */
export function groupSummary(embed: GroupedEmbedding, groups: readonly EmbeddedGroup[], arrow: FileDigest) {
  return {
    format: GROUPS_FORMAT,
    files: { 'groups.arrow': arrow },
    method: embed.method,
    groupBy: embed.groupBy,
    groups: groups.map(({ group, embedding: e }) => ({
      name: group.name,
      values: group.values,
      runs: group.points,
      points: e.points.length,
      eigenvalues: e.eigenvalues,
      explained: cumulativeExplained(e),
      widthRatios: widthRatios(e.eigenvalues),
      options: e.options,
    })),
  };
}

/**
 * The long-form table of DIR/groups.arrow: columns group (utf8), one column per groupBy field
 * (float64 when every value is a number, else utf8 JSON), axis (int32, 0-based), eigenvalue,
 * explained (of axes 0..axis) and widthRatio (|λ_{axis+1}| / |λ_axis|; null on the last axis).
 */
export function groupTable(groupBy: readonly string[], groups: readonly EmbeddedGroup[]): Table {
  const rows = groups.flatMap(({ group, embedding: e }) => {
    const explained = cumulativeExplained(e);
    const ratios = widthRatios(e.eigenvalues);
    return e.eigenvalues.map((lambda, axis) => ({
      group,
      axis,
      lambda,
      explained: explained[axis] ?? null,
      ratio: ratios[axis] ?? null,
    }));
  });
  const columns: Record<string, Vector<DataType>> = {
    group: vectorFromArray(
      rows.map((r) => r.group.name),
      new Utf8(),
    ),
  };
  for (const field of groupBy) {
    const values = rows.map((r) => cell(r.group.values[field]));
    const numeric = values.every((v) => typeof v === 'number');
    columns[field] = vectorFromArray(values, numeric ? new Float64() : new Utf8()) as Vector<DataType>;
  }
  columns.axis = vectorFromArray(
    rows.map((r) => r.axis),
    new Int32(),
  );
  const numbers: [string, (r: (typeof rows)[number]) => number | null][] = [
    ['eigenvalue', (r) => r.lambda],
    ['explained', (r) => r.explained],
    ['widthRatio', (r) => r.ratio],
  ];
  for (const [name, get] of numbers) columns[name] = vectorFromArray(rows.map(get), new Float64());
  return new Table(columns);
}

/**
 * Write DIR/groups.arrow ({@link groupTable}) and then DIR/groups.json ({@link groupSummary},
 * sealed, recording groups.arrow's digest), atomically.
 */
export function writeGroupSummary(
  dir: string,
  embed: GroupedEmbedding,
  groups: readonly EmbeddedGroup[],
): { json: string; arrow: string } {
  const out = { json: join(dir, 'groups.json'), arrow: join(dir, 'groups.arrow') };
  const arrow = writeFileAtomic(out.arrow, [tableToIPC(groupTable(embed.groupBy, groups), 'file')]);
  writeSealedJson(out.json, groupSummary(embed, groups, arrow));
  return out;
}
