/**
 * Embedding files: what writeEmbedding writes, readEmbedding reads back (points, runs, eigenvalues,
 * explained stress / variance, options; not the decompositions), and unreadable files are named.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { EmbedPoint, RunEmbedding } from '../../src/results/embedding.js';
import {
  EmbeddingFileError,
  embeddingJson,
  readEmbedding,
  writeEmbedding,
} from '../../src/results/embedding.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-embedding-files-');

function embedding(method: 'pca' | 'inpca', components: number): RunEmbedding {
  const runs = ['s0/parent', 's0/t10/a', 's0/init-r0'];
  const points: EmbedPoint[] = [];
  runs.forEach((run, r) => {
    for (const step of r === 1 ? [10, 20, 45] : [0, 10, 20, 45]) {
      // Values that need all 64 bits, of both signs.
      points.push({
        run,
        step,
        coords: Array.from({ length: components }, (_, a) => Math.sin(1 + step * 0.37 + r * 1.1 + a) / 3),
      });
    }
  });
  const common = { runs, runDirs: runs.map((r) => `runs/${r}`), points, components };
  return method === 'pca'
    ? {
        ...common,
        method,
        eigenvalues: [4.25, 1 / 3, 0.1].slice(0, components),
        explainedVarianceRatio: [0.7, 0.2, 0.05].slice(0, components),
        options: { components },
      }
    : {
        ...common,
        method,
        eigenvalues: [2 / 3, -0.5, 1e-3].slice(0, components),
        explainedStress: [0.6, 0.85, 0.9].slice(0, components),
        options: { components, examples: 64, split: 'test', likelihood: 'categorical' },
        distances: new Float64Array(points.length ** 2),
      };
}

describe('readEmbedding', () => {
  test.each([
    ['inpca', 3],
    ['inpca', 1],
    ['pca', 2],
  ] as const)('%s, k = %i: round trip', (method, k) => {
    const dir = join(root, `${method}-${k}`);
    const e = embedding(method, k);
    writeEmbedding(dir, e);
    const back = readEmbedding(dir);
    const { distances: _d, ...stored } = e as RunEmbedding & { distances?: Float64Array };
    expect(back).toEqual(stored);
    expect(back.pca).toBeUndefined();
    expect(back.inpca).toBeUndefined();
    expect(back.distances).toBeUndefined();
  });

  test('missing or broken files are named', () => {
    const dir = join(root, 'broken');
    writeEmbedding(dir, embedding('inpca', 2));
    writeFileSync(join(dir, 'embedding.arrow'), 'not arrow');
    expect(() => readEmbedding(dir)).toThrow(EmbeddingFileError);
    expect(() => readEmbedding(dir)).toThrow(/embedding\.arrow: not a readable Arrow IPC file/);
    writeFileSync(join(dir, 'embedding.json'), '{');
    expect(() => readEmbedding(dir)).toThrow(/embedding\.json: not valid JSON/);
    writeFileSync(join(dir, 'embedding.json'), '{"method":"umap"}');
    expect(() => readEmbedding(dir)).toThrow(/embedding\.json: not an embedding summary/);
    const fine = JSON.parse(JSON.stringify(embeddingJson(embedding('inpca', 2))));
    writeFileSync(join(dir, 'embedding.json'), JSON.stringify({ ...fine, eigenvalues: [1] }));
    expect(() => readEmbedding(dir)).toThrow(/one eigenvalue per component/);
    rmSync(join(dir, 'embedding.json'));
    expect(() => readEmbedding(dir)).toThrow(/embedding\.json: missing/);
  });

  test('an arrow file with fewer axes than embedding.json says is named', () => {
    const dir = join(root, 'mismatch');
    writeEmbedding(dir, embedding('inpca', 2));
    const three = join(root, 'mismatch-3');
    writeEmbedding(three, embedding('inpca', 3));
    rmSync(join(three, 'embedding.arrow'));
    writeFileSync(join(three, 'embedding.arrow'), readFileSync(join(dir, 'embedding.arrow')));
    expect(() => readEmbedding(three)).toThrow(/embedding\.arrow: no column 'axis2'/);
  });
});
