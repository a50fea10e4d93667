import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { FASHION_MNIST_DIR, loadFashionMnist } from '../../src/data/fashion-mnist.js';
import { Rng } from '../../src/rng/rng.js';
import { scratchDir } from '../helpers/scratch.js';

function idx(type: number, shape: number[], body: number[]): Uint8Array {
  const head = [0, 0, type, shape.length];
  for (const d of shape) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return Uint8Array.from([...head, ...body]);
}

/** A 3-train / 2-test dataset of 2×2 images; the train files gzipped, the test files plain. */
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tinyDir(): string {
  const dir = scratchDir('fmnist-');
  dirs.push(dir);
  writeFileSync(
    join(dir, 'train-images-idx3-ubyte.gz'),
    gzipSync(idx(8, [3, 2, 2], [0, 255, 51, 102, 1, 2, 3, 4, 5, 6, 7, 8])),
  );
  writeFileSync(join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(idx(8, [3], [9, 0, 4])));
  writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idx(8, [2, 2, 2], [255, 255, 0, 0, 0, 0, 255, 255]));
  writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idx(8, [2], [1, 2]));
  return dir;
}

describe('loadFashionMnist', () => {
  it('reads plain and gzipped IDX files and scales pixels to [0, 1]', () => {
    const d = loadFashionMnist({ name: 'fashion-mnist', dir: tinyDir() }, Rng.fromSeed(0));
    expect([d.inputDim, d.outputDim, d.train.n, d.test.n]).toEqual([4, 10, 3, 2]);
    expect([...d.train.x.subarray(0, 4)]).toEqual([0, 1, 0.2, 0.4].map(Math.fround));
    expect([...d.train.labels!]).toEqual([9, 0, 4]);
    expect(d.train.y[9]).toBe(1);
    expect([...d.test.labels!]).toEqual([1, 2]);
  });

  it('takes seeded subsets', () => {
    const dir = tinyDir();
    const a = loadFashionMnist({ name: 'fashion-mnist', dir, nTrain: 2 }, Rng.fromSeed(5));
    expect(a.train.n).toBe(2);
    expect(loadFashionMnist({ name: 'fashion-mnist', dir, nTrain: 2 }, Rng.fromSeed(5)).train.labels).toEqual(
      a.train.labels,
    );
  });

  it('names the folder and the apt package when files are missing', () => {
    expect(() =>
      loadFashionMnist({ name: 'fashion-mnist', dir: '/nonexistent/fm' }, Rng.fromSeed(0)),
    ).toThrow(/'\/nonexistent\/fm'.*apt-get install dataset-fashion-mnist/);
  });

  it.skipIf(!existsSync(FASHION_MNIST_DIR))('loads the installed dataset (60,000 + 10,000 images)', () => {
    const d = loadFashionMnist({ name: 'fashion-mnist' }, Rng.fromSeed(0));
    expect([d.inputDim, d.train.n, d.test.n]).toEqual([784, 60_000, 10_000]);
    const counts = new Array<number>(10).fill(0);
    for (const c of d.test.labels!) counts[c]!++;
    expect(counts).toEqual(new Array(10).fill(1000));
    let max = 0;
    for (const v of d.train.x) max = Math.max(max, v);
    expect(max).toBe(1);
  });
});
