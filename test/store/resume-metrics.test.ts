/**
 * Metric rows around a crash between appendMetrics and appendCheckpoint: the step row of step c is
 * the update *from* checkpoint c, so resuming at c must drop it (it is replayed), while the
 * evaluation row at c stays.
 */
import { expect, test } from 'vitest';
import { type MetricRow, openRunWriter, readMetrics } from '../../src/store/index.js';
import { checkpoint, smallLayout, tempDir } from './helpers.js';

const stepRows = (from: number, to: number): MetricRow[] =>
  Array.from({ length: to - from }, (_, k) => ({
    kind: 'step',
    step: from + k,
    epoch: 0,
    lr: 0.1,
    trainLoss: 1,
    batchHash: 'h',
  }));
const evalRow = (step: number): MetricRow => ({ kind: 'eval', step, epoch: 0, testLoss: 0.5 });

test('resume after a crash between metrics and checkpoint keeps exactly one row per step', async () => {
  const dir = tempDir();
  const layout = smallLayout();
  const first = await openRunWriter(dir, layout, 0);
  first.writer.appendMetrics([evalRow(0)]);
  first.writer.appendCheckpoint(checkpoint(layout, 0, 0));
  first.writer.appendMetrics([...stepRows(0, 10), evalRow(10)]);
  first.writer.appendCheckpoint(checkpoint(layout, 10, 0));
  // Crash here: the rows of steps 10..19 and the evaluation at 20 are written, checkpoint 20 is not.
  first.writer.appendMetrics([...stepRows(10, 20), evalRow(20)]);
  first.writer.close();

  const second = await openRunWriter(dir, layout, 0);
  expect(second.last?.step).toBe(10);
  const rows = readMetrics(dir);
  expect(rows.filter((r) => r.kind === 'step').map((r) => r.step)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  expect(rows.filter((r) => r.kind === 'eval').map((r) => r.step)).toEqual([0, 10]);
  // Replaying steps 10..19 then gives each step exactly once.
  second.writer.appendMetrics([...stepRows(10, 20), evalRow(20)]);
  second.writer.appendCheckpoint(checkpoint(layout, 20, 0));
  const steps = readMetrics(dir)
    .filter((r) => r.kind === 'step')
    .map((r) => r.step);
  expect(steps).toEqual(Array.from({ length: 20 }, (_, i) => i));
  second.writer.close();
});
