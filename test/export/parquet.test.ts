/** Parquet export: Arrow run tables round-trip through DuckDB's Parquet writer value for value. */
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBListValue } from '@duckdb/node-api';
import {
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int64,
  makeData,
  makeVector,
  Schema,
  Table,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import { afterAll, describe, expect, test } from 'vitest';
import { exportParquet } from '../../src/export/parquet.js';
import { scratchDir } from '../helpers/scratch.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = scratchDir('twinscope-export-');
  dirs.push(d);
  return d;
}

/** A 2-3-2 layout: dense0.weight [3,2], dense0.bias [3], dense1.weight [2,3], dense1.bias [2]. */
const LAYOUT = [
  { name: 'dense0.weight', shape: [3, 2] },
  { name: 'dense0.bias', shape: [3] },
  { name: 'dense1.weight', shape: [2, 3] },
  { name: 'dense1.bias', shape: [2] },
];
const SIZE = LAYOUT.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);

function fixedSizeFloat32(rows: Float32Array[], n: number): Vector {
  const flat = new Float32Array(rows.length * n);
  rows.forEach((r, i) => flat.set(r, i * n));
  const type = new FixedSizeList(n, new Field('item', new Float32(), false));
  const child = makeData({ type: new Float32(), length: flat.length, data: flat });
  return makeVector(makeData({ type, length: rows.length, nullCount: 0, child }));
}

function float64Nullable(values: (number | null)[]): Vector {
  return vectorFromArray(values, new Float64());
}

/** Deterministic float32 values with awkward bit patterns (tiny, huge, -0, subnormal). */
function weights(seed: number, n: number): Float32Array {
  const w = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    w[i] = ((s / 2 ** 32) * 2 - 1) * 10 ** ((i % 7) - 3);
  }
  w[0] = -0;
  w[1] = 1.4e-45; // smallest subnormal
  w[2] = 3.4028234663852886e38; // largest float32
  return w;
}

function writeRun(dir: string) {
  const steps = [0n, 10n, 20n];
  const epochs = [0, 0.5, 1];
  const params = steps.map((_, i) => weights(7 + i, SIZE));
  const slot0 = steps.map((_, i) => weights(100 + i, SIZE));
  const slot1 = steps.map((_, i) => weights(200 + i, SIZE).map(Math.abs));
  const columns: Record<string, Vector> = {
    step: vectorFromArray(steps, new Int64()),
    epoch: vectorFromArray(epochs, new Float64()),
  };
  let offset = 0;
  for (const t of LAYOUT) {
    const size = t.shape.reduce((a, b) => a * b, 1);
    columns[t.name] = fixedSizeFloat32(
      params.map((p) => p.slice(offset, offset + size)),
      size,
    );
    offset += size;
  }
  columns['opt.step'] = vectorFromArray(steps, new Int64());
  columns['opt.slot0'] = fixedSizeFloat32(slot0, SIZE);
  columns['opt.slot1'] = fixedSizeFloat32(slot1, SIZE);
  const layoutJson = JSON.stringify({ size: SIZE, slots: 2, tensors: LAYOUT });
  const ckpt = new Table(columns);
  const ckptWithMeta = new Table(
    new Schema(
      ckpt.schema.fields,
      new Map([
        ['twinscope.format', '1'],
        ['twinscope.kind', 'checkpoints'],
        ['twinscope.layout', layoutJson],
      ]),
    ),
    ckpt.batches,
  );
  // Checkpoints in IPC file format (a finished run), metrics in stream format (a running one).
  writeFileSync(join(dir, 'checkpoints.arrow'), tableToIPC(ckptWithMeta, 'file'));

  const mSteps = [0n, 1n, 2n, 3n, 3n];
  // Column order and nullability as src/store/schema.ts's metricsSchema(): eval rows have no lr,
  // train_loss or batch_hash.
  const metrics = new Table({
    step: vectorFromArray(mSteps, new Int64()),
    epoch: vectorFromArray([0, 0, 0, 0, 0.75], new Float64()),
    kind: vectorFromArray(['step', 'step', 'step', 'step', 'eval'], new Utf8()),
    lr: float64Nullable([0.1, 0.1, 0.05, 0.05, null]),
    train_loss: float64Nullable([Math.LN2, 0.5123456789012345, 0.4, 1e-300, null]),
    batch_hash: vectorFromArray(['a1', 'b2', "c'3", '', null], new Utf8()),
    train_eval_loss: float64Nullable([null, null, null, null, 0.31]),
    train_acc: float64Nullable([null, null, null, null, 0.875]),
    test_loss: float64Nullable([null, null, null, null, 0.33]),
    test_acc: float64Nullable([null, null, null, null, 0.8125]),
  });
  writeFileSync(join(dir, 'metrics.arrow'), tableToIPC(metrics, 'stream'));
  return { steps, epochs, params, slot0, slot1, layoutJson, metrics };
}

/** A DuckDB FLOAT[] value as a Float32Array. */
function floats(value: unknown): Float32Array {
  return new Float32Array((value as DuckDBListValue).items as number[]);
}

const bits = (a: Float32Array) => Array.from(new Uint32Array(a.buffer, a.byteOffset, a.length));

async function query(sql: string) {
  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    return { names: reader.columnNames(), types: reader.columnTypes().map(String), rows: reader.getRows() };
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
}

describe('exportParquet', () => {
  test('checkpoints and metrics round-trip exactly through Parquet', async () => {
    const run = tempDir();
    const out = join(tempDir(), 'nested', 'export');
    const expected = writeRun(run);
    const result = await exportParquet(run, out);
    expect(result.files.map((f) => [f.table, f.rows])).toEqual([
      ['checkpoints', 3],
      ['metrics', 5],
    ]);
    expect(readdirSync(out).sort()).toEqual(['checkpoints.parquet', 'metrics.parquet']);

    const ckptPath = join(out, 'checkpoints.parquet');
    const ckpt = await query(`SELECT * FROM read_parquet('${ckptPath}') ORDER BY step`);
    expect(ckpt.names).toEqual([
      'step',
      'epoch',
      ...LAYOUT.map((t) => t.name),
      'opt.step',
      'opt.slot0',
      'opt.slot1',
    ]);
    expect(ckpt.types.slice(0, 3)).toEqual(['BIGINT', 'DOUBLE', 'FLOAT[]']);
    expect(ckpt.rows.map((r) => r[0])).toEqual(expected.steps);
    expect(ckpt.rows.map((r) => r[1])).toEqual(expected.epochs);
    ckpt.rows.forEach((row, i) => {
      const flat = new Float32Array(
        LAYOUT.flatMap((_, k) => (row[2 + k] as DuckDBListValue).items as number[]),
      );
      expect(bits(flat)).toEqual(bits(expected.params[i] as Float32Array));
      const s0 = floats(row[2 + LAYOUT.length + 1]);
      const s1 = floats(row[2 + LAYOUT.length + 2]);
      expect(bits(s0)).toEqual(bits(expected.slot0[i] as Float32Array));
      expect(bits(s1)).toEqual(bits(expected.slot1[i] as Float32Array));
    });

    const meta = await query(
      `SELECT decode(key) AS k, decode(value) AS v FROM parquet_kv_metadata('${ckptPath}') ORDER BY k`,
    );
    expect(meta.rows).toEqual([
      ['twinscope.format', '1'],
      ['twinscope.kind', 'checkpoints'],
      ['twinscope.layout', expected.layoutJson],
    ]);

    const metrics = await query(`SELECT * FROM read_parquet('${join(out, 'metrics.parquet')}')`);
    expect(metrics.names).toEqual(expected.metrics.schema.fields.map((f) => f.name));
    expect(metrics.types).toEqual([
      'BIGINT',
      'DOUBLE',
      'VARCHAR',
      'DOUBLE',
      'DOUBLE',
      'VARCHAR',
      'DOUBLE',
      'DOUBLE',
      'DOUBLE',
      'DOUBLE',
    ]);
    expect(metrics.rows).toEqual(expected.metrics.toArray().map((r) => Object.values(r.toJSON())));
    expect(metrics.rows[1]?.[4]).toBe(0.5123456789012345);
    expect(metrics.rows[4]?.slice(3)).toEqual([null, null, null, 0.31, 0.875, 0.33, 0.8125]);
  });

  test('defaults to the run directory, replaces earlier exports and leaves no temp files', async () => {
    const run = tempDir();
    writeRun(run);
    await exportParquet(run);
    await exportParquet(run);
    expect(readdirSync(run).sort()).toEqual([
      'checkpoints.arrow',
      'checkpoints.parquet',
      'metrics.arrow',
      'metrics.parquet',
    ]);
    const count = await query(`SELECT count(*) FROM read_parquet('${join(run, 'metrics.parquet')}')`);
    expect(count.rows).toEqual([[5n]]);
  });

  test("tensors longer than DuckDB's 100,000-element ARRAY limit export as lists", async () => {
    const run = tempDir();
    const big = weights(3, 150_000);
    const table = new Table({
      step: vectorFromArray([5n], new Int64()),
      'dense0.weight': fixedSizeFloat32([big], big.length),
    });
    writeFileSync(join(run, 'checkpoints.arrow'), tableToIPC(table, 'stream'));
    writeFileSync(
      join(run, 'metrics.arrow'),
      tableToIPC(new Table({ step: vectorFromArray([5n], new Int64()) }), 'file'),
    );
    await exportParquet(run);
    const got = await query(
      `SELECT "dense0.weight" FROM read_parquet('${join(run, 'checkpoints.parquet')}')`,
    );
    expect(bits(floats(got.rows[0]?.[0]))).toEqual(bits(big));
  });

  test('a missing Arrow file is an error that names it', async () => {
    const run = tempDir();
    await expect(exportParquet(run)).rejects.toThrow(/has no checkpoints\.arrow/);
  });
});
