import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataType, tableFromIPC } from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINTS_FILE,
  type Checkpoint,
  METRICS_FILE,
  openRunWriter,
  readCheckpointSteps,
  readCheckpoints,
  readLayout,
  readMetrics,
  StoreError,
  scanFile,
  verifyFiles,
} from '../../src/store/index.js';
import { bits, checkpoint, metricRows, sha, smallLayout, tempDir } from './helpers.js';

const layout = smallLayout();

function expectSameCheckpoint(a: Checkpoint, b: Checkpoint): void {
  expect(a.step).toBe(b.step);
  expect(a.epoch).toBe(b.epoch);
  expect(bits(a.params)).toEqual(bits(b.params));
  expect(a.opt.step).toBe(b.opt.step);
  expect(a.opt.slots.length).toBe(b.opt.slots.length);
  a.opt.slots.forEach((s, i) => expect(bits(s)).toEqual(bits(b.opt.slots[i]!)));
}

/** Write a run of `n` steps (checkpoint every step), optionally finalized. */
async function writeRun(dir: string, n: number, slots = 2, finalize = true) {
  const { writer, last } = await openRunWriter(dir, layout, slots);
  expect(last).toBeUndefined();
  const cps: Checkpoint[] = [];
  for (let s = 0; s < n; s++) {
    writer.appendMetrics(metricRows(s));
    const cp = checkpoint(layout, s, slots);
    writer.appendCheckpoint(cp);
    cps.push(cp);
  }
  const summary = finalize ? await writer.finalize() : undefined;
  if (!finalize) writer.close();
  return { cps, summary };
}

/** Run `fn`, expecting a StoreError whose message starts with `file` and matches `re`; returns it. */
function expectStoreError(fn: () => unknown, file: string, re: RegExp): StoreError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(StoreError);
    const err = e as StoreError;
    expect(err.message.startsWith(`${file}: `)).toBe(true);
    expect(err.message).toMatch(re);
    return err;
  }
  throw new Error('expected a StoreError');
}

describe('round trip', () => {
  it('stream (in progress) and finalized file are bit-exact', async () => {
    const dir = tempDir();
    const { cps } = await writeRun(dir, 5, 2, false);
    expect(scanFile(path.join(dir, CHECKPOINTS_FILE)).format).toBe('stream');
    const streamRead = readCheckpoints(dir, layout);
    expect(streamRead).toHaveLength(5);
    streamRead.forEach((c, i) => expectSameCheckpoint(c, cps[i]!));

    const { writer, last } = await openRunWriter(dir, layout, 2);
    expectSameCheckpoint(last!, cps[4]!);
    const summary = await writer.finalize();
    expect(scanFile(path.join(dir, CHECKPOINTS_FILE)).format).toBe('file');
    const fileRead = readCheckpoints(dir, layout);
    fileRead.forEach((c, i) => expectSameCheckpoint(c, cps[i]!));
    expect(readCheckpoints(dir)).toHaveLength(5); // layout from metadata
    expect(readCheckpointSteps(dir)).toEqual([0, 1, 2, 3, 4]);
    expect(readLayout(dir).layout.tensors.map((t) => t.name)).toEqual(layout.tensors.map((t) => t.name));
    expect(readLayout(dir).slotCount).toBe(2);

    // Reopening at checkpoint 4 drops the step row of step 4: it records the update *from* checkpoint 4,
    // which a resumed run replays (see test/store/resume-metrics.test.ts).
    const metrics = readMetrics(dir);
    expect(metrics).toHaveLength(4 + 3);
    expect(metrics[0]).toEqual({
      step: 0,
      epoch: 0,
      kind: 'step',
      lr: 0.1,
      trainLoss: 2,
      batchHash: 'h0',
      trainEvalLoss: null,
      trainAcc: null,
      testLoss: null,
      testAcc: null,
    });
    expect(metrics[1]).toMatchObject({ kind: 'eval', step: 0, lr: null, batchHash: null, testAcc: 0.45 });

    expect(summary[CHECKPOINTS_FILE]!.rows).toBe(5);
    expect(summary[METRICS_FILE]!.rows).toBe(7);
    expect(summary[CHECKPOINTS_FILE]!.sha256).toBe(sha(path.join(dir, CHECKPOINTS_FILE)));
    expect(summary[METRICS_FILE]!.bytes).toBe(fs.statSync(path.join(dir, METRICS_FILE)).size);
    expect(verifyFiles(dir, summary)).toEqual({ ok: true, problems: [] });
    expect(verifyFiles(dir)).toEqual({ ok: true, problems: [] });
  });

  it('finalized files open with tableFromIPC and have the documented schema', async () => {
    const dir = tempDir();
    await writeRun(dir, 3, 1);
    const ck = tableFromIPC(fs.readFileSync(path.join(dir, CHECKPOINTS_FILE)));
    expect(ck.numRows).toBe(3);
    expect(ck.schema.fields.map((f) => f.name)).toEqual([
      'step',
      'epoch',
      'dense0.weight',
      'dense0.bias',
      'dense1.weight',
      'opt.step',
      'opt.slot0',
    ]);
    expect(String(ck.schema.fields[0]!.type)).toBe('Int64');
    expect(String(ck.schema.fields[1]!.type)).toBe('Float64');
    const w = ck.schema.fields[2]!.type;
    expect(DataType.isFixedSizeList(w) && w.listSize).toBe(12);
    expect(String(w)).toBe('FixedSizeList[12]<Float32>');
    const slot = ck.schema.fields[6]!.type;
    expect(DataType.isFixedSizeList(slot) && slot.listSize).toBe(layout.size);
    expect(ck.schema.metadata.get('twinscope.format')).toBe('1');
    const meta = JSON.parse(ck.schema.metadata.get('twinscope.layout')!);
    expect(meta.tensors[0]).toMatchObject({
      name: 'dense0.weight',
      shape: [4, 3],
      initStd: Math.sqrt(2 / 3),
    });
    expect(meta.slots).toBe(1);

    const m = tableFromIPC(fs.readFileSync(path.join(dir, METRICS_FILE)));
    expect(m.schema.fields.map((f) => `${f.name}:${f.type}:${f.nullable}`)).toEqual([
      'step:Int64:false',
      'epoch:Float64:false',
      'kind:Utf8:false',
      'lr:Float64:true',
      'train_loss:Float64:true',
      'batch_hash:Utf8:true',
      'train_eval_loss:Float64:true',
      'train_acc:Float64:true',
      'test_loss:Float64:true',
      'test_acc:Float64:true',
    ]);
    expect(m.getChild('kind')!.toArray()).toEqual(['step', 'eval', 'step', 'step', 'eval']);
  });

  it('handles a run with no metrics and no optimizer slots', async () => {
    const dir = tempDir();
    const { writer } = await openRunWriter(dir, layout, 0);
    const cp = checkpoint(layout, 0, 0);
    writer.appendCheckpoint(cp);
    const summary = await writer.finalize();
    expect(summary[METRICS_FILE]!.rows).toBe(0);
    expect(readMetrics(dir)).toEqual([]);
    expectSameCheckpoint(readCheckpoints(dir, layout)[0]!, cp);
    expect(verifyFiles(dir, summary).ok).toBe(true);
    expect(() => writer.appendCheckpoint(cp)).toThrow(StoreError);
  });

  it('rejects checkpoints that do not fit the layout', async () => {
    const dir = tempDir();
    const { writer } = await openRunWriter(dir, layout, 1);
    const cp = checkpoint(layout, 0, 1);
    expect(() => writer.appendCheckpoint({ ...cp, params: new Float32Array(3) })).toThrow(/3 parameters/);
    expect(() => writer.appendCheckpoint({ ...cp, opt: { step: 0, slots: [] } })).toThrow(
      /0 optimizer slots/,
    );
    writer.close();
  });
});

describe('resume', () => {
  it('recovers the last complete checkpoint after a torn append and truncates', async () => {
    const dir = tempDir();
    const { cps } = await writeRun(dir, 4, 2, false);
    const ckPath = path.join(dir, CHECKPOINTS_FILE);
    const goodSize = fs.statSync(ckPath).size;
    // A crash in the middle of appending checkpoint 4 (after its metric rows went out).
    const { writer: w1 } = await openRunWriter(dir, layout, 2);
    w1.appendMetrics(metricRows(4));
    w1.appendCheckpoint(checkpoint(layout, 4, 2));
    w1.close();
    const full = fs.statSync(ckPath).size;
    // Cut inside the header first (message length not yet known), then inside the body.
    fs.truncateSync(ckPath, goodSize + 100);
    expectStoreError(
      () => readCheckpoints(dir, layout, { strict: true }),
      CHECKPOINTS_FILE,
      new RegExp(
        `^checkpoints\\.arrow: truncated record batch at byte ${goodSize}: its header needs bytes up to \\d+ \\(file ends at ${goodSize + 100}\\)$`,
      ),
    );
    fs.truncateSync(ckPath, full - 50);
    const tornSize = fs.statSync(ckPath).size;

    // Readers tolerate and report the torn tail, and do not touch the file.
    const before = sha(ckPath);
    const reported: StoreError[] = [];
    const read = readCheckpoints(dir, layout, { onTorn: (e) => reported.push(e) });
    expect(read).toHaveLength(4);
    expect(reported[0]!.message).toMatch(
      new RegExp(
        `^checkpoints\\.arrow: truncated record batch at byte ${goodSize}: needs bytes up to ${full} \\(file ends at ${tornSize}\\)$`,
      ),
    );
    expectStoreError(
      () => readCheckpoints(dir, layout, { strict: true }),
      CHECKPOINTS_FILE,
      /truncated record batch/,
    );
    expect(verifyFiles(dir).problems[0]).toMatch(/^checkpoints\.arrow: truncated record batch/);
    expect(sha(ckPath)).toBe(before);
    expect(fs.statSync(ckPath).size).toBe(tornSize);

    // Resume: truncate to the last complete batch; step rows from step 3 on and eval rows past 3 are dropped.
    const { writer, last } = await openRunWriter(dir, layout, 2);
    expectSameCheckpoint(last!, cps[3]!);
    expect(fs.statSync(ckPath).size).toBe(goodSize);
    expect(readMetrics(dir).map((r) => r.step)).toEqual([0, 0, 1, 2, 2]);
    writer.appendMetrics(metricRows(4));
    const cp4 = checkpoint(layout, 4, 2);
    writer.appendCheckpoint(cp4);
    const summary = await writer.finalize();
    const all = readCheckpoints(dir, layout);
    expect(all.map((c) => c.step)).toEqual([0, 1, 2, 3, 4]);
    expectSameCheckpoint(all[4]!, cp4);
    expect(summary[METRICS_FILE]!.rows).toBe(7);
    expect(verifyFiles(dir, summary).ok).toBe(true);
  });

  it('drops metric rows past the last checkpoint within a batch, and all rows without a checkpoint', async () => {
    const dir = tempDir();
    const { writer } = await openRunWriter(dir, layout, 1);
    writer.appendMetrics([...metricRows(0), ...metricRows(1), ...metricRows(2)]);
    writer.appendCheckpoint(checkpoint(layout, 1, 1));
    writer.appendMetrics(metricRows(3));
    writer.close();
    const { writer: w2, last } = await openRunWriter(dir, layout, 1);
    expect(last!.step).toBe(1);
    expect(readMetrics(dir).map((r) => `${r.kind}${r.step}`)).toEqual(['step0', 'eval0']);
    w2.close();

    const dir2 = tempDir();
    const { writer: w3 } = await openRunWriter(dir2, layout, 1);
    w3.appendMetrics(metricRows(0));
    w3.close();
    const { writer: w4, last: none } = await openRunWriter(dir2, layout, 1);
    expect(none).toBeUndefined();
    expect(readMetrics(dir2)).toEqual([]);
    w4.close();
  });

  it('reopens a finalized run as a stream and keeps appending', async () => {
    const dir = tempDir();
    const { cps } = await writeRun(dir, 2, 2, true);
    const { writer, last } = await openRunWriter(dir, layout, 2);
    expectSameCheckpoint(last!, cps[1]!);
    expect(scanFile(path.join(dir, CHECKPOINTS_FILE)).format).toBe('stream');
    writer.appendCheckpoint(checkpoint(layout, 2, 2));
    await writer.finalize();
    expect(readCheckpoints(dir, layout).map((c) => c.step)).toEqual([0, 1, 2]);
  });

  it('refuses to resume with a different layout or slot count', async () => {
    const dir = tempDir();
    await writeRun(dir, 1, 2, false);
    const other = {
      ...layout,
      tensors: layout.tensors.map((t, i) => (i === 0 ? { ...t, name: 'x.weight' } : t)),
    };
    await expect(openRunWriter(dir, other, 2)).rejects.toThrow(/^checkpoints\.arrow: layout in file differs/);
    await expect(openRunWriter(dir, layout, 1)).rejects.toThrow(
      /^checkpoints\.arrow: file has 2 optimizer slots/,
    );
    expectStoreError(() => readCheckpoints(dir, other), CHECKPOINTS_FILE, /layout in file differs/);
  });
});

describe('corruption', () => {
  async function finalizedRun() {
    const dir = tempDir();
    const { summary } = await writeRun(dir, 3, 2, true);
    return { dir, summary: summary! };
  }

  it('truncated finalized file: clear error naming the file, file unchanged', async () => {
    const { dir, summary } = await finalizedRun();
    const ck = path.join(dir, CHECKPOINTS_FILE);
    fs.truncateSync(ck, fs.statSync(ck).size - 100);
    const before = sha(ck);
    const size = fs.statSync(ck).size;
    expectStoreError(() => readCheckpoints(dir), CHECKPOINTS_FILE, /missing trailing ARROW1 magic|truncated/);
    const v = verifyFiles(dir, summary);
    expect(v.ok).toBe(false);
    expect(v.problems[0]).toMatch(/^checkpoints\.arrow: /);
    await expect(openRunWriter(dir, layout, 2)).rejects.toThrow(/^checkpoints\.arrow: /);
    expect(sha(ck)).toBe(before);
    expect(fs.statSync(ck).size).toBe(size);
  });

  it('truncated mid-batch finalized file reports the truncated record batch', async () => {
    const { dir } = await finalizedRun();
    const ck = path.join(dir, CHECKPOINTS_FILE);
    const scan = scanFile(ck);
    const b = scan.batches[1]!;
    fs.truncateSync(ck, b.end - 20);
    expectStoreError(
      () => readCheckpoints(dir),
      CHECKPOINTS_FILE,
      new RegExp(
        `truncated record batch at byte ${b.offset}: needs bytes up to ${b.end} \\(file ends at ${b.end - 20}\\)`,
      ),
    );
  });

  it('bit flip inside a data buffer: verifyFiles checksum catches it, file unchanged', async () => {
    const { dir, summary } = await finalizedRun();
    const ck = path.join(dir, CHECKPOINTS_FILE);
    const b = scanFile(ck).batches[1]!;
    const bytes = fs.readFileSync(ck);
    const at = b.end - 16; // inside the last buffer of the body (an optimizer slot's values)
    bytes[at]! ^= 0x40;
    fs.writeFileSync(ck, bytes);
    const before = sha(ck);
    const v = verifyFiles(dir, summary);
    expect(v.ok).toBe(false);
    expect(v.problems).toHaveLength(1);
    expect(v.problems[0]).toMatch(
      /^checkpoints\.arrow: sha256 [0-9a-f]{64} does not match the recorded [0-9a-f]{64}/,
    );
    expect(sha(ck)).toBe(before);
  });

  it('bit flips in headers: clear errors naming the file, file unchanged', async () => {
    const { dir, summary } = await finalizedRun();
    const m = path.join(dir, METRICS_FILE);
    const orig = fs.readFileSync(m);
    const firstBatch = scanFile(m).batches[0]!.offset;
    const cases: [string, (b: Buffer) => void, RegExp][] = [
      ['magic', (b) => (b[0]! ^= 0xff), /not an Arrow IPC file or stream/],
      ['message marker', (b) => (b[firstBatch]! ^= 0x01), /invalid message marker 0xfffffffe at byte \d+/],
      [
        'metadata length',
        (b) => (b[firstBatch + 7]! ^= 0x40),
        /truncated record batch at byte \d+|invalid message/,
      ],
      ['trailing magic', (b) => (b[b.length - 1]! ^= 0x01), /missing trailing ARROW1 magic/],
    ];
    for (const [what, flip, re] of cases) {
      const bytes = Buffer.from(orig);
      flip(bytes);
      fs.writeFileSync(m, bytes);
      const before = sha(m);
      expectStoreError(() => readMetrics(dir), METRICS_FILE, re);
      const v = verifyFiles(dir, summary);
      expect(v.ok, what).toBe(false);
      expect(v.problems[0], what).toMatch(re);
      expect(v.problems[0]!.startsWith('metrics.arrow: '), what).toBe(true);
      expect(sha(m), what).toBe(before);
    }
  });

  it('schema changes (missing, renamed, resized columns) produce clear errors naming the file', async () => {
    const { dir } = await finalizedRun();
    const ck = path.join(dir, CHECKPOINTS_FILE);
    const table = tableFromIPC(fs.readFileSync(ck));
    const { Table, tableToIPC, Schema, Field, FixedSizeList, Float32, makeData, RecordBatch, Struct } =
      await import('apache-arrow');
    const rewrite = (schema: InstanceType<typeof Schema>, cols: string[], replace?: Map<string, unknown>) => {
      const batches = table.batches.map((b) => {
        const children = cols.map((c) => (replace?.get(c) as never) ?? b.getChild(c)!.data[0]!);
        return new RecordBatch(
          schema,
          makeData({ type: new Struct(schema.fields), length: b.numRows, nullCount: 0, children }),
        );
      });
      fs.writeFileSync(ck, tableToIPC(new Table(batches), 'file'));
      return sha(ck);
    };
    const fields = table.schema.fields;
    const check = (re: RegExp) => {
      const before = sha(ck);
      expectStoreError(() => readCheckpoints(dir), CHECKPOINTS_FILE, re);
      const v = verifyFiles(dir);
      expect(v.ok).toBe(false);
      expect(v.problems[0]).toMatch(re);
      expect(sha(ck)).toBe(before);
    };

    // Missing column.
    const noEpoch = fields.filter((f) => f.name !== 'epoch');
    rewrite(
      new Schema(noEpoch, table.schema.metadata),
      noEpoch.map((f) => f.name),
    );
    check(/^checkpoints\.arrow: missing column 'epoch' \(Float64\)$/);

    // Renamed column.
    const renamed = fields.map((f) => (f.name === 'dense0.bias' ? new Field('dense0.b', f.type, false) : f));
    const cols = fields.map((f) => f.name);
    {
      const batches = table.batches.map((b) => {
        const s = new Schema(renamed, table.schema.metadata);
        return new RecordBatch(
          s,
          makeData({
            type: new Struct(s.fields),
            length: b.numRows,
            nullCount: 0,
            children: cols.map((c) => b.getChild(c)!.data[0]!),
          }),
        );
      });
      fs.writeFileSync(ck, tableToIPC(new Table(batches), 'file'));
    }
    check(/^checkpoints\.arrow: missing column 'dense0\.bias' \(FixedSizeList<Float32>\)$/);

    // List size differs from the layout metadata (dense0.weight 10 instead of 12).
    const t10 = new FixedSizeList(10, new Field('item', new Float32(), false));
    const resized = fields.map((f) =>
      f.name === 'dense0.weight' ? new Field('dense0.weight', t10, false) : f,
    );
    {
      const batches = table.batches.map((b) => {
        const s = new Schema(resized, table.schema.metadata);
        const w = makeData({
          type: t10,
          length: b.numRows,
          nullCount: 0,
          child: makeData({
            type: new Float32(),
            length: 10 * b.numRows,
            data: new Float32Array(10 * b.numRows),
          }),
        });
        const children = cols.map((c) => (c === 'dense0.weight' ? w : b.getChild(c)!.data[0]!));
        return new RecordBatch(
          s,
          makeData({ type: new Struct(s.fields), length: b.numRows, nullCount: 0, children }),
        );
      });
      fs.writeFileSync(ck, tableToIPC(new Table(batches), 'file'));
    }
    check(/^checkpoints\.arrow: column 'dense0\.weight' has list size 10, schema metadata says 12$/);

    // Format version missing.
    rewrite(
      new Schema(fields, new Map([...table.schema.metadata].filter(([k]) => k !== 'twinscope.format'))),
      cols,
    );
    check(/^checkpoints\.arrow: schema metadata 'twinscope\.format' is missing$/);
  });

  it('a non-Arrow file is reported as such', async () => {
    const dir = tempDir();
    await writeRun(dir, 1, 0, true);
    fs.writeFileSync(path.join(dir, METRICS_FILE), 'step,epoch\n0,0\n');
    expectStoreError(
      () => readMetrics(dir),
      METRICS_FILE,
      /^metrics\.arrow: not an Arrow IPC file or stream$/,
    );
    expect(verifyFiles(dir).problems).toEqual(['metrics.arrow: not an Arrow IPC file or stream']);
  });
});
