/** Row gathering and target encoding for row-major example matrices. */

import { DataError } from './check.js';
import type { Split } from './types.js';

/** Rows `indices` of the row-major matrix `m` with `dim` columns, in that order. */
export function takeRows(m: Float32Array, dim: number, indices: ArrayLike<number>): Float32Array {
  const out = new Float32Array(indices.length * dim);
  for (let r = 0; r < indices.length; r++) {
    const src = (indices[r] as number) * dim;
    out.set(m.subarray(src, src + dim), r * dim);
  }
  return out;
}

/** One-hot rows [n, classes] for class indices in [0, classes). */
export function oneHot(labels: Int32Array, classes: number): Float32Array {
  const out = new Float32Array(labels.length * classes);
  labels.forEach((c, i) => {
    if (!(c >= 0 && c < classes)) throw new DataError(`label ${c} at row ${i} is outside [0, ${classes})`);
    out[i * classes + c] = 1;
  });
  return out;
}

/** A classification split of rows `indices` (all rows when omitted). */
export function classificationSplit(
  x: Float32Array,
  inputDim: number,
  labels: Int32Array,
  classes: number,
  indices?: ArrayLike<number>,
): Split {
  let lab = labels;
  if (indices) {
    lab = new Int32Array(indices.length);
    for (let r = 0; r < indices.length; r++) lab[r] = labels[indices[r] as number] as number;
  }
  return {
    x: indices ? takeRows(x, inputDim, indices) : x,
    y: oneHot(lab, classes),
    labels: lab,
    n: lab.length,
  };
}

/** A regression split of rows `indices` (all rows when omitted). */
export function regressionSplit(
  x: Float32Array,
  inputDim: number,
  y: Float32Array,
  outputDim: number,
  indices?: ArrayLike<number>,
): Split {
  if (!indices) return { x, y, n: y.length / outputDim };
  return { x: takeRows(x, inputDim, indices), y: takeRows(y, outputDim, indices), n: indices.length };
}

/** The first `n` examples of a split as views (all of them when it has fewer, or n is undefined). */
export function firstRows(
  split: Split,
  n = Number.POSITIVE_INFINITY,
): { x: Float32Array; y: Float32Array; n: number } {
  const m = Math.min(n, split.n);
  const inDim = split.x.length / Math.max(split.n, 1);
  const outDim = split.y.length / Math.max(split.n, 1);
  return { x: split.x.subarray(0, m * inDim), y: split.y.subarray(0, m * outDim), n: m };
}
