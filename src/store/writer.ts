/**
 * The run writer: appends checkpoints and metric rows (and, for runs that measure along training,
 * diagnostic rows) to a run directory's store files as Arrow IPC streams (one record batch per
 * append, fsynced), recovers from a crash on reopen, and on {@link RunWriter.finalize} rewrites every
 * file atomically in the Arrow IPC file format.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MetadataVersion, type Schema } from 'apache-arrow';
import { FileBlock, Footer } from 'apache-arrow/ipc/metadata/file';
import type { ParameterLayout } from '../model/layout.js';
import { writeAll, writeFileAtomic } from '../util/atomic-file.js';
import {
  type Checkpoint,
  checkpointBatch,
  checkpointsFromTable,
  type DiagnosticRow,
  diagnosticsBatch,
  diagnosticsFromTable,
  encodeBatch,
  encodeSchema,
  type MetricRow,
  metricsBatch,
  metricsFromTable,
} from './codec.js';
import { StoreError } from './errors.js';
import { readRange, scanFile } from './ipc.js';
import {
  checkDiagnosticsSchema,
  checkMetricsSchema,
  checkpointMeta,
  decodeBatches,
  type OpenedFile,
  openStoreFile,
} from './reader.js';
import {
  CHECKPOINTS_FILE,
  checkpointSchema,
  DIAGNOSTICS_FILE,
  diagnosticsSchema,
  type LayoutMeta,
  layoutFromMeta,
  layoutMeta,
  layoutMismatch,
  METRICS_FILE,
  metricsSchema,
} from './schema.js';

/** Checksum, row count and size of one finalized file (for run.json). */
export interface FileSummary {
  readonly sha256: string;
  readonly rows: number;
  readonly bytes: number;
}

/** Bring an existing stream/file to a clean stream ending at its last complete batch. */
function recoverFile(opened: OpenedFile): void {
  const { scan, file } = opened;
  if (scan.format === 'file') {
    // A finished run being resumed: turn it back into a stream (schema, batches; no EOS / footer).
    const first = scan.batches[0];
    writeFileAtomic(file, [
      opened.schemaBytes,
      first ? readRange(file, first.offset, scan.dataEnd) : new Uint8Array(0),
    ]);
  } else if (scan.dataEnd < scan.size) {
    // Torn tail or end-of-stream marker: cut it off.
    const fd = fs.openSync(file, 'r+');
    try {
      fs.ftruncateSync(fd, scan.dataEnd);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
}

/** Appends to one run directory's store files; obtain one with {@link openRunWriter}. */
export class RunWriter {
  private ckFd: number | undefined;
  private mFd: number | undefined;
  private dFd: number | undefined;
  private finalized = false;

  /** @internal Use {@link openRunWriter}. */
  constructor(
    /** The run directory. */
    readonly dir: string,
    private readonly meta: LayoutMeta,
    private readonly ckSchema: Schema,
    private readonly mSchema: Schema,
    /** The schema of diagnostics.arrow when this run writes one. */
    private readonly dSchema?: Schema,
  ) {
    this.ckFd = fs.openSync(path.join(dir, CHECKPOINTS_FILE), 'a');
    this.mFd = fs.openSync(path.join(dir, METRICS_FILE), 'a');
    if (dSchema) this.dFd = fs.openSync(path.join(dir, DIAGNOSTICS_FILE), 'a');
  }

  private fd(which: 'ck' | 'm' | 'd'): number {
    const fd = which === 'ck' ? this.ckFd : which === 'm' ? this.mFd : this.dFd;
    if (fd === undefined)
      throw new StoreError(`run writer for ${this.dir} is ${this.finalized ? 'finalized' : 'closed'}`);
    return fd;
  }

  /** Whether this writer keeps a diagnostics.arrow (opened with `diagnostics: true`). */
  get hasDiagnostics(): boolean {
    return this.dSchema !== undefined;
  }

  /**
   * Append diagnostic rows as one record batch and fsync. An empty list writes nothing. Like metric
   * rows, append them before the checkpoint they belong to: on resume, rows with a step after the
   * last checkpoint are dropped.
   * @throws StoreError when the writer was opened without `diagnostics`.
   */
  appendDiagnostics(rows: readonly DiagnosticRow[]): void {
    if (!this.dSchema) throw new StoreError(`run writer for ${this.dir} keeps no ${DIAGNOSTICS_FILE}`);
    const fd = this.fd('d');
    if (rows.length === 0) return;
    writeAll(fd, encodeBatch(diagnosticsBatch(this.dSchema, rows)).batch);
    fs.fsyncSync(fd);
  }

  /** Append metric rows as one record batch and fsync. An empty list writes nothing. */
  appendMetrics(rows: readonly MetricRow[]): void {
    const fd = this.fd('m');
    if (rows.length === 0) return;
    writeAll(fd, encodeBatch(metricsBatch(this.mSchema, rows)).batch);
    fs.fsyncSync(fd);
  }

  /**
   * Append one checkpoint as one record batch and fsync. Append a step's metric rows before its
   * checkpoint: on resume, metric rows after the last checkpoint are dropped.
   */
  appendCheckpoint(cp: Checkpoint): void {
    const fd = this.fd('ck');
    writeAll(fd, encodeBatch(checkpointBatch(this.ckSchema, this.meta, cp)).batch);
    fs.fsyncSync(fd);
  }

  /**
   * Close the writer and rewrite every file (both store files, and diagnostics.arrow when kept)
   * atomically in the Arrow IPC file format (readable with `pyarrow.ipc.open_file`). Returns, per
   * file name, the sha256 (hex), row count and byte size of the finalized file.
   *
   * With `dropOptimizerState`, checkpoints.arrow is first rewritten without its optimizer slot
   * columns (layout metadata `slots: 0`, as a run of plain SGD stores it; see {@link dropSlots}).
   */
  async finalize(options: FinalizeOptions = {}): Promise<Record<string, FileSummary>> {
    // Works after close() too; a second finalize() is an error.
    if (this.finalized) throw new StoreError(`run writer for ${this.dir} is already finalized`);
    this.close();
    const out: Record<string, FileSummary> = {};
    const names = [CHECKPOINTS_FILE, METRICS_FILE, ...(this.dSchema ? [DIAGNOSTICS_FILE] : [])];
    if (options.dropOptimizerState) dropSlots(path.join(this.dir, CHECKPOINTS_FILE));
    for (const name of names) {
      const opened = openStoreFile(path.join(this.dir, name));
      if (opened.scan.torn) throw new StoreError(opened.scan.torn.message, name);
      const rows = opened.scan.batches.reduce((n, b) => n + b.rows, 0);
      if (opened.scan.format === 'file') {
        const bytes = fs.readFileSync(opened.file);
        out[name] = { sha256: createHash('sha256').update(bytes).digest('hex'), rows, bytes: bytes.length };
      } else {
        out[name] = { ...writeFileAtomic(opened.file, streamToFile(opened)), rows };
      }
      const check = scanFile(opened.file);
      if (check.format !== 'file')
        throw new StoreError(`${name}: finalize did not produce an Arrow IPC file`, name);
    }
    this.finalized = true;
    return out;
  }

  /** Close the files (idempotent). Streams stay valid and can be resumed with {@link openRunWriter}. */
  close(): void {
    if (this.ckFd !== undefined) fs.closeSync(this.ckFd);
    if (this.mFd !== undefined) fs.closeSync(this.mFd);
    if (this.dFd !== undefined) fs.closeSync(this.dFd);
    this.ckFd = undefined;
    this.mFd = undefined;
    this.dFd = undefined;
  }
}

/** Options of {@link RunWriter.finalize}. */
export interface FinalizeOptions {
  /**
   * Drop the optimizer slots (momentum, Adam moments) of every checkpoint: for a finished run that
   * nothing will fork from. A run is resumed from its last checkpoint while it is unfinished, and
   * that checkpoint still holds its slots (they are dropped only here, after the last step).
   */
  readonly dropOptimizerState?: boolean;
}

/**
 * Rewrite the checkpoints stream `file` atomically without optimizer slot columns: the same rows
 * (step, epoch, weights, `opt.step`) under a schema whose layout metadata says `slots: 0`. A pure
 * function of the file's rows, so a run finalized after a resume gets the same bytes as one never
 * interrupted. A file that has no slots (already dropped, or an optimizer without state) is left
 * as it is.
 */
function dropSlots(file: string): void {
  const opened = openStoreFile(file);
  const meta = checkpointMeta(opened);
  if (meta.slots === 0) return;
  const bare: LayoutMeta = { ...meta, slots: 0 };
  const schema = checkpointSchema(bare);
  const chunks = [encodeSchema(schema)];
  // One checkpoint at a time: memory for one row, not the whole file.
  for (let i = 0; i < opened.scan.batches.length; i++) {
    for (const cp of checkpointsFromTable(decodeBatches(opened, i, i + 1), meta)) {
      const row = { ...cp, opt: { step: cp.opt.step, slots: [] } };
      chunks.push(encodeBatch(checkpointBatch(schema, bare, row)).batch);
    }
  }
  writeFileAtomic(file, chunks);
}

/** `ARROW1` and two bytes of padding: the start of an Arrow IPC file. */
const FILE_MAGIC_PADDED = new Uint8Array([0x41, 0x52, 0x52, 0x4f, 0x57, 0x31, 0, 0]);
/** The end-of-stream marker: a continuation marker and a zero metadata length. */
const END_OF_STREAM = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);

/**
 * The Arrow IPC file holding the record batches of the stream file `opened`, as byte chunks: the
 * magic, the stream's messages byte for byte (schema message first, as C++ and pyarrow write
 * files), the end-of-stream marker, and the footer with the schema and every batch's block. The
 * batches are copied, not decoded and re-encoded: finalizing costs a copy of the file.
 */
function streamToFile(opened: OpenedFile): Uint8Array[] {
  const { scan, file, schema } = opened;
  const shift = FILE_MAGIC_PADDED.length;
  const blocks = scan.batches.map(
    (b) => new FileBlock(b.end - b.bodyLength - b.offset, b.bodyLength, b.offset + shift),
  );
  const footer = Footer.encode(new Footer(schema, MetadataVersion.V5, blocks, []));
  const length = new Uint8Array(4);
  new DataView(length.buffer).setInt32(0, footer.length, true);
  return [
    FILE_MAGIC_PADDED,
    readRange(file, 0, scan.dataEnd),
    END_OF_STREAM,
    footer,
    length,
    FILE_MAGIC_PADDED.subarray(0, 6),
  ];
}

/** Options of {@link openRunWriter}. */
export interface RunWriterOptions {
  /**
   * Also keep `diagnostics.arrow` (measurements along training): created, recovered and finalized
   * like metrics.arrow. Default false: a run without it has exactly the two store files.
   */
  readonly diagnostics?: boolean;
}

/**
 * Drop the rows of a (recovered) stream file that do not belong to the checkpoints kept, rewriting
 * it atomically from the first record batch that holds such a row; batches before it stay byte for
 * byte.
 */
function dropRowsAfter<R>(
  file: string,
  schema: Schema,
  fromTable: (t: ReturnType<typeof decodeBatches>) => R[],
  toBatch: (schema: Schema, rows: R[]) => Parameters<typeof encodeBatch>[0],
  belongs: (r: R) => boolean,
): void {
  const opened = openStoreFile(file);
  const { batches } = opened.scan;
  // Find the first batch holding a row past the last checkpoint; keep everything before it raw.
  for (let i = 0; i < batches.length; i++) {
    const rows = fromTable(decodeBatches(opened, i, i + 1));
    if (rows.every(belongs)) continue;
    const kept = fromTable(decodeBatches(opened, i)).filter(belongs);
    const chunks = [opened.schemaBytes, readRange(file, batches[0]!.offset, batches[i]!.offset)];
    if (kept.length > 0) chunks.push(encodeBatch(toBatch(schema, kept)).batch);
    writeFileAtomic(file, chunks);
    break;
  }
}

/**
 * Open (or create) the store of run directory `dir` for appending.
 *
 * New files start as an Arrow IPC stream holding only the schema (created atomically). Existing files
 * are recovered: a torn trailing record batch (crash mid-append) is truncated away, a finalized
 * file-format file is turned back into a stream, and metric rows with `step` greater than the last
 * checkpoint's step (all rows when there is no checkpoint) are dropped (atomic rewrite), so metrics
 * and checkpoints agree. Returns the writer and the last checkpoint, if any. A checkpoints file
 * whose optimizer slots were dropped at finalize (`slots: 0` while the run has `slotCount`) is
 * accepted: its `last` checkpoint then has no slots, and only a run with no step left can go on.
 *
 * @param slotCount - Number of optimizer slot vectors stored per checkpoint.
 * @throws StoreError when an existing file is not a store file, or its layout/schema differs.
 */
export async function openRunWriter(
  dir: string,
  layout: ParameterLayout,
  slotCount: number,
  options: RunWriterOptions = {},
): Promise<{ writer: RunWriter; last?: Checkpoint }> {
  fs.mkdirSync(dir, { recursive: true });
  let meta = layoutMeta(layout, slotCount);
  const mSchema = metricsSchema();
  const ckPath = path.join(dir, CHECKPOINTS_FILE);
  const mPath = path.join(dir, METRICS_FILE);

  let last: Checkpoint | undefined;
  if (fs.existsSync(ckPath)) {
    const opened = openStoreFile(ckPath);
    const fileMeta = checkpointMeta(opened);
    const diff = layoutMismatch(layoutFromMeta(fileMeta), layout);
    if (diff)
      throw new StoreError(
        `${CHECKPOINTS_FILE}: layout in file differs from the run's layout: ${diff}`,
        CHECKPOINTS_FILE,
      );
    // A file whose slots were dropped when the run finished (finalize with dropOptimizerState,
    // killed before run.json said so) is opened as it is: it has no step left to resume.
    if (fileMeta.slots === 0 && slotCount > 0) meta = fileMeta;
    else if (fileMeta.slots !== slotCount) {
      throw new StoreError(
        `${CHECKPOINTS_FILE}: file has ${fileMeta.slots} optimizer slots, the run has ${slotCount}`,
        CHECKPOINTS_FILE,
      );
    }
    recoverFile(opened);
    const reopened = openStoreFile(ckPath);
    const n = reopened.scan.batches.length;
    if (n > 0) last = checkpointsFromTable(decodeBatches(reopened, n - 1, n), fileMeta).at(-1);
  } else {
    writeFileAtomic(ckPath, [encodeSchema(checkpointSchema(meta))]);
  }

  const lastStep = last?.step ?? Number.NEGATIVE_INFINITY;
  if (fs.existsSync(mPath)) {
    checkMetricsSchema(openStoreFile(mPath));
    recoverFile(openStoreFile(mPath));
    // A step row records the update *from* its step, so it belongs to the checkpoint after it: keep
    // step rows before the last checkpoint and evaluation rows up to and including it.
    const belongs = (r: MetricRow) => (r.kind === 'step' ? r.step < lastStep : r.step <= lastStep);
    dropRowsAfter(mPath, mSchema, metricsFromTable, metricsBatch, belongs);
  } else {
    writeFileAtomic(mPath, [encodeSchema(mSchema)]);
  }

  let dSchema: Schema | undefined;
  if (options.diagnostics) {
    dSchema = diagnosticsSchema();
    const dPath = path.join(dir, DIAGNOSTICS_FILE);
    if (fs.existsSync(dPath)) {
      checkDiagnosticsSchema(openStoreFile(dPath));
      recoverFile(openStoreFile(dPath));
      // A diagnostic row measures the state after `step` updates: it belongs to checkpoints ≥ step.
      const belongs = (r: DiagnosticRow) => r.step <= lastStep;
      dropRowsAfter(dPath, dSchema, diagnosticsFromTable, diagnosticsBatch, belongs);
    } else {
      writeFileAtomic(dPath, [encodeSchema(dSchema)]);
    }
  }

  const writer = new RunWriter(dir, meta, checkpointSchema(meta), mSchema, dSchema);
  return last ? { writer, last } : { writer };
}
