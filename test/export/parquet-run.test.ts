/** Parquet export of a run that trainRun wrote: the exported weights are the store's, bit for bit. */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { DuckDBInstance, type DuckDBListValue } from '@duckdb/node-api';
import { afterAll, expect, test } from 'vitest';
import { exportParquet } from '../../src/export/parquet.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints, readLayout, readMetrics } from '../../src/store/index.js';
import { trainRun } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-export-run-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

test('a trained run exports to Parquet with the store’s checkpoints and metrics', async () => {
  const dir = join(root, 'run');
  const spec = parseRunSpec({
    name: 'export-moons',
    seed: 0,
    data: { name: 'moons', n: 200, noise: 0.2, standardize: true },
    model: { kind: 'mlp', hidden: [8, 8], activation: 'relu' },
    loss: 'cross-entropy',
    optimizer: { kind: 'adam', lr: 0.01 },
    batchSize: 32,
    epochs: 3,
    checkpoints: { every: 5 },
  });
  await trainRun(spec, dir);
  const out = join(root, 'parquet');
  await exportParquet(dir, out);

  const instance = await DuckDBInstance.create(':memory:');
  const connection = await instance.connect();
  const rows = async (sql: string) => (await connection.runAndReadAll(sql)).getRows();
  try {
    const checkpoints = readCheckpoints(dir);
    expect(checkpoints.map((c) => c.step)).toEqual([0, 5, 10, 15]);
    // The flat parameter vector is the tensor columns concatenated in layout order.
    const tensorCols = readLayout(dir).layout.tensors.map((t) => t.name);
    expect(tensorCols).toHaveLength(6);
    const got = await rows(
      `SELECT step, "opt.step", ${tensorCols.map((c) => `"${c}"`).join(', ')}, "opt.slot0", "opt.slot1"
       FROM read_parquet('${join(out, 'checkpoints.parquet')}') ORDER BY step`,
    );
    expect(got.map((r) => Number(r[0]))).toEqual(checkpoints.map((c) => c.step));
    const f32 = (v: unknown) => new Float32Array((v as DuckDBListValue).items as number[]);
    const u32 = (a: Float32Array) => [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
    got.forEach((r, i) => {
      const c = checkpoints[i];
      if (!c) throw new Error(`no checkpoint ${i}`);
      expect(Number(r[1])).toBe(c.opt.step);
      const params = new Float32Array(tensorCols.flatMap((_, k) => [...f32(r[2 + k])]));
      expect(u32(params)).toEqual(u32(c.params));
      expect(u32(f32(r[2 + tensorCols.length]))).toEqual(u32(c.opt.slots[0] as Float32Array));
      expect(u32(f32(r[3 + tensorCols.length]))).toEqual(u32(c.opt.slots[1] as Float32Array));
    });

    const metrics = readMetrics(dir);
    const counts = await rows(
      `SELECT kind, count(*)::INTEGER FROM read_parquet('${join(out, 'metrics.parquet')}') GROUP BY kind ORDER BY kind`,
    );
    expect(counts).toEqual([
      ['eval', metrics.filter((m) => m.kind === 'eval').length],
      ['step', metrics.filter((m) => m.kind === 'step').length],
    ]);
  } finally {
    connection.closeSync();
    instance.closeSync();
  }
});
