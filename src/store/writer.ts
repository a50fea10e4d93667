/**
 * The run writer: appends checkpoints and metric rows to a run directory's store files as Arrow IPC
 * streams (one record batch per append, fsynced), recovers from a crash on reopen, and on
 * {@link RunWriter.finalize} rewrites both files atomically in the Arrow IPC file format.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Schema, tableToIPC } from 'apache-arrow';
import type { ParameterLayout } from '../model/layout.js';
import { writeAll, writeFileAtomic } from '../util/atomic-file.js';
import {
  type Checkpoint,
  checkpointBatch,
  checkpointsFromTable,
  encodeBatch,
  encodeSchema,
  type MetricRow,
  metricsBatch,
  metricsFromTable,
} from './codec.js';
import { StoreError } from './errors.js';
import { readRange, scanFile } from './ipc.js';
import {
  checkMetricsSchema,
  checkpointMeta,
  decodeBatches,
  type OpenedFile,
  openStoreFile,
} from './reader.js';
import {
  CHECKPOINTS_FILE,
  checkpointSchema,
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
  private finalized = false;

  /** @internal Use {@link openRunWriter}. */
  constructor(
    /** The run directory. */
    readonly dir: string,
    private readonly meta: LayoutMeta,
    private readonly ckSchema: Schema,
    private readonly mSchema: Schema,
  ) {
    this.ckFd = fs.openSync(path.join(dir, CHECKPOINTS_FILE), 'a');
    this.mFd = fs.openSync(path.join(dir, METRICS_FILE), 'a');
  }

  private fd(which: 'ck' | 'm'): number {
    const fd = which === 'ck' ? this.ckFd : this.mFd;
    if (fd === undefined)
      throw new StoreError(`run writer for ${this.dir} is ${this.finalized ? 'finalized' : 'closed'}`);
    return fd;
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
   * Close the writer and rewrite both files atomically in the Arrow IPC file format (readable with
   * `pyarrow.ipc.open_file`). Returns, per file name, the sha256 (hex), row count and byte size of
   * the finalized file.
   */
  async finalize(): Promise<Record<string, FileSummary>> {
    // Works after close() too; a second finalize() is an error.
    if (this.finalized) throw new StoreError(`run writer for ${this.dir} is already finalized`);
    this.close();
    const out: Record<string, FileSummary> = {};
    for (const name of [CHECKPOINTS_FILE, METRICS_FILE]) {
      const opened = openStoreFile(path.join(this.dir, name));
      if (opened.scan.torn) throw new StoreError(opened.scan.torn.message, name);
      const table = decodeBatches(opened);
      const bytes = opened.scan.format === 'file' ? fs.readFileSync(opened.file) : tableToIPC(table, 'file');
      if (opened.scan.format !== 'file') writeFileAtomic(opened.file, [bytes]);
      out[name] = {
        sha256: createHash('sha256').update(bytes).digest('hex'),
        rows: table.numRows,
        bytes: bytes.length,
      };
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
    this.ckFd = undefined;
    this.mFd = undefined;
  }
}

/**
 * Open (or create) the store of run directory `dir` for appending.
 *
 * New files start as an Arrow IPC stream holding only the schema (created atomically). Existing files
 * are recovered: a torn trailing record batch (crash mid-append) is truncated away, a finalized
 * file-format file is turned back into a stream, and metric rows with `step` greater than the last
 * checkpoint's step (all rows when there is no checkpoint) are dropped (atomic rewrite), so metrics
 * and checkpoints agree. Returns the writer and the last checkpoint, if any.
 *
 * @param slotCount - Number of optimizer slot vectors stored per checkpoint.
 * @throws StoreError when an existing file is not a store file, or its layout/schema differs.
 */
export async function openRunWriter(
  dir: string,
  layout: ParameterLayout,
  slotCount: number,
): Promise<{ writer: RunWriter; last?: Checkpoint }> {
  fs.mkdirSync(dir, { recursive: true });
  const meta = layoutMeta(layout, slotCount);
  const ckSchema = checkpointSchema(meta);
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
    if (fileMeta.slots !== slotCount) {
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
    writeFileAtomic(ckPath, [encodeSchema(ckSchema)]);
  }

  if (fs.existsSync(mPath)) {
    checkMetricsSchema(openStoreFile(mPath));
    recoverFile(openStoreFile(mPath));
    const opened = openStoreFile(mPath);
    const lastStep = last?.step ?? Number.NEGATIVE_INFINITY;
    // A step row records the update *from* its step, so it belongs to the checkpoint after it: keep
    // step rows before the last checkpoint and evaluation rows up to and including it.
    const belongs = (r: MetricRow) => (r.kind === 'step' ? r.step < lastStep : r.step <= lastStep);
    const { batches } = opened.scan;
    // Find the first batch holding a row past the last checkpoint; keep everything before it raw.
    for (let i = 0; i < batches.length; i++) {
      const rows = metricsFromTable(decodeBatches(opened, i, i + 1));
      if (rows.every(belongs)) continue;
      const kept = metricsFromTable(decodeBatches(opened, i)).filter(belongs);
      const chunks = [opened.schemaBytes, readRange(mPath, batches[0]!.offset, batches[i]!.offset)];
      if (kept.length > 0) chunks.push(encodeBatch(metricsBatch(mSchema, kept)).batch);
      writeFileAtomic(mPath, chunks);
      break;
    }
  } else {
    writeFileAtomic(mPath, [encodeSchema(mSchema)]);
  }

  const writer = new RunWriter(dir, meta, ckSchema, mSchema);
  return last ? { writer, last } : { writer };
}
