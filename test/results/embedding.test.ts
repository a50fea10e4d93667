/**
 * Embedding files: what writeEmbedding writes, readEmbedding reads back (points, runs, eigenvalues,
 * explained stress / variance, options; not the decompositions), and unreadable or damaged files
 * (checked against embedding.json's seal and the digest it records) are named.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import type { EmbedPoint, RunEmbedding } from '../../src/results/embedding.js';
import { EmbeddingFileError, readEmbedding, writeEmbedding } from '../../src/results/embedding.js';
import { IntegrityError } from '../../src/util/errors.js';
import { sealJson } from '../../src/util/sealed-json.js';
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

  test('a damaged embedding.arrow or embedding.json is an IntegrityError naming it', () => {
    const dir = join(root, 'damaged');
    writeEmbedding(dir, embedding('inpca', 2));
    const arrow = readFileSync(join(dir, 'embedding.arrow'));
    const flipped = Buffer.from(arrow);
    flipped[flipped.length >> 1] = (flipped[flipped.length >> 1] as number) ^ 1;
    writeFileSync(join(dir, 'embedding.arrow'), flipped);
    expect(() => readEmbedding(dir)).toThrow(IntegrityError);
    expect(() => readEmbedding(dir)).toThrow(
      /embedding\.arrow: sha256 .* does not match .*embedding\.json records/,
    );
    writeFileSync(join(dir, 'embedding.arrow'), arrow.subarray(0, 100));
    expect(() => readEmbedding(dir)).toThrow(/embedding\.arrow: 100 bytes, .*embedding\.json records \d+/);
    writeFileSync(join(dir, 'embedding.arrow'), arrow);
    expect(readEmbedding(dir).eigenvalues).toEqual(embedding('inpca', 2).eigenvalues);
    // A changed number that still parses: the seal no longer matches.
    const json = readFileSync(join(dir, 'embedding.json'), 'utf8');
    const doc = JSON.parse(json);
    writeFileSync(
      join(dir, 'embedding.json'),
      JSON.stringify({ ...doc, eigenvalues: [doc.eigenvalues[0] * 1.01, doc.eigenvalues[1]] }),
    );
    expect(() => readEmbedding(dir)).toThrow(/embedding\.json: content does not match its checksum/);
    writeFileSync(join(dir, 'embedding.json'), '{');
    expect(() => readEmbedding(dir)).toThrow(/embedding\.json: not valid JSON/);
    rmSync(join(dir, 'embedding.json'));
    expect(() => readEmbedding(dir)).toThrow(/embedding\.json: missing/);
  });

  test('embedding.json written before seals (no format) is read unchecked, and its shape still checked', () => {
    const dir = join(root, 'legacy');
    writeEmbedding(dir, embedding('inpca', 2));
    const {
      format: _f,
      files: _files,
      checksum: _c,
      ...legacy
    } = JSON.parse(readFileSync(join(dir, 'embedding.json'), 'utf8'));
    writeFileSync(join(dir, 'embedding.json'), JSON.stringify(legacy));
    expect(readEmbedding(dir).eigenvalues).toEqual(embedding('inpca', 2).eigenvalues);
    writeFileSync(join(dir, 'embedding.json'), JSON.stringify({ ...legacy, eigenvalues: [1] }));
    expect(() => readEmbedding(dir)).toThrow(EmbeddingFileError);
    expect(() => readEmbedding(dir)).toThrow(/one eigenvalue per component/);
    writeFileSync(join(dir, 'embedding.json'), '{"method":"umap"}');
    expect(() => readEmbedding(dir)).toThrow(/embedding\.json: not an embedding summary/);
    writeFileSync(join(dir, 'embedding.json'), JSON.stringify(legacy));
    writeFileSync(join(dir, 'embedding.arrow'), 'not arrow');
    expect(() => readEmbedding(dir)).toThrow(/embedding\.arrow: not a readable Arrow IPC file/);
  });

  test('an arrow file with fewer axes than embedding.json says is named', () => {
    const dir = join(root, 'mismatch');
    writeEmbedding(dir, embedding('inpca', 2));
    const three = join(root, 'mismatch-3');
    writeEmbedding(three, embedding('inpca', 3));
    // Recorded as embedding.json's own arrow file (a consistent digest), but with 2 axes.
    const json = JSON.parse(readFileSync(join(three, 'embedding.json'), 'utf8'));
    const arrow = readFileSync(join(dir, 'embedding.arrow'));
    writeFileSync(join(three, 'embedding.arrow'), arrow);
    const files = {
      'embedding.arrow': { sha256: createHash('sha256').update(arrow).digest('hex'), bytes: arrow.length },
    };
    writeFileSync(join(three, 'embedding.json'), JSON.stringify(sealJson({ ...json, files })));
    expect(() => readEmbedding(three)).toThrow(/embedding\.arrow: no column 'axis2'/);
  });
});
