/**
 * Import of PyTorch-exported ONNX fixtures (fixtures/onnx/, made by fixtures/onnx/make.py): weights
 * found wherever the exporter put them, logits equal to PyTorch's reference within float32
 * tolerance, hidden outputs, and clear errors for what is not supported.
 */
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, test } from 'vitest';
import { readMnistDigits } from '../../src/data/mnist.js';
import { checkSameArchitecture, importOnnx, importOnnxFile } from '../../src/onnx/import-model.js';
import { decodeModel, encodeModel, OnnxModelError, proto } from '../../src/onnx/proto.js';
import { ImportedSession } from '../../src/onnx/session.js';
import { fixturePath } from '../helpers/fixtures.js';

interface Reference {
  inputRows: number[];
  inputSum: number;
  files: Record<string, { model: string; seed: number; logits: number[] }>;
  models: Record<string, { inputShape: number[]; l2: number; l2Params: number; floatTensors: number }>;
}

const reference = JSON.parse(readFileSync(fixturePath('onnx', 'reference.json'), 'utf8')) as Reference;

/** The reference inputs: rows of the mnist package's digits, flat [10, 784]. */
function probeInputs(): Float32Array {
  const { x } = readMnistDigits();
  const out = new Float32Array(reference.inputRows.length * 784);
  reference.inputRows.forEach((r, i) => {
    out.set(x.subarray(r * 784, (r + 1) * 784), i * 784);
  });
  return out;
}

const sessions: ImportedSession[] = [];
afterAll(async () => {
  await Promise.all(sessions.map((s) => s.dispose()));
});

describe('importOnnx on the PyTorch fixtures', () => {
  const x = probeInputs();

  test('the reference inputs are the digits PyTorch used', () => {
    let sum = 0;
    for (const v of x) sum += v;
    expect(sum).toBeCloseTo(reference.inputSum, 6);
  });

  test.each(Object.keys(reference.files))(
    '%s: logits match PyTorch within float32 tolerance',
    async (file) => {
      const ref = reference.files[file] as Reference['files'][string];
      const model = importOnnxFile(fixturePath('onnx', file));
      const session = await ImportedSession.create(model.architecture);
      sessions.push(session);
      const z = await session.logits(model.weights, x, reference.inputRows.length);
      expect(z.cols).toBe(10);
      let worst = 0;
      ref.logits.forEach((v, i) => {
        worst = Math.max(worst, Math.abs((z.data[i] as number) - v) / Math.max(1, Math.abs(v)));
      });
      expect(worst).toBeLessThan(1e-5); // measured: at most 2.9e-6 (docs/merging.md)
    },
  );

  test('weights: every float tensor of the state dict, BatchNorm statistics and tied biases included', () => {
    for (const [name, ref] of Object.entries(reference.models)) {
      const m = importOnnxFile(fixturePath('onnx', `${name}-s0.onnx`));
      expect(m.weights.length).toBe(ref.floatTensors);
      expect(m.architecture.inputShape).toEqual(ref.inputShape);
      expect(m.architecture.batch).toBeNull();
    }
    const resnet = importOnnxFile(fixturePath('onnx', 'resnet-s0.onnx'));
    const names = resnet.architecture.layout.tensors.map((t) => t.name);
    // The exporter ties block2.shortcut.1.bias to block2.bn2.bias (equal values) with an Identity.
    expect(names).toContain('block2.shortcut.1.bias');
    expect(names).toContain('block2.bn1.running_var');
    expect(names[0]).toBe('stem.weight');
  });

  test('exporter-named weights of the fused models get names from their consumers', () => {
    const fused = importOnnxFile(fixturePath('onnx', 'resnet-s0-fused.onnx'));
    const names = fused.architecture.layout.tensors.map((t) => t.name);
    expect(names.slice(0, 4)).toEqual([
      'stem.weight',
      'stem.bias',
      'block1.conv1.weight',
      'block1.conv1.bias',
    ]);
    expect(names).toContain('block2.shortcut.shortcut.0.weight');
    expect(names.at(-1)).toBe('fc.bias');
  });

  test('constant-folded, transposed MatMul weights (onnx::MatMul_*) are found and named', () => {
    const mm = importOnnxFile(fixturePath('onnx', 'mlp-s0-matmul.onnx'));
    const slots = mm.architecture.layout.tensors;
    expect(slots.map((t) => [t.name, t.shape])).toEqual([
      ['mlp.fc1.weight', [784, 32]],
      ['mlp.fc1.bias', [32]],
      ['mlp.fc2.weight', [32, 32]],
      ['mlp.fc2.bias', [32]],
      ['mlp.fc3.weight', [32, 10]],
      ['mlp.fc3.bias', [10]],
    ]);
    // The same weights as mlp-s0.onnx's Gemm weights [out, in], transposed by the exporter.
    const gemm = importOnnxFile(fixturePath('onnx', 'mlp-s0.onnx'));
    const w = gemm.weights.subarray(0, 32 * 784);
    const wt = mm.weights.subarray(0, 784 * 32);
    for (let o = 0; o < 32; o += 7)
      for (let i = 0; i < 784; i += 97) expect(wt[i * 32 + o]).toBe(w[o * 784 + i]);
    expect(mm.weights.subarray(784 * 32, 784 * 32 + 32)).toEqual(
      gemm.weights.subarray(784 * 32, 784 * 32 + 32),
    );
  });

  test('initializers listed as graph inputs (the MLP fused file) import as the same weights', () => {
    const a = importOnnxFile(fixturePath('onnx', 'mlp-s0.onnx'));
    const b = importOnnxFile(fixturePath('onnx', 'mlp-s0-fused.onnx'));
    expect(b.weights).toEqual(a.weights);
    expect(() => checkSameArchitecture(a, b)).not.toThrow();
  });

  test('hidden outputs are the activations, named by scope', async () => {
    const m = importOnnxFile(fixturePath('onnx', 'resnet-s0.onnx'));
    expect(m.architecture.hidden.map((h) => h.name)).toEqual([
      'relu',
      'block1.relu1',
      'block1.relu2',
      'block2.relu1',
      'block2.relu2',
    ]);
    const session = await ImportedSession.create(m.architecture);
    sessions.push(session);
    const h = await session.hidden(m.weights, x.subarray(0, 3 * 784), 3);
    expect(h.get('relu')?.cols).toBe(8 * 14 * 14);
    expect(h.get('block2.relu2')?.cols).toBe(16 * 7 * 7);
    expect(h.get('relu')?.data.length).toBe(3 * 8 * 14 * 14);
  });

  test('weights as Constant nodes import as initializers do', async () => {
    const bytes = readFileSync(fixturePath('onnx', 'cnn-s0.onnx'));
    const model = decodeModel(bytes, 'cnn');
    const graph = model.graph as NonNullable<typeof model.graph>;
    const constants = (graph.initializer ?? []).map((t) => ({
      opType: 'Constant',
      name: `const_${t.name}`,
      input: [],
      output: [t.name as string],
      attribute: [{ name: 'value', type: proto.AttributeProto.AttributeType.TENSOR, t }],
    }));
    graph.node = [...constants, ...(graph.node ?? [])];
    graph.initializer = [];
    const viaConstants = importOnnx(encodeModel(model), 'cnn-constants');
    const original = importOnnxFile(fixturePath('onnx', 'cnn-s0.onnx'));
    expect(viaConstants.weights).toEqual(original.weights);
    expect(viaConstants.architecture.layout).toEqual(original.architecture.layout);
    const session = await ImportedSession.create(viaConstants.architecture);
    sessions.push(session);
    const z = await session.logits(viaConstants.weights, x.subarray(0, 2 * 784), 2);
    const ref = reference.files['cnn-s0.onnx']?.logits as number[];
    for (let i = 0; i < 20; i++) expect(z.data[i]).toBeCloseTo(ref[i] as number, 4);
  });
});

describe('a graph with a fixed batch size', () => {
  test('is fed in chunks of that size, the last one padded', async () => {
    const model = decodeModel(readFileSync(fixturePath('onnx', 'cnn-s0.onnx')), 'cnn');
    const graph = model.graph as NonNullable<typeof model.graph>;
    for (const v of [...(graph.input ?? []), ...(graph.output ?? [])]) {
      const dims = v.type?.tensorType?.shape?.dim;
      if (dims?.[0]) dims[0] = { dimValue: 4 };
    }
    const fixed = importOnnx(encodeModel(model), 'cnn-batch4');
    expect(fixed.architecture.batch).toBe(4);
    const session = await ImportedSession.create(fixed.architecture);
    sessions.push(session);
    const x = probeInputs();
    const z = await session.logits(fixed.weights, x, 10); // chunks of 4, 4 and 2 (+2 padding rows)
    const ref = reference.files['cnn-s0.onnx']?.logits as number[];
    expect(z.data.length).toBe(100);
    ref.forEach((v, i) => {
      expect(Math.abs((z.data[i] as number) - v)).toBeLessThan(1e-4);
    });
  });
});

describe('importOnnx refuses what it does not support, naming it', () => {
  const cnn = () => decodeModel(readFileSync(fixturePath('onnx', 'cnn-s0.onnx')), 'cnn');

  test('external data', () => {
    const model = cnn();
    const t = model.graph?.initializer?.[0] as NonNullable<typeof model.graph>['initializer'] extends
      | (infer T)[]
      | null
      | undefined
      ? T
      : never;
    t.dataLocation = proto.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: 'weights.bin' }];
    expect(() => importOnnx(encodeModel(model), 'ext.onnx')).toThrow(/external data/);
    expect(() => importOnnx(encodeModel(model), 'ext.onnx')).toThrow(OnnxModelError);
  });

  test('a dynamic axis other than the batch axis', () => {
    const model = cnn();
    const dims = model.graph?.input?.[0]?.type?.tensorType?.shape?.dim ?? [];
    dims[2] = { dimParam: 'H' };
    expect(() => importOnnx(encodeModel(model), 'dyn.onnx')).toThrow(
      /dynamic axis 2 \('H'\) that cannot be fixed/,
    );
  });

  test('not an ONNX file, and a missing file', () => {
    expect(() => importOnnx(new TextEncoder().encode('hello, world'), 'x.onnx')).toThrow(OnnxModelError);
    expect(() => importOnnxFile('/nonexistent/model.onnx')).toThrow(/no such file/);
  });

  test('A and B with different weights or graphs', () => {
    const mlp = importOnnxFile(fixturePath('onnx', 'mlp-s0.onnx'));
    const cnnModel = importOnnxFile(fixturePath('onnx', 'cnn-s0.onnx'));
    expect(() => checkSameArchitecture(mlp, cnnModel)).toThrow(
      /different weights: weight 0 is 'fc1.weight' \[32, 784\] in A/,
    );
    const fused = importOnnxFile(fixturePath('onnx', 'cnn-s0-fused.onnx'));
    expect(() => checkSameArchitecture(cnnModel, fused)).toThrow(OnnxModelError);
  });
});
