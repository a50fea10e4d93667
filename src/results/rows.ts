/**
 * Measurement results in long form: one row per (study, run pair, step, metric, layer, split), the
 * options that produced the value stored next to it as JSON (METHODS: every figure must say which
 * definition produced it). Written as one Arrow IPC file, atomically (temp file + rename).
 *
 * Columns: study, run_a, run_b (Utf8; run_b null for single-run measurements), step (Int64),
 * metric (Utf8), layer (Utf8, null when not per layer), split (Utf8: 'train' | 'test', null when not
 * data-dependent), value (Float64), options (Utf8 JSON).
 */
import { readFileSync } from 'node:fs';
import { Float64, Int64, Table, tableFromIPC, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { writeFileAtomic } from '../util/atomic-file.js';
import { checkDigest, type FileDigest } from '../util/file-digest.js';

/** One measured value. */
export interface ResultRow {
  readonly study: string;
  readonly runA: string;
  readonly runB: string | null;
  readonly step: number;
  readonly metric: string;
  readonly layer: string | null;
  readonly split: 'train' | 'test' | null;
  readonly value: number;
  /** The options of the definition used (e.g. `{ convention: 'linear', alphas: 11 }`). */
  readonly options: Readonly<Record<string, unknown>>;
}

/** The rows as an Arrow table with the documented columns. */
function resultsTable(rows: readonly ResultRow[]): Table {
  const str = (f: (r: ResultRow) => string | null) => vectorFromArray(rows.map(f), new Utf8());
  return new Table({
    study: str((r) => r.study),
    run_a: str((r) => r.runA),
    run_b: str((r) => r.runB),
    step: vectorFromArray(
      rows.map((r) => BigInt(r.step)),
      new Int64(),
    ),
    metric: str((r) => r.metric),
    layer: str((r) => r.layer),
    split: str((r) => r.split),
    value: vectorFromArray(
      rows.map((r) => r.value),
      new Float64(),
    ),
    options: str((r) => JSON.stringify(r.options)),
  });
}

/** Write rows to `path` as an Arrow IPC file, atomically; returns its digest, for the index that records it. */
export function writeResults(path: string, rows: readonly ResultRow[]): FileDigest {
  return writeFileAtomic(path, [tableToIPC(resultsTable(rows), 'file')]);
}

/**
 * Read a results file written by {@link writeResults}; errors name the file and the missing column.
 * With `recorded` (the digest an index recorded, and the index's name), the file is checked against
 * it first: an IntegrityError when it does not match.
 */
export function readResults(path: string, recorded?: { digest: FileDigest; where: string }): ResultRow[] {
  if (recorded) checkDigest(path, recorded.digest, recorded.where);
  let table: Table;
  try {
    table = tableFromIPC(readFileSync(path));
  } catch (e) {
    throw new Error(`${path}: not a readable Arrow IPC file (${(e as Error).message})`);
  }
  const names = ['study', 'run_a', 'run_b', 'step', 'metric', 'layer', 'split', 'value', 'options'];
  const missing = names.filter((n) => !table.getChild(n));
  if (missing.length) throw new Error(`${path}: missing column(s) ${missing.join(', ')}`);
  return table.toArray().map((r) => ({
    study: r.study,
    runA: r.run_a,
    runB: r.run_b ?? null,
    step: Number(r.step),
    metric: r.metric,
    layer: r.layer ?? null,
    split: r.split ?? null,
    value: r.value,
    options: JSON.parse(r.options),
  }));
}
