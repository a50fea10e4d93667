/**
 * Data validated once (validateDataset, called by loadDataset): non-finite features, fewer than two
 * classes in the train split, labels beyond `classes`, duplicate, missing and null columns in Arrow
 * files; each a DataError (bad input) naming the file or split, the row and the column.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  makeData,
  RecordBatch,
  Schema,
  Struct,
  Table,
  tableToIPC,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/check.js';
import { loadDataset } from '../../src/data/load.js';
import type { ArrowSpec, Dataset } from '../../src/data/types.js';
import { validateDataset } from '../../src/data/validate.js';
import { InputError } from '../../src/util/errors.js';
import { scratchDir } from '../helpers/scratch.js';

const dir = scratchDir('twinscope-validate-');

const features = (rows: number[][], type: Float32 | Float64 = new Float32()) =>
  vectorFromArray(rows, new FixedSizeList(rows[0]?.length ?? 1, new Field('item', type)));

/** An Arrow IPC file of `columns` (a name may repeat) in the test folder. */
function write(name: string, columns: [string, Vector][]): string {
  const fields = columns.map(([n, v]) => new Field(n, v.type, v.nullCount > 0));
  const data = makeData({
    type: new Struct(fields),
    length: columns[0]?.[1].length ?? 0,
    nullCount: 0,
    children: columns.map(([, v]) => v.data[0] as NonNullable<(typeof v.data)[0]>),
  });
  const path = join(dir, name);
  writeFileSync(path, tableToIPC(new Table([new RecordBatch(new Schema(fields), data)]), 'file'));
  return path;
}

/** 10 rows of 3 features, labels alternating 0 / 1; `edit` changes them first. */
function table(name: string, edit: (rows: number[][], labels: number[]) => void = () => {}) {
  const rows = Array.from({ length: 10 }, (_, i) => [i, i + 0.5, -i]);
  const labels = rows.map((_, i) => i % 2);
  edit(rows, labels);
  return write(name, [
    ['x', features(rows)],
    ['y', vectorFromArray(labels, new Int32())],
  ]);
}

const arrow = (path: string, extra: Partial<ArrowSpec> = {}): ArrowSpec => ({
  name: 'arrow',
  path,
  features: 'x',
  label: 'y',
  ...extra,
});

/** The DataError loading `spec` throws (failing the test when it loads). */
function dataError(spec: ArrowSpec): DataError {
  try {
    loadDataset(spec, 0);
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    expect(e).toBeInstanceOf(InputError);
    return e as DataError;
  }
  throw new Error('loaded without an error');
}

describe('Arrow files: each problem a DataError naming file, row and column', () => {
  it('loads a good file', () => {
    const d = loadDataset(arrow(table('good.arrow'), { testFraction: 0.2 }), 0);
    expect(d.train.n + d.test.n).toBe(10);
  });

  it.each([
    ['NaN', Number.NaN, 'NaN'],
    ['Infinity', Number.POSITIVE_INFINITY, 'Infinity'],
    ['-Infinity', Number.NEGATIVE_INFINITY, '-Infinity'],
  ])('a %s feature', (_what, value, shown) => {
    const path = table(`bad-${shown}.arrow`, (rows) => {
      (rows[7] as number[])[2] = value;
    });
    expect(dataError(arrow(path)).message).toBe(
      `arrow file '${path}', column 'x': row 7, feature 2 is ${shown}`,
    );
  });

  it('a Float64 feature beyond the float32 range', () => {
    const rows = Array.from({ length: 4 }, (_, i) => [i, i]);
    (rows[3] as number[])[0] = 1e300;
    const path = write('huge.arrow', [
      ['x', features(rows, new Float64())],
      ['y', vectorFromArray([0, 1, 0, 1], new Int32())],
    ]);
    expect(dataError(arrow(path)).message).toBe(
      `arrow file '${path}', column 'x': row 3, feature 0 is 1e+300 (beyond the float32 range)`,
    );
  });

  it('labels all 0: fewer than two classes', () => {
    const path = table('one-class.arrow', (_rows, labels) => labels.fill(0));
    expect(dataError(arrow(path, { testFraction: 0.2 })).message).toBe(
      'data: the train split has examples of class 0 only (8 examples); a classifier needs at least two classes',
    );
    // With classes declared: the same.
    expect(dataError(arrow(path, { classes: 2 })).message).toMatch(/class 0 only/);
  });

  it('a label beyond classes (train file, then test file)', () => {
    const path = table('label-5.arrow', (_rows, labels) => {
      labels[4] = 5;
    });
    expect(dataError(arrow(path, { classes: 3 })).message).toBe(
      `arrow file '${path}', column 'y': row 4 has label 5, beyond data.classes = 3 (labels 0 to 2)`,
    );
    const good = table('good-train.arrow');
    expect(dataError(arrow(good, { classes: 2, testPath: path })).message).toMatch(
      new RegExp(`^arrow file '${path}', column 'y': row 4 has label 5, beyond data.classes = 2`),
    );
  });

  it('a duplicated column', () => {
    const rows = [
      [1, 2],
      [3, 4],
    ];
    const path = write('dup.arrow', [
      ['x', features(rows)],
      ['y', vectorFromArray([0, 1], new Int32())],
      ['y', vectorFromArray([1, 0], new Int32())],
    ]);
    expect(dataError(arrow(path)).message).toBe(`arrow file '${path}': column 'y' appears 2 times`);
  });

  it('a missing column', () => {
    const path = table('missing.arrow');
    expect(dataError(arrow(path, { label: 'class' })).message).toBe(
      `arrow file '${path}': no column 'class' (has x, y)`,
    );
  });

  it('null feature values', () => {
    const rows = [
      [1, null],
      [3, 4],
    ] as unknown as number[][];
    const path = write('nulls.arrow', [
      ['x', features(rows)],
      ['y', vectorFromArray([0, 1], new Int32())],
    ]);
    expect(dataError(arrow(path)).message).toBe(
      `arrow file '${path}', column 'x': expected no null feature values, found 1`,
    );
  });

  it('a file that is not Arrow', () => {
    const path = join(dir, 'text.arrow');
    writeFileSync(path, 'not arrow');
    expect(dataError(arrow(path)).message).toMatch(
      new RegExp(`^arrow file '${path}': not a readable Arrow IPC file`),
    );
  });
});

describe('validateDataset', () => {
  const base = (): Dataset => ({
    name: 'made',
    inputDim: 2,
    outputDim: 2,
    task: 'classification',
    train: { x: Float32Array.from([0, 1, 2, 3, 4, 5]), y: Float32Array.from([1, 0, 0, 1, 1, 0]), n: 3 },
    test: { x: Float32Array.from([0, 1]), y: Float32Array.from([0, 1]), n: 1 },
    meta: {},
  });

  it('accepts a good dataset', () => {
    expect(() => validateDataset(base())).not.toThrow();
  });

  it('names split, row and feature of a non-finite input', () => {
    const d = base();
    d.train.x[5] = Number.NaN;
    expect(() => validateDataset(d)).toThrow(new DataError('data: train row 2, feature 1 is NaN'));
    const t = base();
    t.test.x[0] = Number.POSITIVE_INFINITY;
    expect(() => validateDataset(t)).toThrow(new DataError('data: test row 0, feature 0 is Infinity'));
  });

  it('names a non-finite regression target', () => {
    const d: Dataset = { ...base(), task: 'regression', outputDim: 1 };
    const r = {
      ...d,
      train: { ...d.train, y: Float32Array.from([1, Number.NaN, 2]) },
      test: { ...d.test, y: Float32Array.from([0]) },
    };
    expect(() => validateDataset(r)).toThrow(new DataError('data: train row 1, target 0 is NaN'));
  });

  it('labels beyond the classes and a single class', () => {
    const d = base();
    const labelled = { ...d, train: { ...d.train, labels: Int32Array.from([0, 1, 2]) } };
    expect(() => validateDataset(labelled)).toThrow(
      new DataError('data: train row 2 has label 2, beyond the 2 classes (labels 0 to 1)'),
    );
    const single = { ...d, train: { ...d.train, y: Float32Array.from([1, 0, 1, 0, 1, 0]) } };
    expect(() => validateDataset(single)).toThrow(
      /the train split has examples of class 0 only \(3 examples\)/,
    );
  });

  it('a split of the wrong shape', () => {
    const d = base();
    expect(() => validateDataset({ ...d, train: { ...d.train, n: 4 } })).toThrow(
      /the train split holds 6 inputs and 6 targets, expected 4 × 2 and 4 × 2/,
    );
  });
});
