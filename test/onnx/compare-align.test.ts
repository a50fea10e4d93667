/**
 * Alignment in `compareModels`: a randomly channel-permuted copy of an imported ResNet or CNN is
 * recovered exactly (aligned L2 = 0, aligned barriers 0, BatchNorm statistics recomputed along the
 * path), a wrong user spec is refused naming the tensor, and a graph without an inferable spec is
 * compared without alignment, the note saying why.
 */
import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, test } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import type { Split } from '../../src/data/types.js';
import { applyPermutations, type PermutationSpec } from '../../src/measure/align.js';
import { type CompareData, compareModels } from '../../src/onnx/compare.js';
import { type ImportedModel, importOnnx, importOnnxFile } from '../../src/onnx/import-model.js';
import {
  inferPermutationSpec,
  parsePermutationSpec,
  permutationSpecJson,
} from '../../src/onnx/permutation-spec.js';
import { decodeModel, encodeModel, OnnxModelError } from '../../src/onnx/proto.js';
import { Rng } from '../../src/rng/rng.js';
import { fixturePath } from '../helpers/fixtures.js';

let data: CompareData;
const head = (s: Split, n: number): Split => ({ x: s.x.subarray(0, n * 784), y: s.y.subarray(0, n * 10), n });

beforeAll(() => {
  const ds = loadDataset({ name: 'mnist' }, 0);
  data = { name: 'mnist', train: head(ds.train, 300), test: head(ds.test, 300) };
});

function permutedCopy(model: ImportedModel, spec: PermutationSpec, seed: number): ImportedModel {
  const rng = Rng.fromSeed(seed).stream('perm');
  const perms = spec.perms.map((g) => Int32Array.from(rng.permutation(g.size)));
  return {
    ...model,
    source: `${model.source} (permuted)`,
    weights: applyPermutations(model.weights, model.architecture.layout, perms, spec),
  };
}

const OPTS = { alphas: 5, ckaExamples: 50, alignExamples: 300 } as const;

describe('compareModels aligns B to A', () => {
  test.each(['resnet-s0.onnx', 'cnn-s0.onnx'])(
    '%s and a channel-permuted copy: aligned L2 = 0 and aligned barriers 0 (BN recomputed)',
    async (file) => {
      const a = importOnnxFile(fixturePath('onnx', file));
      const b = permutedCopy(a, inferPermutationSpec(a), 7);
      const r = await compareModels(a, b, data, OPTS);
      expect(r.l2).toBeGreaterThan(1);
      expect(r.normalization).toBe('recompute');
      // Unaligned, the straight path between the two copies leaves the basin.
      expect(r.test?.barrierError.linear).toBeGreaterThan(0.1);
      expect(r.alignmentNote).toBeNull();
      const al = r.alignment;
      if (!al) throw new Error('no alignment');
      expect(al.spec).toBe('inferred');
      const w = al.weight;
      if (!w) throw new Error('no weight matching');
      expect(w.l2).toBe(0);
      expect(w.converged).toBe(true);
      for (const c of [w.train, w.test]) {
        if (!c) throw new Error('no curve');
        expect(new Set(c.loss).size).toBe(1); // every point is A itself
        expect(Math.abs(c.barrierLoss.linear)).toBeLessThan(1e-12);
        expect(Math.abs(c.barrierError.linear)).toBeLessThan(1e-12);
      }
      // Activation matching on 300 digits: the permuted copy's channels have A's activations.
      expect(al.activation?.l2).toBeLessThan(r.l2 / 10);
      expect(al.activation?.examples).toBe(300);
    },
  );

  test('a user spec is checked first: a wrong one is refused naming the tensor', async () => {
    const a = importOnnxFile(fixturePath('onnx', 'cnn-s0.onnx'));
    const json = permutationSpecJson(inferPermutationSpec(a));
    const conv2 = json.perms[1] as (typeof json.perms)[number];
    conv2.axes = conv2.axes.filter((x) => x.tensor !== 'fc.weight');
    const wrong = parsePermutationSpec(json, a, 'wrong.json');
    const b = importOnnxFile(fixturePath('onnx', 'cnn-s1.onnx'));
    const error = await compareModels(a, b, data, { ...OPTS, permutationSpec: wrong }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OnnxModelError);
    expect((error as Error).message).toMatch(/axis 1 of 'fc\.weight' is missing from 'conv2'/);
  });

  test('no inferable spec: compared without alignment, the note names the node', async () => {
    const m = decodeModel(readFileSync(fixturePath('onnx', 'mlp-s0.onnx')), 'mlp');
    const relu = m.graph?.node?.find((n) => n.opType === 'Relu');
    if (!relu) throw new Error('no Relu');
    relu.opType = 'Softmax';
    const a = importOnnx(encodeModel(m), 'softmax.onnx');
    const r = await compareModels(a, a, data, { ...OPTS, align: ['weight'] });
    expect(r.alignment).toBeNull();
    expect(r.alignmentNote).toMatch(/not measured: softmax\.onnx: .*node '\/relu1\/Relu' \(Softmax\)/);
    const none = await compareModels(a, a, data, { ...OPTS, align: [] });
    expect(none.alignmentNote).toMatch(/--align none/);
  });
});
