/** Fashion-MNIST (Xiao et al. 2017) from its four IDX files. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Rng } from '../rng/rng.js';
import { checkInt, DataError } from './check.js';
import { readIdxFile } from './idx.js';
import { classificationSplit } from './rows.js';
import { subsetIndices } from './split.js';
import type { Dataset, FashionMnistSpec, Split } from './types.js';

/** Where Debian's `dataset-fashion-mnist` package installs the files. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** The ten class names, by label. */
export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

const FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** The path of IDX file `base` in `dir`: the plain file if present, else `base.gz`; undefined if neither. */
function findFile(dir: string, base: string): string | undefined {
  return [join(dir, base), join(dir, `${base}.gz`)].find((p) => existsSync(p));
}

/** Images [n, rows·cols] scaled to [0, 1] and labels, checked against each other. */
function readPart(
  imagesPath: string,
  labelsPath: string,
): { x: Float32Array; labels: Int32Array; dim: number } {
  const images = readIdxFile(imagesPath);
  const labels = readIdxFile(labelsPath);
  if (images.type !== 'uint8' || images.shape.length !== 3) {
    throw new DataError(
      `IDX file '${imagesPath}': expected uint8 images [n, rows, cols], got ${images.type} [${images.shape.join(', ')}]`,
    );
  }
  if (labels.type !== 'uint8' || labels.shape.length !== 1 || labels.shape[0] !== images.shape[0]) {
    throw new DataError(
      `IDX file '${labelsPath}': expected ${images.shape[0]} uint8 labels, got ${labels.type} [${labels.shape.join(', ')}]`,
    );
  }
  const x = new Float32Array(images.data.length);
  for (let i = 0; i < x.length; i++) x[i] = (images.data[i] as number) / 255;
  return {
    x,
    labels: Int32Array.from(labels.data),
    dim: (images.shape[1] as number) * (images.shape[2] as number),
  };
}

/**
 * Fashion-MNIST with its official train/test split, pixels scaled to [0, 1]. `nTrain`/`nTest` take
 * seeded subsets (`rng.stream('subset', 0)` / `rng.stream('subset', 1)`).
 */
export function loadFashionMnist(spec: FashionMnistSpec, rng: Rng): Dataset {
  const dir = spec.dir ?? FASHION_MNIST_DIR;
  const paths = Object.fromEntries(Object.entries(FILES).map(([k, base]) => [k, findFile(dir, base)]));
  const missing = Object.entries(FILES).filter(([k]) => !paths[k]);
  if (missing.length > 0) {
    throw new DataError(
      `Fashion-MNIST not found in '${dir}': missing ${missing.map(([, b]) => `${b}[.gz]`).join(', ')}; ` +
        `install it with 'apt-get install dataset-fashion-mnist' or set data.dir`,
    );
  }
  const train = readPart(paths.trainImages as string, paths.trainLabels as string);
  const test = readPart(paths.testImages as string, paths.testLabels as string);
  const pick = (part: typeof train, k: number | undefined, id: number, field: string): Split => {
    const n = part.labels.length;
    const idx = subsetIndices(n, k === undefined ? n : checkInt(field, k), rng.stream('subset', id));
    return classificationSplit(part.x, part.dim, part.labels, 10, idx);
  };
  return {
    name: 'fashion-mnist',
    inputDim: train.dim,
    outputDim: 10,
    task: 'classification',
    train: pick(train, spec.nTrain, 0, 'data.nTrain'),
    test: pick(test, spec.nTest, 1, 'data.nTest'),
    meta: { dir, files: Object.values(paths), classes: FASHION_MNIST_CLASSES },
  };
}
