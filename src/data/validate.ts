/**
 * The checks every dataset passes once, in {@link loadDataset}, before anything trains on it or any
 * folder is created: splits of the declared shape, finite inputs (and regression targets), labels
 * within the classes, and at least two classes in the train split of a classification task. A
 * failed check is a {@link DataError} naming the split, the row and the column
 * (`data: train row 17, feature 3 is NaN`).
 */
import { DataError } from './check.js';
import type { Dataset, Split } from './types.js';

/** `row r, <what> j is v` for the first non-finite entry of a row-major [rows, dim] matrix, or undefined. */
function nonFinite(m: Float32Array, dim: number, what: string): string | undefined {
  for (let i = 0; i < m.length; i++) {
    const v = m[i] as number;
    // v - v is 0 for finite v, NaN for NaN and ±Infinity: one subtraction per entry.
    if (v - v !== 0) return `row ${Math.floor(i / dim)}, ${what} ${i % dim} is ${v}`;
  }
  return undefined;
}

/** Class labels of a classification split: `labels`, or the position of the 1 in each one-hot row. */
function labelsOf(s: Split, classes: number): ArrayLike<number> {
  if (s.labels) return s.labels;
  return Int32Array.from({ length: s.n }, (_, r) => s.y.subarray(r * classes, (r + 1) * classes).indexOf(1));
}

/** Throw a {@link DataError} naming the first problem of `data` (see the module comment). */
export function validateDataset(data: Dataset): void {
  const { inputDim, outputDim } = data;
  const classification = data.task === 'classification';
  for (const [name, s] of [
    ['train', data.train],
    ['test', data.test],
  ] as const) {
    if (s.x.length !== s.n * inputDim || s.y.length !== s.n * outputDim) {
      throw new DataError(
        `data: the ${name} split holds ${s.x.length} inputs and ${s.y.length} targets, expected ${s.n} × ${inputDim} and ${s.n} × ${outputDim}`,
      );
    }
    const bad =
      nonFinite(s.x, inputDim, 'feature') ??
      (classification ? undefined : nonFinite(s.y, outputDim, 'target'));
    if (bad) throw new DataError(`data: ${name} ${bad}`);
    if (!classification) continue;
    const labels = labelsOf(s, outputDim);
    for (let r = 0; r < s.n; r++) {
      const c = labels[r] as number;
      if (c >= 0 && c < outputDim) continue;
      throw new DataError(
        `data: ${name} row ${r} has label ${c}, beyond the ${outputDim} classes (labels 0 to ${outputDim - 1})`,
      );
    }
  }
  if (data.train.n < 1) throw new DataError('data: the train split has no examples');
  if (!classification) return;
  const present = new Set(Array.from(labelsOf(data.train, outputDim)));
  if (present.size < 2) {
    throw new DataError(
      `data: the train split has examples of class ${[...present].join(', ')} only (${data.train.n} examples); a classifier needs at least two classes`,
    );
  }
}
