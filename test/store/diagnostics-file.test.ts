/**
 * diagnostics.arrow in the run store: written only when asked for, round-tripped with its nulls,
 * recovered after a crash (torn tail, rows measured after the last checkpoint) and finalized with
 * the other files.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { expect, test } from 'vitest';
import {
  type DiagnosticRow,
  openRunWriter,
  readDiagnosticRows,
  StoreError,
  verifyFiles,
} from '../../src/store/index.js';
import { checkpoint, smallLayout, tempDir } from './helpers.js';

const rows = (step: number): DiagnosticRow[] => [
  {
    step,
    epoch: step / 7,
    metric: 'grad_norm',
    layer: null,
    rank: null,
    examples: 100,
    value: 1 / (step + 1),
  },
  {
    step,
    epoch: step / 7,
    metric: 'weight_norm',
    layer: 'dense0.weight',
    rank: null,
    examples: null,
    value: 2,
  },
  { step, epoch: step / 7, metric: 'eigenvalue', layer: null, rank: 1, examples: 64, value: Number.NaN },
];

test('no diagnostics.arrow unless asked for; rows round-trip with their nulls and NaN', async () => {
  const layout = smallLayout();
  const plain = tempDir();
  const { writer } = await openRunWriter(plain, layout, 0);
  expect(writer.hasDiagnostics).toBe(false);
  expect(() => writer.appendDiagnostics(rows(0))).toThrow(StoreError);
  expect(Object.keys(await writer.finalize())).toEqual(['checkpoints.arrow', 'metrics.arrow']);
  expect(existsSync(join(plain, 'diagnostics.arrow'))).toBe(false);

  const dir = tempDir();
  const opened = await openRunWriter(dir, layout, 0, { diagnostics: true });
  opened.writer.appendDiagnostics(rows(0));
  opened.writer.appendCheckpoint(checkpoint(layout, 0, 0));
  const files = await opened.writer.finalize();
  expect(Object.keys(files)).toEqual(['checkpoints.arrow', 'metrics.arrow', 'diagnostics.arrow']);
  expect(files['diagnostics.arrow']?.rows).toBe(3);
  expect(readDiagnosticRows(dir)).toEqual(rows(0));
  expect(verifyFiles(dir, files).ok).toBe(true);
  // An Arrow IPC file any reader opens: the schema's kind and column types.
  const table = tableFromIPC(readFileSync(join(dir, 'diagnostics.arrow')));
  expect(table.schema.metadata.get('twinscope.kind')).toBe('diagnostics');
  expect(table.schema.fields.map((f) => `${f.name}:${f.type}`)).toEqual([
    'step:Int64',
    'epoch:Float64',
    'metric:Utf8',
    'layer:Utf8',
    'rank:Int32',
    'examples:Int64',
    'value:Float64',
  ]);
});

test('after a crash: a torn tail and the rows measured after the last checkpoint are dropped', async () => {
  const layout = smallLayout();
  const dir = tempDir();
  const first = await openRunWriter(dir, layout, 0, { diagnostics: true });
  first.writer.appendDiagnostics(rows(0));
  first.writer.appendCheckpoint(checkpoint(layout, 0, 0));
  first.writer.appendDiagnostics([...rows(5), ...rows(10)]);
  first.writer.appendCheckpoint(checkpoint(layout, 10, 0));
  // Crash after the rows of step 15 and 20 were written but before checkpoint 20, mid-append.
  first.writer.appendDiagnostics([...rows(15), ...rows(20)]);
  first.writer.close();
  appendFileSync(join(dir, 'diagnostics.arrow'), Buffer.from([0xff, 0xff, 0xff, 0xff, 8, 0, 0]));

  const second = await openRunWriter(dir, layout, 0, { diagnostics: true });
  expect(second.last?.step).toBe(10);
  expect([...new Set(readDiagnosticRows(dir, { strict: true }).map((r) => r.step))]).toEqual([0, 5, 10]);
  // Replaying gives every step once.
  second.writer.appendDiagnostics([...rows(15), ...rows(20)]);
  second.writer.appendCheckpoint(checkpoint(layout, 20, 0));
  await second.writer.finalize();
  expect([...new Set(readDiagnosticRows(dir).map((r) => r.step))]).toEqual([0, 5, 10, 15, 20]);
});
