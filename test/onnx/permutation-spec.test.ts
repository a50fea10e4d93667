/**
 * Permutation specs of imported ONNX graphs: inferred from the PyTorch fixtures (MLP, MatMul MLP,
 * CNN with BatchNorm, ResNet; BN fused or not), checked by permuting the model, recovered exactly
 * by weight matching, user specs from JSON, and clear refusals.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, test } from 'vitest';
import { readMnistDigits } from '../../src/data/mnist.js';
import { applyPermutations, type PermutationSpec, weightMatching } from '../../src/measure/align.js';
import { l2Distance } from '../../src/measure/distance.js';
import { importOnnx, importOnnxFile } from '../../src/onnx/import-model.js';
import {
  checkPermutationSpec,
  inferPermutationSpec,
  parsePermutationSpec,
  permutationSpecJson,
} from '../../src/onnx/permutation-spec.js';
import { decodeModel, encodeModel, OnnxModelError } from '../../src/onnx/proto.js';
import { ImportedSession } from '../../src/onnx/session.js';
import { Rng } from '../../src/rng/rng.js';
import { fixturePath } from '../helpers/fixtures.js';

const sessions: ImportedSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.dispose()));
});

const load = (file: string) => importOnnxFile(fixturePath('onnx', file));

/** The group (name) of a tensor axis, or null. */
function groupOf(spec: PermutationSpec, tensor: string, axis: number): string | null {
  const k = spec.axes.get(tensor)?.[axis];
  return k === null || k === undefined ? null : (spec.perms[k]?.name ?? null);
}

function randomPerms(spec: PermutationSpec, seed: number): Int32Array[] {
  const rng = Rng.fromSeed(seed).stream('perm');
  return spec.perms.map((g) => Int32Array.from(rng.permutation(g.size)));
}

const FIXTURES = [
  'mlp-s0.onnx',
  'mlp-s0-fused.onnx',
  'mlp-s0-matmul.onnx',
  'cnn-s0.onnx',
  'cnn-s0-fused.onnx',
  'resnet-s0.onnx',
  'resnet-s0-fused.onnx',
];

describe('inferPermutationSpec on the PyTorch fixtures', () => {
  test('ResNet: one permutation per residual stream (union-find over Add), BN buffers included', () => {
    const spec = inferPermutationSpec(load('resnet-s0.onnx'));
    expect(spec.perms.map((g) => [g.name, g.size])).toEqual([
      ['stem', 8],
      ['block1.conv1', 8],
      ['block2.conv1', 16],
      ['block2.conv2', 16],
    ]);
    // Stream 1: the stem and block1's second conv (identity shortcut), their BatchNorms.
    for (const t of ['stem.weight', 'block1.conv2.weight', 'bn.running_var', 'block1.bn2.running_mean']) {
      expect(groupOf(spec, t, 0)).toBe('stem');
    }
    expect(
      ['block1.conv1.weight', 'block2.conv1.weight', 'block2.shortcut.0.weight'].map((t) =>
        groupOf(spec, t, 1),
      ),
    ).toEqual(['stem', 'stem', 'stem']);
    // Stream 2: block2's second conv and the projection shortcut (conv + BN) are one group.
    for (const t of [
      'block2.conv2.weight',
      'block2.shortcut.0.weight',
      'block2.shortcut.1.weight',
      'block2.shortcut.1.running_var',
    ]) {
      expect(groupOf(spec, t, 0)).toBe('block2.conv2');
    }
    // After global average pooling and Flatten: fc's input axis, no block; the logits are fixed.
    expect(spec.axes.get('fc.weight')).toEqual([null, 3]);
    expect(spec.axes.get('fc.bias')).toEqual([null]);
    expect(spec.hidden).toEqual([
      { name: 'relu', perm: 0 },
      { name: 'block1.relu1', perm: 1 },
      { name: 'block1.relu2', perm: 0 },
      { name: 'block2.relu1', perm: 2 },
      { name: 'block2.relu2', perm: 3 },
    ]);
  });

  test('CNN: Flatten makes fc a block permutation (49 = 7×7 columns per channel)', () => {
    const spec = inferPermutationSpec(load('cnn-s0.onnx'));
    expect(spec.perms.map((g) => [g.name, g.size])).toEqual([
      ['conv1', 8],
      ['conv2', 16],
    ]);
    expect(spec.perms[1]?.axes).toContainEqual({ tensor: 'fc.weight', axis: 1, block: 49 });
    expect(spec.perms[0]?.axes.map((a) => a.tensor)).toEqual([
      'conv1.weight',
      'conv1.bias',
      'bn1.weight',
      'bn1.bias',
      'bn1.running_mean',
      'bn1.running_var',
      'conv2.weight',
    ]);
  });

  test("MatMul with the exporter's transposed [in, out] weights: axes swapped", () => {
    const spec = inferPermutationSpec(load('mlp-s0-matmul.onnx'));
    expect(Object.fromEntries(spec.axes)).toEqual({
      'mlp.fc1.weight': [null, 0],
      'mlp.fc1.bias': [0],
      'mlp.fc2.weight': [0, 1],
      'mlp.fc2.bias': [1],
      'mlp.fc3.weight': [1, null],
      'mlp.fc3.bias': [null],
    });
    expect(spec.hidden?.every((h) => h.channelsLast)).toBe(true);
  });

  test.each(FIXTURES)('%s: a random permutation leaves the logits unchanged (checked)', async (file) => {
    const model = load(file);
    const spec = inferPermutationSpec(model);
    expect(spec.perms.length).toBeGreaterThan(0);
    await expect(checkPermutationSpec(model, spec)).resolves.toBeUndefined();
  });
});

describe('weight matching on imported models', () => {
  const x = readMnistDigits().x.subarray(0, 20 * 784);

  test.each(['resnet-s0.onnx', 'cnn-s0.onnx', 'resnet-s0-fused.onnx', 'mlp-s0-matmul.onnx'])(
    '%s: a randomly permuted copy is recovered exactly (aligned L2 = 0)',
    async (file) => {
      const model = load(file);
      const spec = inferPermutationSpec(model);
      const layout = model.architecture.layout;
      const permuted = applyPermutations(model.weights, layout, randomPerms(spec, 5), spec);
      expect(l2Distance(model.weights, permuted)).toBeGreaterThan(1);
      // The permuted copy computes the same logits on real digits.
      const session = await ImportedSession.create(model.architecture);
      sessions.push(session);
      const za = await session.logits(model.weights, x, 20);
      const zb = await session.logits(permuted, x, 20);
      za.data.forEach((v, i) => {
        expect(Math.abs(v - (zb.data[i] as number))).toBeLessThan(1e-4 * Math.max(1, Math.abs(v)));
      });
      const r = weightMatching(model.weights, permuted, layout, { seed: 0, spec });
      expect(r.converged).toBe(true);
      expect(r.aligned).toEqual(model.weights);
      expect(l2Distance(model.weights, r.aligned)).toBe(0);
    },
  );

  test('two seeds of the ResNet: alignment brings them closer', () => {
    const a = load('resnet-s0.onnx');
    const b = load('resnet-s1.onnx');
    const spec = inferPermutationSpec(a);
    const r = weightMatching(a.weights, b.weights, a.architecture.layout, { seed: 0, spec });
    expect(l2Distance(a.weights, r.aligned)).toBeLessThan(l2Distance(a.weights, b.weights));
  });
});

describe('checkPermutationSpec refuses a wrong spec, naming the tensor', () => {
  test('a BatchNorm buffer left out of its residual stream', async () => {
    const model = load('resnet-s0.onnx');
    const spec = inferPermutationSpec(model);
    const json = permutationSpecJson(spec);
    const stem = json.perms[0] as (typeof json.perms)[number];
    stem.axes = stem.axes.filter((a) => a.tensor !== 'block1.bn2.running_var');
    const wrong = parsePermutationSpec(json, model, 'wrong.json');
    await expect(checkPermutationSpec(model, wrong)).rejects.toThrow(
      /axis 0 of 'block1\.bn2\.running_var' is missing from 'stem'/,
    );
  });

  test('an axis that must not be permuted', async () => {
    const model = load('mlp-s0.onnx');
    const wrong = parsePermutationSpec(
      {
        perms: [
          {
            name: 'fc1',
            axes: [
              { tensor: 'fc1.weight', axis: 0 },
              { tensor: 'fc1.bias', axis: 0 },
              { tensor: 'fc2.weight', axis: 1 },
              { tensor: 'fc2.weight', axis: 0 },
            ],
          },
        ],
      },
      model,
      'wrong.json',
    );
    const error = await checkPermutationSpec(model, wrong).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OnnxModelError);
    expect((error as Error).message).toMatch(/axis 0 of 'fc2\.weight' is not permuted with 'fc1'/);
  });
});

describe('user permutation specs (JSON)', () => {
  test('the JSON form round-trips, and errors name the field', () => {
    const model = load('cnn-s0.onnx');
    const spec = inferPermutationSpec(model);
    const again = parsePermutationSpec(
      JSON.parse(JSON.stringify(permutationSpecJson(spec))),
      model,
      's.json',
    );
    expect(again.perms).toEqual(spec.perms);
    expect(again.axes).toEqual(spec.axes);
    expect(again.hidden).toEqual(spec.hidden);
    const one = (axes: unknown) => ({ perms: [{ name: 'p', axes }] });
    expect(() => parsePermutationSpec(one([{ tensor: 'conv9.weight', axis: 0 }]), model, 's.json')).toThrow(
      /s\.json: perms\[0\]\.axes\[0\]\.tensor: the model has no tensor 'conv9\.weight'/,
    );
    expect(() => parsePermutationSpec(one([{ tensor: 'conv1.weight', axis: 4 }]), model, 's.json')).toThrow(
      /perms\[0\]\.axes\[0\]\.axis: 'conv1\.weight' \[8,1,3,3\] has no axis 4/,
    );
    expect(() =>
      parsePermutationSpec(
        one([
          { tensor: 'conv2.weight', axis: 0 },
          { tensor: 'fc.weight', axis: 1, block: 48 },
        ]),
        model,
        's.json',
      ),
    ).toThrow(/perms\[0\]\.axes\[1\]: axis 1 of 'fc\.weight' \[10,784\] does not hold 16 units of 48/);
    expect(() => parsePermutationSpec({ perms: [], extra: 1 }, model, 's.json')).toThrow(
      /extra: unknown field/,
    );
    expect(() =>
      parsePermutationSpec({ perms: [], hidden: [{ name: 'relu1', perm: 'nope' }] }, model, 's.json'),
    ).toThrow(/hidden\[0\]\.perm: no permutation named 'nope'/);
  });
});

describe('inference refuses ops it cannot permute through', () => {
  test('an unknown op on hidden channels: the node and op are named', () => {
    const bytes = readFileSync(fixturePath('onnx', 'mlp-s0.onnx'));
    const m = decodeModel(bytes, 'mlp');
    const relu = m.graph?.node?.find((n) => n.opType === 'Relu');
    if (!relu) throw new Error('no Relu');
    relu.opType = 'Softmax';
    const model = importOnnx(encodeModel(m), 'softmax.onnx');
    expect(() => inferPermutationSpec(model)).toThrow(OnnxModelError);
    expect(() => inferPermutationSpec(model)).toThrow(
      /softmax\.onnx: cannot infer a permutation spec: the channels of 'fc1' reach node '\/relu1\/Relu' \(Softmax\)/,
    );
  });
});
