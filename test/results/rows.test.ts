import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { expect, test } from 'vitest';
import { type ResultRow, readResults, writeResults } from '../../src/results/rows.js';
import { scratchDir } from '../helpers/scratch.js';

const rows: ResultRow[] = [
  {
    study: 's',
    runA: 'a',
    runB: 'b',
    step: 2 ** 40,
    metric: 'l2',
    layer: null,
    split: null,
    value: 0.125,
    options: {},
  },
  {
    study: 's',
    runA: 'a',
    runB: 'b',
    step: 100,
    metric: 'barrier.loss',
    layer: null,
    split: 'test',
    value: Math.LN2,
    options: { convention: 'linear', alphas: 11 },
  },
  {
    study: 's',
    runA: 'a',
    runB: null,
    step: 0,
    metric: 'cka',
    layer: 'dense1',
    split: 'test',
    value: 1,
    options: { kernel: 'rbf' },
  },
];

test('results round-trip exactly through an Arrow file with the documented columns', () => {
  const path = join(scratchDir('twinscope-results-'), 'results.arrow');
  writeResults(path, rows);
  expect(readResults(path)).toEqual(rows);
  const table = tableFromIPC(readFileSync(path));
  expect(table.schema.fields.map((f) => `${f.name}:${f.type}`)).toEqual([
    'study:Utf8',
    'run_a:Utf8',
    'run_b:Utf8',
    'step:Int64',
    'metric:Utf8',
    'layer:Utf8',
    'split:Utf8',
    'value:Float64',
    'options:Utf8',
  ]);
});

test('a file that is not Arrow is named in the error', () => {
  const path = join(scratchDir('twinscope-results-'), 'bad.arrow');
  writeFileSync(path, 'not arrow');
  expect(() => readResults(path)).toThrow(`${path}: not a readable Arrow IPC file`);
});
