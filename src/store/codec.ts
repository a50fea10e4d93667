/**
 * Encoding checkpoints and metric rows as Arrow record batches (IPC message bytes), and decoding
 * them back. Float32 values are copied byte for byte, so round trips are bit-exact (NaN payloads too).
 */
import {
  type Data,
  type DataType,
  Float64,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  type Schema,
  Struct,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
} from 'apache-arrow';
import { parseMessageHeader } from './ipc.js';
import { type LayoutMeta, slotColumn } from './schema.js';

/** One checkpoint: parameters and optimizer state after `step` optimizer steps. */
export interface Checkpoint {
  /** Training step (number of optimizer updates done). */
  step: number;
  /** Fractional epoch at this step. */
  epoch: number;
  /** Flat parameters in layout order. */
  params: Float32Array;
  /** Optimizer state: its step count and flat slot vectors (same length as params). */
  opt: { step: number; slots: Float32Array[] };
}

/**
 * One row of `metrics.arrow`. `kind: 'step'` rows carry `lr`, `trainLoss`, `batchHash`;
 * `kind: 'eval'` rows carry the evaluation fields. Fields a row does not carry are null
 * (readers return null; writers accept null or omission).
 */
export interface MetricRow {
  /** Training step the row describes (for eval rows: the step after which evaluation ran). */
  step: number;
  epoch: number;
  kind: 'step' | 'eval';
  /** Learning rate used for this step (column `lr`). */
  lr?: number | null;
  /** Loss of the training batch before the update (column `train_loss`). */
  trainLoss?: number | null;
  /** Hash identifying the batch's examples (column `batch_hash`). */
  batchHash?: string | null;
  /** Loss over the (evaluation subset of the) training set (column `train_eval_loss`). */
  trainEvalLoss?: number | null;
  /** Accuracy on the training set (column `train_acc`). */
  trainAcc?: number | null;
  /** Loss on the test set (column `test_loss`). */
  testLoss?: number | null;
  /** Accuracy on the test set (column `test_acc`). */
  testAcc?: number | null;
}

/**
 * One row of `diagnostics.arrow` (long form): a value measured on the state after `step` updates.
 * Which metrics exist and what `layer` and `rank` mean is up to the writer (train/diagnostics.ts).
 */
export interface DiagnosticRow {
  /** Updates done when measured. */
  step: number;
  /** `step / stepsPerEpoch`. */
  epoch: number;
  metric: string;
  /** Hidden layer or tensor the value belongs to; null for whole-network values. */
  layer: string | null;
  /** 0-based rank of an eigenvalue (largest first); null otherwise. */
  rank: number | null;
  /** Number of examples the value was computed on; null when it uses no data (weight norms). */
  examples: number | null;
  value: number;
}

/** Split in-memory IPC stream bytes into messages (end-of-stream marker dropped). */
function splitMessages(bytes: Uint8Array): Uint8Array[] {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos + 8 <= bytes.length) {
    const metaLen = dv.getInt32(pos + 4, true);
    if (metaLen === 0) break;
    const { bodyLength } = parseMessageHeader(bytes.subarray(pos + 8, pos + 8 + metaLen));
    const end = pos + 8 + metaLen + bodyLength;
    out.push(bytes.subarray(pos, end));
    pos = end;
  }
  return out;
}

/** IPC messages (schema, then one record batch) for a batch. */
export function encodeBatch(batch: RecordBatch): { schema: Uint8Array; batch: Uint8Array } {
  const msgs = splitMessages(tableToIPC(new Table([batch]), 'stream'));
  if (msgs.length !== 2) throw new Error(`expected schema + 1 record batch, got ${msgs.length} messages`);
  return { schema: msgs[0]!, batch: msgs[1]! };
}

/** IPC bytes of a schema alone (a valid, empty stream without end-of-stream marker). */
export function encodeSchema(schema: Schema): Uint8Array {
  const msgs = splitMessages(tableToIPC(new Table(schema), 'stream'));
  return msgs[0]!;
}

/** Decode a schema message followed by record batch messages. */
export function decodeMessages(schema: Uint8Array, batches: Uint8Array[]): Table {
  const total = schema.length + batches.reduce((a, b) => a + b.length, 0);
  const buf = new Uint8Array(total);
  buf.set(schema, 0);
  let o = schema.length;
  for (const b of batches) {
    buf.set(b, o);
    o += b.length;
  }
  return tableFromIPC(buf);
}

function structBatch(schema: Schema, length: number, children: Data[]): RecordBatch {
  return new RecordBatch(
    schema,
    makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }),
  );
}

function int64Data(values: number[]): Data<Int64> {
  return makeData({ type: new Int64(), length: values.length, data: BigInt64Array.from(values, BigInt) });
}

/** A nullable integer column (Int32 or Int64). */
function intData(type: Int32 | Int64, values: (number | null)[]): Data {
  const data =
    type instanceof Int64
      ? BigInt64Array.from(values, (v) => BigInt(v ?? 0))
      : Int32Array.from(values, (v) => v ?? 0);
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  let nulls = 0;
  values.forEach((v, i) => {
    if (v === null) nulls++;
    else bitmap[i >> 3]! |= 1 << (i & 7);
  });
  return makeData({
    type,
    length: values.length,
    nullCount: nulls,
    data,
    ...(nulls > 0 ? { nullBitmap: bitmap } : {}),
  } as never);
}

function f64Data(values: (number | null | undefined)[]): Data<Float64> {
  const data = new Float64Array(values.length);
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  let nulls = 0;
  values.forEach((v, i) => {
    if (v === null || v === undefined) nulls++;
    else {
      data[i] = v;
      bitmap[i >> 3]! |= 1 << (i & 7);
    }
  });
  return makeData({
    type: new Float64(),
    length: values.length,
    nullCount: nulls,
    data,
    ...(nulls > 0 ? { nullBitmap: bitmap } : {}),
  });
}

function utf8Data(values: (string | null | undefined)[]): Data<Utf8> {
  const enc = new TextEncoder();
  const parts = values.map((v) => (v === null || v === undefined ? null : enc.encode(v)));
  const offsets = new Int32Array(values.length + 1);
  const bitmap = new Uint8Array((values.length + 7) >> 3);
  let nulls = 0;
  parts.forEach((p, i) => {
    if (p === null) nulls++;
    else bitmap[i >> 3]! |= 1 << (i & 7);
    offsets[i + 1] = offsets[i]! + (p?.length ?? 0);
  });
  const data = new Uint8Array(offsets[values.length]!);
  parts.forEach((p, i) => {
    if (p) data.set(p, offsets[i]!);
  });
  return makeData({
    type: new Utf8(),
    length: values.length,
    nullCount: nulls,
    valueOffsets: offsets,
    data,
    ...(nulls > 0 ? { nullBitmap: bitmap } : {}),
  });
}

function f32ListData(type: DataType, values: Float32Array): Data {
  const child = makeData({ type: type.children[0]!.type, length: values.length, data: values });
  return makeData({ type, length: 1, nullCount: 0, child } as never);
}

/** A one-row record batch holding a checkpoint. Throws on size mismatches. */
export function checkpointBatch(schema: Schema, meta: LayoutMeta, cp: Checkpoint): RecordBatch {
  if (cp.params.length !== meta.size) {
    throw new Error(`checkpoint has ${cp.params.length} parameters, layout has ${meta.size}`);
  }
  if (cp.opt.slots.length !== meta.slots) {
    throw new Error(`checkpoint has ${cp.opt.slots.length} optimizer slots, writer expects ${meta.slots}`);
  }
  cp.opt.slots.forEach((s, i) => {
    if (s.length !== meta.size)
      throw new Error(`optimizer slot ${i} has ${s.length} entries, expected ${meta.size}`);
  });
  const type = (name: string) => schema.fields.find((f) => f.name === name)!.type;
  const children: Data[] = [
    int64Data([cp.step]),
    f64Data([cp.epoch]),
    ...meta.tensors.map((t) => f32ListData(type(t.name), cp.params.slice(t.offset, t.offset + t.size))),
    int64Data([cp.opt.step]),
    ...cp.opt.slots.map((s, i) => f32ListData(type(slotColumn(i)), s.slice())),
  ];
  return structBatch(schema, 1, children);
}

/** A record batch holding metric rows. */
export function metricsBatch(schema: Schema, rows: readonly MetricRow[]): RecordBatch {
  for (const r of rows) {
    if (r.kind !== 'step' && r.kind !== 'eval')
      throw new Error(`metric row kind '${String(r.kind)}' is not 'step' or 'eval'`);
  }
  const children: Data[] = [
    int64Data(rows.map((r) => r.step)),
    f64Data(rows.map((r) => r.epoch)),
    utf8Data(rows.map((r) => r.kind)),
    f64Data(rows.map((r) => r.lr)),
    f64Data(rows.map((r) => r.trainLoss)),
    utf8Data(rows.map((r) => r.batchHash)),
    f64Data(rows.map((r) => r.trainEvalLoss)),
    f64Data(rows.map((r) => r.trainAcc)),
    f64Data(rows.map((r) => r.testLoss)),
    f64Data(rows.map((r) => r.testAcc)),
  ];
  return structBatch(schema, rows.length, children);
}

/** A record batch holding diagnostic rows. */
export function diagnosticsBatch(schema: Schema, rows: readonly DiagnosticRow[]): RecordBatch {
  const children: Data[] = [
    int64Data(rows.map((r) => r.step)),
    f64Data(rows.map((r) => r.epoch)),
    utf8Data(rows.map((r) => r.metric)),
    utf8Data(rows.map((r) => r.layer)),
    intData(
      new Int32(),
      rows.map((r) => r.rank),
    ),
    intData(
      new Int64(),
      rows.map((r) => r.examples),
    ),
    f64Data(rows.map((r) => r.value)),
  ];
  return structBatch(schema, rows.length, children);
}

/** Float32 entries of row `row` of a FixedSizeList<Float32> column chunk (a copy). */
function listRow(data: Data, row: number): Float32Array {
  const size = (data.type as unknown as { listSize: number }).listSize;
  const child = data.children[0]!;
  const start = child.offset + (data.offset + row) * size;
  return (child.values as Float32Array).slice(start, start + size);
}

function int64At(data: Data, row: number): number {
  return Number((data.values as BigInt64Array)[data.offset + row]);
}

/** Checkpoints in a decoded checkpoints table. */
export function checkpointsFromTable(table: Table, meta: LayoutMeta): Checkpoint[] {
  const out: Checkpoint[] = [];
  for (const batch of table.batches) {
    const col = (name: string) => batch.getChild(name)!.data[0]!;
    const step = col('step');
    const epoch = col('epoch');
    const optStep = col('opt.step');
    const tensors = meta.tensors.map((t) => col(t.name));
    const slots = Array.from({ length: meta.slots }, (_, i) => col(slotColumn(i)));
    for (let r = 0; r < batch.numRows; r++) {
      const params = new Float32Array(meta.size);
      meta.tensors.forEach((t, i) => params.set(listRow(tensors[i]!, r), t.offset));
      out.push({
        step: int64At(step, r),
        epoch: (epoch.values as Float64Array)[epoch.offset + r]!,
        params,
        opt: { step: int64At(optStep, r), slots: slots.map((s) => listRow(s, r)) },
      });
    }
  }
  return out;
}

/** Metric rows in a decoded metrics table; absent values are null. */
export function metricsFromTable(table: Table): MetricRow[] {
  const out: MetricRow[] = [];
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  const str = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
  for (const batch of table.batches) {
    const c = (name: string) => batch.getChild(name)!;
    const [step, epoch, kind, lr, tl, bh, tel, ta, tsl, tsa] = [
      'step',
      'epoch',
      'kind',
      'lr',
      'train_loss',
      'batch_hash',
      'train_eval_loss',
      'train_acc',
      'test_loss',
      'test_acc',
    ].map(c);
    for (let r = 0; r < batch.numRows; r++) {
      out.push({
        step: Number(step!.get(r)),
        epoch: Number(epoch!.get(r)),
        kind: kind!.get(r) as 'step' | 'eval',
        lr: num(lr!.get(r)),
        trainLoss: num(tl!.get(r)),
        batchHash: str(bh!.get(r)),
        trainEvalLoss: num(tel!.get(r)),
        trainAcc: num(ta!.get(r)),
        testLoss: num(tsl!.get(r)),
        testAcc: num(tsa!.get(r)),
      });
    }
  }
  return out;
}

/** Diagnostic rows in a decoded diagnostics table; `layer`, `rank` and `examples` may be null. */
export function diagnosticsFromTable(table: Table): DiagnosticRow[] {
  const out: DiagnosticRow[] = [];
  const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
  for (const batch of table.batches) {
    const c = (name: string) => batch.getChild(name)!;
    const [step, epoch, metric, layer, rank, examples, value] = [
      'step',
      'epoch',
      'metric',
      'layer',
      'rank',
      'examples',
      'value',
    ].map(c);
    for (let r = 0; r < batch.numRows; r++) {
      const l = layer!.get(r);
      out.push({
        step: Number(step!.get(r)),
        epoch: Number(epoch!.get(r)),
        metric: String(metric!.get(r)),
        layer: l === null || l === undefined ? null : String(l),
        rank: num(rank!.get(r)),
        examples: num(examples!.get(r)),
        value: Number(value!.get(r)),
      });
    }
  }
  return out;
}
