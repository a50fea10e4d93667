/** Classification tables from Arrow IPC files: a feature-vector column and an integer label column. */
import { readFileSync } from 'node:fs';
import { DataType, type Table, tableFromIPC } from 'apache-arrow';
import type { Rng } from '../rng/rng.js';
import { checkFraction, checkInt, DataError } from './check.js';
import { classificationSplit } from './rows.js';
import { splitIndices } from './split.js';
import type { ArrowSpec, Dataset, Split } from './types.js';

/** Features [n, dim] and labels read from one Arrow file. */
export interface ArrowExamples {
  readonly x: Float32Array;
  readonly labels: Int32Array;
  readonly dim: number;
}

function readTable(path: string): Table {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new DataError(`arrow file '${path}': cannot read (${(e as Error).message})`);
  }
  try {
    return tableFromIPC(bytes);
  } catch (e) {
    throw new DataError(`arrow file '${path}': not a readable Arrow IPC file (${(e as Error).message})`);
  }
}

/**
 * Read the `features` column (FixedSizeList<Float32|Float64> or List<Float32|Float64>, every row the
 * same length, no nulls, every value finite in float32) and the `label` column (integers ≥ 0, no
 * nulls) of an Arrow IPC file; each column must appear once. Problems are {@link DataError}s naming
 * the file, the column and the row.
 */
export function readArrowExamples(path: string, features: string, label: string): ArrowExamples {
  const table = readTable(path);
  const where = (col: string) => `arrow file '${path}', column '${col}'`;
  const column = (col: string) => {
    const copies = table.schema.fields.filter((f) => f.name === col).length;
    if (copies > 1) throw new DataError(`arrow file '${path}': column '${col}' appears ${copies} times`);
    const v = table.getChild(col);
    if (!v) {
      throw new DataError(
        `arrow file '${path}': no column '${col}' (has ${table.schema.fields.map((f) => f.name).join(', ')})`,
      );
    }
    if (v.nullCount > 0) throw new DataError(`${where(col)}: expected no nulls, found ${v.nullCount}`);
    return v;
  };
  const fv = column(features);
  const ft = fv.type;
  const isList = DataType.isFixedSizeList(ft) || DataType.isList(ft);
  const child = isList ? ft.children[0]?.type : undefined;
  if (!isList || !DataType.isFloat(child) || child.precision === 0) {
    throw new DataError(
      `${where(features)}: expected FixedSizeList<Float32|Float64> or List<Float32|Float64>, got ${ft}`,
    );
  }
  const values = fv.getChildAt(0);
  if (values && values.nullCount > 0)
    throw new DataError(`${where(features)}: expected no null feature values, found ${values.nullCount}`);
  const lv = column(label);
  if (!DataType.isInt(lv.type))
    throw new DataError(`${where(label)}: expected an integer type, got ${lv.type}`);

  const n = table.numRows;
  if (n === 0) throw new DataError(`arrow file '${path}': the table has no rows`);
  const dim = DataType.isFixedSizeList(ft)
    ? ft.listSize
    : ((fv.get(0) as { length: number }).length as number);
  if (dim < 1) throw new DataError(`${where(features)}: expected non-empty feature vectors`);
  const x = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = fv.get(i) as { length: number; toArray(): ArrayLike<number> };
    if (row.length !== dim) {
      throw new DataError(
        `${where(features)}: row ${i} has ${row.length} values, expected ${dim} like row 0`,
      );
    }
    const source = row.toArray();
    x.set(source, i * dim);
    for (let j = 0; j < dim; j++) {
      const v = x[i * dim + j] as number;
      if (v - v === 0) continue; // finite
      const raw = source[j] as number;
      const range = Number.isFinite(raw) ? ' (beyond the float32 range)' : '';
      throw new DataError(`${where(features)}: row ${i}, feature ${j} is ${raw}${range}`);
    }
    const c = Number(lv.get(i));
    if (!(c >= 0 && c <= 0x7fffffff))
      throw new DataError(`${where(label)}: row ${i} has label ${c}, expected an integer ≥ 0`);
    labels[i] = c;
  }
  return { x, labels, dim };
}

/**
 * The Arrow dataset of `spec`: train from `path` and test from `testPath`, or `path` split by
 * `testFraction` with `rng.stream('split')`. The class count is `classes` or the largest label + 1.
 */
export function loadArrow(spec: ArrowSpec, rng: Rng): Dataset {
  const train = readArrowExamples(spec.path, spec.features, spec.label);
  const test = spec.testPath ? readArrowExamples(spec.testPath, spec.features, spec.label) : undefined;
  if (test && test.dim !== train.dim) {
    throw new DataError(
      `arrow file '${spec.testPath}': features have ${test.dim} values, but '${spec.path}' has ${train.dim}`,
    );
  }
  const maxLabel = Math.max(
    ...[train, ...(test ? [test] : [])].map((p) => p.labels.reduce((m, c) => Math.max(m, c), 0)),
  );
  const classes = spec.classes === undefined ? maxLabel + 1 : checkInt('data.classes', spec.classes, 2);
  const parts: [string, ArrowExamples][] = [[spec.path, train]];
  if (test) parts.push([spec.testPath as string, test]);
  for (const [file, part] of parts) {
    const row = part.labels.findIndex((c) => c >= classes);
    if (row < 0) continue;
    throw new DataError(
      `arrow file '${file}', column '${spec.label}': row ${row} has label ${part.labels[row]}, beyond data.classes = ${classes} (labels 0 to ${classes - 1})`,
    );
  }
  let trainSplit: Split;
  let testSplit: Split;
  if (test) {
    trainSplit = classificationSplit(train.x, train.dim, train.labels, classes);
    testSplit = classificationSplit(test.x, test.dim, test.labels, classes);
  } else {
    const testFraction = checkFraction('data.testFraction', spec.testFraction ?? 0.2);
    const idx = splitIndices(train.labels.length, testFraction, rng.stream('split'));
    trainSplit = classificationSplit(train.x, train.dim, train.labels, classes, idx.train);
    testSplit = classificationSplit(train.x, train.dim, train.labels, classes, idx.test);
  }
  return {
    name: 'arrow',
    inputDim: train.dim,
    outputDim: classes,
    task: 'classification',
    train: trainSplit,
    test: testSplit,
    meta: {
      path: spec.path,
      testPath: spec.testPath ?? null,
      features: spec.features,
      label: spec.label,
      classes,
    },
  };
}
