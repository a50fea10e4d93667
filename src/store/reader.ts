/**
 * Read-only access to a run directory's store files: checkpoints, metrics and verification.
 * Readers open files with flag `r` only and never modify them. Both Arrow IPC formats are accepted
 * (the file format is detected by its leading `ARROW1` magic); a stream whose last record batch is
 * torn (a crash mid-append) is read up to its last complete batch and the torn tail is reported.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Schema, type Table, tableFromIPC } from 'apache-arrow';
import { Footer } from 'apache-arrow/ipc/metadata/file';
import type { ParameterLayout } from '../model/layout.js';
import { sha256File } from '../util/file-digest.js';
import {
  type Checkpoint,
  checkpointsFromTable,
  type DiagnosticRow,
  decodeMessages,
  diagnosticsFromTable,
  encodeSchema,
  type MetricRow,
  metricsFromTable,
} from './codec.js';
import { StoreError } from './errors.js';
import { readRange, type ScanResult, scanFile } from './ipc.js';
import {
  CHECKPOINTS_FILE,
  checkpointSchema,
  DIAGNOSTICS_FILE,
  diagnosticsSchema,
  type LayoutMeta,
  layoutFromMeta,
  layoutMismatch,
  META_KIND,
  META_LAYOUT,
  METRICS_FILE,
  metricsSchema,
  parseLayoutMeta,
  schemaProblem,
} from './schema.js';

/** How readers treat a torn trailing record batch of a stream file. */
export interface ReadOptions {
  /** Throw the torn-tail {@link StoreError} instead of reading up to the last complete batch. */
  readonly strict?: boolean;
  /** Called with the torn-tail error when a torn tail is tolerated. */
  readonly onTorn?: (error: StoreError) => void;
}

/** A store file opened for reading: its framing, schema message and decoded schema. */
export interface OpenedFile {
  readonly file: string;
  readonly name: string;
  readonly scan: ScanResult;
  /** Bytes of the schema message (for the file format: re-encoded from the footer's schema). */
  readonly schemaBytes: Uint8Array;
  readonly schema: Schema;
}

/** Scan a store file and decode its schema; throws {@link StoreError} naming the file. */
export function openStoreFile(file: string): OpenedFile {
  const name = path.basename(file);
  const scan = scanFile(file);
  if (scan.footer) {
    // File format: the footer holds the schema and the record batch blocks.
    let footer: Footer;
    try {
      footer = Footer.decode(readRange(file, scan.footer.offset, scan.footer.offset + scan.footer.length));
    } catch (e) {
      throw new StoreError(
        `${name}: cannot decode footer at byte ${scan.footer.offset}: ${(e as Error).message}`,
        name,
      );
    }
    const blocks = [...footer.recordBatches()];
    const offsets = scan.batches.map((b) => b.offset);
    if (blocks.length !== offsets.length || blocks.some((b, i) => Number(b.offset) !== offsets[i])) {
      throw new StoreError(
        `${name}: footer lists ${blocks.length} record batches at [${blocks.map((b) => b.offset).join(', ')}], the file holds ${offsets.length} at [${offsets.join(', ')}]`,
        name,
      );
    }
    return { file, name, scan, schemaBytes: encodeSchema(footer.schema), schema: footer.schema };
  }
  const at = scan.schema!;
  const schemaBytes = readRange(file, at.offset, at.end);
  let schema: Schema;
  try {
    schema = tableFromIPC(schemaBytes).schema;
  } catch (e) {
    throw new StoreError(
      `${name}: cannot decode schema message at byte ${at.offset}: ${(e as Error).message}`,
      name,
    );
  }
  return { file, name, scan, schemaBytes, schema };
}

/** The layout metadata of a checkpoints file, after checking its schema against it. */
export function checkpointMeta(opened: OpenedFile): LayoutMeta {
  const { name, schema } = opened;
  const kind = schema.metadata.get(META_KIND);
  if (kind !== undefined && kind !== 'checkpoints') {
    throw new StoreError(`${name}: schema metadata says this is a '${kind}' file, not checkpoints`, name);
  }
  const meta = parseLayoutMeta(schema.metadata.get(META_LAYOUT));
  if (typeof meta === 'string') throw new StoreError(`${name}: ${meta}`, name);
  const problem = schemaProblem(schema, checkpointSchema(meta));
  if (problem) throw new StoreError(`${name}: ${problem}`, name);
  return meta;
}

/** Check a metrics file's schema. */
export function checkMetricsSchema(opened: OpenedFile): void {
  const { name, schema } = opened;
  const kind = schema.metadata.get(META_KIND);
  if (kind !== undefined && kind !== 'metrics') {
    throw new StoreError(`${name}: schema metadata says this is a '${kind}' file, not metrics`, name);
  }
  const problem = schemaProblem(schema, metricsSchema());
  if (problem) throw new StoreError(`${name}: ${problem}`, name);
}

/** Check a diagnostics file's schema. */
export function checkDiagnosticsSchema(opened: OpenedFile): void {
  const { name, schema } = opened;
  const kind = schema.metadata.get(META_KIND);
  if (kind !== 'diagnostics') {
    throw new StoreError(`${name}: schema metadata says this is a '${kind}' file, not diagnostics`, name);
  }
  const problem = schemaProblem(schema, diagnosticsSchema());
  if (problem) throw new StoreError(`${name}: ${problem}`, name);
}

function handleTorn(opened: OpenedFile, options: ReadOptions | undefined): void {
  const torn = opened.scan.torn;
  if (!torn) return;
  const err = new StoreError(torn.message, opened.name);
  if (options?.strict) throw err;
  options?.onTorn?.(err);
}

/** Decode record batches `from..to` of an opened file, wrapping decode errors with the file name. */
export function decodeBatches(opened: OpenedFile, from = 0, to = opened.scan.batches.length): Table {
  const msgs = opened.scan.batches.slice(from, to);
  try {
    if (msgs.length === 0) return decodeMessages(opened.schemaBytes, []);
    const bytes = readRange(opened.file, msgs[0]!.offset, msgs[msgs.length - 1]!.end);
    return decodeMessages(opened.schemaBytes, [bytes]);
  } catch (e) {
    throw new StoreError(
      `${opened.name}: cannot decode record batch ${from}${to - from > 1 ? `..${to - 1}` : ''} at byte ${msgs[0]?.offset}: ${(e as Error).message}`,
      opened.name,
    );
  }
}

/**
 * Iterate over the checkpoints of `dir/checkpoints.arrow`, decoding one record batch at a time.
 * With `layout`, the file's layout metadata must match it (names, shapes, offsets).
 * @throws StoreError for unreadable files, schema problems, a layout mismatch, or (with `strict`) a torn tail.
 */
export function* iterateCheckpoints(
  dir: string,
  layout?: ParameterLayout,
  options?: ReadOptions,
): Generator<Checkpoint> {
  const opened = openStoreFile(path.join(dir, CHECKPOINTS_FILE));
  const meta = checkpointMeta(opened);
  if (layout) {
    const diff = layoutMismatch(layoutFromMeta(meta), layout);
    if (diff)
      throw new StoreError(
        `${opened.name}: layout in file differs from the expected layout: ${diff}`,
        opened.name,
      );
  }
  handleTorn(opened, options);
  for (let i = 0; i < opened.scan.batches.length; i++) {
    yield* checkpointsFromTable(decodeBatches(opened, i, i + 1), meta);
  }
}

/** All checkpoints of `dir/checkpoints.arrow`, in order; see {@link iterateCheckpoints}. */
export function readCheckpoints(dir: string, layout?: ParameterLayout, options?: ReadOptions): Checkpoint[] {
  return [...iterateCheckpoints(dir, layout, options)];
}

/**
 * The `step` of every checkpoint in `dir/checkpoints.arrow`, in order (decodes one batch at a time).
 * @throws StoreError as {@link readCheckpoints}.
 */
export function readCheckpointSteps(dir: string, options?: ReadOptions): number[] {
  const opened = openStoreFile(path.join(dir, CHECKPOINTS_FILE));
  checkpointMeta(opened);
  handleTorn(opened, options);
  const steps: number[] = [];
  for (let i = 0; i < opened.scan.batches.length; i++) {
    const col = decodeBatches(opened, i, i + 1).getChild('step')!;
    for (let r = 0; r < col.length; r++) steps.push(Number(col.get(r)));
  }
  return steps;
}

/** The parameter layout recorded in `dir/checkpoints.arrow`'s schema metadata, with the slot count. */
export function readLayout(dir: string): { layout: ParameterLayout; slotCount: number } {
  const meta = checkpointMeta(openStoreFile(path.join(dir, CHECKPOINTS_FILE)));
  return { layout: layoutFromMeta(meta), slotCount: meta.slots };
}

/**
 * All rows of `dir/metrics.arrow`, in file order. Absent values are null.
 * @throws StoreError for unreadable files, schema problems, or (with `strict`) a torn tail.
 */
export function readMetrics(dir: string, options?: ReadOptions): MetricRow[] {
  const opened = openStoreFile(path.join(dir, METRICS_FILE));
  checkMetricsSchema(opened);
  handleTorn(opened, options);
  return metricsFromTable(decodeBatches(opened));
}

/**
 * All rows of `dir/diagnostics.arrow` (measurements along training), in file order.
 * @throws StoreError for a missing or unreadable file, schema problems, or (with `strict`) a torn tail.
 */
export function readDiagnosticRows(dir: string, options?: ReadOptions): DiagnosticRow[] {
  const opened = openStoreFile(path.join(dir, DIAGNOSTICS_FILE));
  checkDiagnosticsSchema(opened);
  handleTorn(opened, options);
  return diagnosticsFromTable(decodeBatches(opened));
}

/** Expected checksum and row count of one file (as recorded in run.json by {@link RunWriter.finalize}). */
export interface ExpectedFile {
  readonly sha256: string;
  readonly rows: number;
}

/** Outcome of {@link verifyFiles}: `problems` lists every problem found, each prefixed with the file name. */
export interface VerifyResult {
  readonly ok: boolean;
  readonly problems: string[];
}

function verifyOne(dir: string, name: string, expected: ExpectedFile | undefined): string[] {
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) return [`${name}: file is missing`];
  const problems: string[] = [];
  let structural = false;
  // Files other than the store files: only the checksum is checked.
  const isStore = name === CHECKPOINTS_FILE || name === METRICS_FILE || name === DIAGNOSTICS_FILE;
  try {
    if (!isStore) return sha256Problems(file, name, expected, false);
    const opened = openStoreFile(file);
    if (opened.scan.torn) throw new StoreError(opened.scan.torn.message, name);
    if (name === METRICS_FILE) checkMetricsSchema(opened);
    else if (name === DIAGNOSTICS_FILE) checkDiagnosticsSchema(opened);
    else checkpointMeta(opened);
    const scanRows = opened.scan.batches.reduce((a, b) => a + b.rows, 0);
    let table: Table;
    try {
      // The file format is decoded through its footer, the stream format message by message.
      table = opened.scan.format === 'file' ? tableFromIPC(fs.readFileSync(file)) : decodeBatches(opened);
    } catch (e) {
      if (e instanceof StoreError) throw e;
      throw new StoreError(`${name}: cannot decode: ${(e as Error).message}`, name);
    }
    if (table.numRows !== scanRows) {
      throw new StoreError(
        `${name}: footer/decoded data has ${table.numRows} rows, record batch headers say ${scanRows}`,
        name,
      );
    }
    if (expected && table.numRows !== expected.rows) {
      problems.push(`${name}: has ${table.numRows} rows, expected ${expected.rows}`);
    }
  } catch (e) {
    structural = true;
    problems.push(e instanceof StoreError ? e.message : `${name}: ${(e as Error).message}`);
  }
  problems.push(...sha256Problems(file, name, expected, structural));
  return problems;
}

function sha256Problems(
  file: string,
  name: string,
  expected: ExpectedFile | undefined,
  structural: boolean,
): string[] {
  if (!expected) return [];
  const sha = sha256File(file);
  if (sha === expected.sha256) return [];
  return [
    `${name}: sha256 ${sha} does not match the recorded ${expected.sha256}${structural ? '' : ' (file was modified or corrupted)'}`,
  ];
}

/**
 * Throw a {@link StoreError} naming `dir/name` unless the file's sha256 is the `expected` one (as
 * recorded in run.json when the run finished). Reads the file once, in 1 MiB chunks.
 */
export function checkFileChecksum(dir: string, name: string, expected: ExpectedFile): void {
  const file = path.join(dir, name);
  if (!fs.existsSync(file)) throw new StoreError(`${file}: file is missing`, name);
  const key = `${file}\0${expected.sha256}`;
  const identity = fileIdentity(file);
  if (verifiedFiles.get(key) === identity) return;
  const [problem] = sha256Problems(file, name, expected, false);
  // The problem starts with the file's name; the error names its path.
  if (problem) throw new StoreError(`${file}${problem.slice(name.length)}`, name);
  verifiedFiles.set(key, identity);
}

/**
 * Files whose checksum {@link checkFileChecksum} has matched in this process, by path and expected
 * sha256, with the file's identity then: a file read again unchanged (same inode, size, and
 * modification and change times to the nanosecond) is not hashed again. A fork job reads its
 * parent's checkpoints once per twin, a measurement both runs of every pair. `verify` always hashes.
 */
const verifiedFiles = new Map<string, string>();

function fileIdentity(file: string): string {
  const st = fs.statSync(file, { bigint: true });
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/**
 * Verify a run directory's store files: Arrow magic and framing (no torn tail, file footer present),
 * format version, schema (required columns, types, list sizes against the layout metadata), that the
 * data decodes, and — when `expected` is given (keys are file names, e.g. from run.json) — row counts
 * and sha256 checksums. Without `expected`, both `checkpoints.arrow` and `metrics.arrow` are checked.
 * Never writes.
 */
export function verifyFiles(dir: string, expected?: Record<string, ExpectedFile>): VerifyResult {
  const names = expected ? Object.keys(expected) : [CHECKPOINTS_FILE, METRICS_FILE];
  const problems = names.flatMap((n) => verifyOne(dir, n, expected?.[n]));
  return { ok: problems.length === 0, problems };
}
