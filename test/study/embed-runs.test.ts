/**
 * Trajectory embeddings of real (tiny) two-moons and linear-regression runs: the engine's softmax
 * outputs and raw predictions against a float64 reference, PCA coordinates against pcaProject, the
 * InPCA distance matrix, stress and out-of-sample projection, the Gaussian-output distances of
 * regression runs against x·w computed here, the written files, and the input checks.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { beforeAll, describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { bhattacharyyaMatrixJs } from '../../src/measure/bhattacharyya.js';
import { inpcaProject } from '../../src/measure/inpca.js';
import { pcaProject } from '../../src/measure/pca.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { writeEmbedding } from '../../src/results/embedding.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints } from '../../src/store/index.js';
import { EmbedInputError, embedRuns } from '../../src/study/embed-runs.js';
import { runContextParts, trainRun } from '../../src/train/run.js';
import { mulberry32, referenceForward, uniformArray } from '../helpers/reference-model.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase, tinyLinear } from '../helpers/study.js';

const root = scratchDir('twinscope-embed-');
const dirs = { a: join(root, 'a'), b: join(root, 'b'), c: join(root, 'c') };
const narrow = join(root, 'narrow');
const scaled = join(root, 'scaled');
const otherData = join(root, 'other-data');
const linear = { a: join(root, 'lin-a'), b: join(root, 'lin-b') };

beforeAll(async () => {
  await trainRun(parseRunSpec({ ...tinyBase, name: 'a' }), dirs.a);
  await trainRun(parseRunSpec({ ...tinyBase, name: 'b', seed: 1, dataSeed: 0 }), dirs.b);
  await trainRun(parseRunSpec({ ...tinyBase, name: 'c', optimizer: { kind: 'adam', lr: 0.01 } }), dirs.c);
  await trainRun(
    parseRunSpec({ ...tinyBase, name: 'narrow', model: { ...tinyBase.model, hidden: [8] } }),
    narrow,
  );
  await trainRun(parseRunSpec({ ...tinyBase, name: 'other', data: { ...tinyBase.data, n: 300 } }), otherData);
  await trainRun(
    parseRunSpec({
      ...tinyBase,
      name: 'scaled',
      model: { ...tinyBase.model, init: { kind: 'normal', std: 0.5 } },
    }),
    scaled,
  );
  await trainRun(parseRunSpec({ ...tinyLinear, name: 'lin-a' }), linear.a);
  await trainRun(parseRunSpec({ ...tinyLinear, name: 'lin-b', seed: 1 }), linear.b);
}, 120_000);

const runDirs = () => [dirs.a, dirs.b, dirs.c];

describe('engine.probabilities (ORT)', () => {
  test('equals a float64 softmax of the reference forward pass to 1e-5, across chunks', async () => {
    const model = modelGraphSpec({ kind: 'mlp', hidden: [7, 5], activation: 'tanh' }, 3, 4, 'cross-entropy');
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    try {
      const rand = mulberry32(3);
      const params = uniformArray(rand, model.layout.size, -1, 1);
      const n = 2100; // > EVAL_CHUNK: two chunks
      const x = uniformArray(rand, n * 3, -2, 2);
      const probs = await engine.probabilities?.(params, x, n);
      expect(probs?.length).toBe(n * 4);
      const logits = referenceForward(model, params, x, n).output;
      let worst = 0;
      for (let r = 0; r < n; r++) {
        const row = Array.from(logits.subarray(r * 4, r * 4 + 4));
        const max = Math.max(...row);
        const e = row.map((z) => Math.exp(z - max));
        const s = e.reduce((a, b) => a + b, 0);
        e.forEach((v, c) => {
          worst = Math.max(worst, Math.abs(v / s - (probs?.[r * 4 + c] as number)));
        });
      }
      expect(worst).toBeLessThan(1e-5);
    } finally {
      await engine.dispose();
    }
  });

  test('predictions are the raw outputs of the reference forward pass (logits; mse predictions)', async () => {
    for (const loss of ['cross-entropy', 'mse'] as const) {
      const model = modelGraphSpec({ kind: 'mlp', hidden: [5], activation: 'tanh' }, 3, 2, loss);
      const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
      try {
        const rand = mulberry32(5);
        const params = uniformArray(rand, model.layout.size, -1, 1);
        const n = 2100;
        const x = uniformArray(rand, n * 3, -2, 2);
        const out = (await engine.predictions?.(params, x, n)) as Float32Array;
        const reference = referenceForward(model, params, x, n).output;
        expect(out.length).toBe(n * 2);
        let worst = 0;
        for (let i = 0; i < out.length; i++) {
          worst = Math.max(worst, Math.abs((out[i] as number) - (reference[i] as number)));
        }
        expect(worst).toBeLessThan(1e-5);
      } finally {
        await engine.dispose();
      }
    }
  });

  test('an mse model has no probabilities', async () => {
    const model = modelGraphSpec({ kind: 'mlp', hidden: [4], activation: 'tanh' }, 3, 2, 'mse');
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    try {
      await expect(
        engine.probabilities?.(new Float32Array(model.layout.size), new Float32Array(3), 1),
      ).rejects.toThrow(/cross-entropy/);
    } finally {
      await engine.dispose();
    }
  });
});

describe('embedRuns pca', () => {
  test('coordinates are pcaProject of each checkpoint', async () => {
    const e = await embedRuns(runDirs(), { method: 'pca' });
    expect(e.components).toBe(3);
    expect(e.runs).toEqual(['a', 'b', 'c']);
    const checkpoints = runDirs().flatMap((d) => readCheckpoints(d));
    expect(e.points.length).toBe(checkpoints.length);
    expect(e.points.length).toBeGreaterThanOrEqual(15);
    const pca = e.pca;
    if (!pca) throw new Error('no pca');
    let scale = 0;
    for (const p of e.points) for (const c of p.coords) scale = Math.max(scale, Math.abs(c));
    checkpoints.forEach((c, i) => {
      const point = e.points[i];
      expect(point?.step).toBe(c.step);
      const projected = pcaProject(pca, c.params);
      projected.forEach((v, k) => {
        expect(Math.abs(v - (point?.coords[k] as number))).toBeLessThan(1e-9 * scale);
      });
    });
    // λ_k is the sum of squared coordinates along axis k; ratios in (0, 1], decreasing.
    for (let k = 0; k < 3; k++) {
      const ss = e.points.reduce((s, p) => s + (p.coords[k] as number) ** 2, 0);
      expect(ss).toBeCloseTo(e.eigenvalues[k] as number, 8);
    }
    const r = e.explainedVarianceRatio ?? [];
    expect(r[0]).toBeGreaterThan(0);
    expect((r[0] as number) + (r[1] as number) + (r[2] as number)).toBeLessThanOrEqual(1 + 1e-12);
    expect(r[0]).toBeGreaterThanOrEqual(r[1] as number);
  });

  test('runs with another layout are rejected, naming the run', async () => {
    await expect(embedRuns([dirs.a, narrow], { method: 'pca' })).rejects.toThrow(
      new RegExp(`^${narrow}: parameter layout differs`),
    );
    // InPCA only needs the same dataset: different architectures embed together.
    const e = await embedRuns([dirs.a, narrow], { method: 'inpca', examples: 50, threads: 1 });
    expect(e.runs).toEqual(['a', 'narrow']);
  });

  test('runs that differ only in their init scale share a layout (an init-scale sweep)', async () => {
    const e = await embedRuns([dirs.a, scaled], { method: 'pca', components: 2 });
    expect(e.runs).toEqual(['a', 'scaled']);
  });
});

describe('embedRuns inpca', () => {
  test('distance matrix, stress and out-of-sample projection', async () => {
    const e = await embedRuns(runDirs(), { method: 'inpca', examples: 60, threads: 1 });
    const m = e.points.length;
    const d = e.distances;
    const emb = e.inpca;
    if (!d || !emb) throw new Error('no inpca');
    expect(d.length).toBe(m * m);
    expect(e.options).toEqual({ components: 3, examples: 60, split: 'test', likelihood: 'categorical' });
    for (let i = 0; i < m; i++) {
      expect(d[i * m + i]).toBe(0);
      for (let j = 0; j < i; j++) {
        expect(d[i * m + j]).toBe(d[j * m + i]);
        expect(d[i * m + j]).toBeGreaterThanOrEqual(0);
      }
    }
    // Distinct checkpoints are apart (all runs move away from their starts).
    expect(d[1]).toBeGreaterThan(0);
    const stress = e.explainedStress ?? [];
    expect(stress.length).toBe(3);
    expect(stress[0]).toBeGreaterThan(0);
    expect(stress[0]).toBeLessThanOrEqual(1);
    for (let k = 1; k < stress.length; k++) expect(stress[k]).toBeGreaterThanOrEqual(stress[k - 1] as number);
    expect(Math.abs(e.eigenvalues[0] as number)).toBeGreaterThanOrEqual(Math.abs(e.eigenvalues[2] as number));
    // A checkpoint already embedded, projected out of sample, lands on its own point.
    for (const i of [0, Math.floor(m / 2), m - 1]) {
      const projected = inpcaProject(emb, d.subarray(i * m, i * m + m));
      projected.forEach((v, k) => {
        expect(Math.abs(v - (e.points[i]?.coords[k] as number))).toBeLessThan(1e-9);
      });
    }
  });

  test('distances equal the JS float64 Bhattacharyya matrix of the softmax outputs', async () => {
    const e = await embedRuns([dirs.a, dirs.b], { method: 'inpca', examples: 40, threads: 1 });
    const spec = parseRunSpec({ ...tinyBase, name: 'a' });
    const { data, model } = runContextParts(spec);
    const engine = await createOrtEngine(model, { optimizer: spec.optimizer });
    const probs: Float32Array[] = [];
    try {
      for (const dir of [dirs.a, dirs.b]) {
        for (const c of readCheckpoints(dir)) {
          probs.push(
            (await engine.probabilities?.(c.params, data.test.x.subarray(0, 40 * 2), 40)) as Float32Array,
          );
        }
      }
    } finally {
      await engine.dispose();
    }
    const reference = bhattacharyyaMatrixJs(probs, 40, 2);
    const d = e.distances as Float64Array;
    for (let i = 0; i < d.length; i++)
      expect(Math.abs((d[i] as number) - (reference[i] as number))).toBeLessThan(1e-12);
  });

  test('runs on another dataset are rejected, naming the run', async () => {
    await expect(embedRuns([dirs.a, otherData], { method: 'inpca' })).rejects.toThrow(
      new RegExp(`^${otherData}: dataset differs`),
    );
  });
});

describe('embedRuns inpca of regression runs (Gaussian outputs)', () => {
  test('distances are mean ‖Δ(x·w)‖² / 8s² over the test examples, computed here in float64', async () => {
    const n = 20;
    const e = await embedRuns([linear.a, linear.b], { method: 'inpca', examples: n, components: 4 });
    expect(e.options).toEqual({
      components: 4,
      examples: n,
      split: 'test',
      likelihood: 'gaussian',
      sigma: 1,
    });
    const { data } = runContextParts(parseRunSpec(tinyLinear));
    const x = data.test.x;
    const predictions = [linear.a, linear.b].flatMap((dir) =>
      readCheckpoints(dir).map((c) =>
        Float64Array.from({ length: n }, (_, r) => {
          let s = 0;
          for (let j = 0; j < 6; j++) s += (x[r * 6 + j] as number) * (c.params[j] as number);
          return s;
        }),
      ),
    );
    const m = predictions.length;
    expect(e.points).toHaveLength(m);
    const d = e.distances as Float64Array;
    let scale = 0;
    for (const v of d) scale = Math.max(scale, v);
    expect(scale).toBeGreaterThan(0);
    for (let u = 0; u < m; u++) {
      for (let v = 0; v < m; v++) {
        let sq = 0;
        for (let r = 0; r < n; r++)
          sq += ((predictions[u]?.[r] as number) - (predictions[v]?.[r] as number)) ** 2;
        expect(Math.abs((d[u * m + v] as number) - sq / (8 * n))).toBeLessThan(1e-5 * scale);
      }
    }
    // Squared-Euclidean distances: no time-like axes.
    for (const lambda of e.eigenvalues)
      expect(lambda).toBeGreaterThan(-1e-12 * Math.abs(e.eigenvalues[0] as number));
    const wide = await embedRuns([linear.a, linear.b], { method: 'inpca', examples: n, sigma: 2 });
    (wide.distances as Float64Array).forEach((v, i) => {
      expect(v).toBeCloseTo((d[i] as number) / 4, 15);
    });
  });

  test('runs with different losses cannot share an InPCA embedding', async () => {
    await expect(embedRuns([dirs.a, linear.a], { method: 'inpca' })).rejects.toThrow(
      new RegExp(`^${linear.a}: loss 'mse' differs from 'cross-entropy'`),
    );
    await expect(embedRuns([linear.a], { method: 'inpca', sigma: -1 })).rejects.toThrow(/sigma must be/);
  });
});

describe('input checks and files', () => {
  test('no directories, a non-run directory, bad components', async () => {
    await expect(embedRuns([], { method: 'pca' })).rejects.toThrow(EmbedInputError);
    await expect(embedRuns([root], { method: 'pca' })).rejects.toThrow(/no run\.json/);
    await expect(embedRuns([dirs.a], { method: 'pca', components: 0 })).rejects.toThrow(EmbedInputError);
    await expect(embedRuns([dirs.a, dirs.a], { method: 'pca' })).rejects.toThrow(/given twice/);
  });

  test('writeEmbedding writes the Arrow table and the JSON summary', async () => {
    const e = await embedRuns(runDirs(), { method: 'inpca', examples: 30, components: 2, threads: 1 });
    const out = join(root, 'out');
    const files = writeEmbedding(out, e);
    const table = tableFromIPC(readFileSync(files.arrow));
    expect(table.schema.fields.map((f) => f.name)).toEqual(['run', 'step', 'axis0', 'axis1']);
    expect(table.numRows).toBe(e.points.length);
    const last = table.get(table.numRows - 1)?.toJSON();
    const p = e.points.at(-1);
    expect(last?.run).toBe('c');
    expect(Number(last?.step)).toBe(p?.step);
    expect(last?.axis1).toBe(p?.coords[1]);
    const json = JSON.parse(readFileSync(files.json, 'utf8'));
    expect(json.method).toBe('inpca');
    expect(json.eigenvalues).toEqual(e.eigenvalues);
    expect(json.signs).toEqual(e.eigenvalues.map(Math.sign));
    expect(json.explainedStress).toEqual(e.explainedStress);
    expect(json.options).toEqual({ components: 2, examples: 30, split: 'test', likelihood: 'categorical' });
    expect(json.runs.map((r: { label: string }) => r.label)).toEqual(['a', 'b', 'c']);
  });
});
