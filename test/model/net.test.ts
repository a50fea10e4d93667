/**
 * Layer graphs: shapes, layer numbering and parameter counts of `cnn` and `resnet` against counts
 * worked out by hand, and the errors of bad specs.
 */
import { describe, expect, test } from 'vitest';
import { hiddenOutputs, modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import { Rng } from '../../src/rng/rng.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';

/** Parameters (without BatchNorm buffers) of a k×k conv without bias followed by BatchNorm. */
const convBn = (cin: number, cout: number, k: number) => cin * cout * k * k + 2 * cout;

describe('resnet', () => {
  test.each([
    [8, 1],
    [20, 1],
    [14, 2],
  ])('ResNet-%i (width %i): 6n + 2 layers, option-B shortcuts, parameter count by hand', (depth, width) => {
    const model = modelGraphSpec({ kind: 'resnet', depth, width }, 784, 10, 'cross-entropy');
    const n = (depth - 2) / 6;
    const [c1, c2, c3] = [16 * width, 32 * width, 64 * width];
    let expected = convBn(1, c1, 3);
    for (const [cin, c] of [
      [c1, c1],
      [c1, c2],
      [c2, c3],
    ] as const) {
      expected += convBn(cin, c, 3) + convBn(c, c, 3) + (cin !== c ? convBn(cin, c, 1) : 0);
      expected += (n - 1) * 2 * convBn(c, c, 3);
    }
    expected += c3 * 10 + 10;
    const params = model.layout.tensors.filter((t) => t.role !== 'buffer').reduce((s, t) => s + t.size, 0);
    expect(params).toBe(expected);
    // Convs with weights: the stem, 2 per block, and the two projection shortcuts (the "6n + 2" counts
    // the stem, 6n convs and the dense layer).
    const convs = model.layout.tensors.filter((t) => /^conv\d+\.weight$/.test(t.name));
    expect(convs).toHaveLength(1 + 6 * n + 2);
    expect(model.layout.tensors.filter((t) => /^dense\d+\.weight$/.test(t.name))).toHaveLength(1);
    // Every BatchNorm has its running mean and variance as buffers.
    expect(model.layout.tensors.filter((t) => t.role === 'buffer')).toHaveLength(2 * convs.length);
    // Hidden outputs: one per residual block, [C, H, W] at 28, 14, 7.
    const hidden = hiddenOutputs(model);
    expect(hidden.map((h) => h.name)).toEqual(Array.from({ length: 3 * n }, (_, i) => `block${i}`));
    expect(hidden.map((h) => h.width)).toEqual([
      ...new Array(n).fill(c1 * 28 * 28),
      ...new Array(n).fill(c2 * 14 * 14),
      ...new Array(n).fill(c3 * 7 * 7),
    ]);
  });

  test('PyTorch names and shapes; init: scale 1, shift 0, running mean 0, running var 1', () => {
    const model = modelGraphSpec({ kind: 'resnet', depth: 8 }, 784, 10, 'cross-entropy');
    const names = model.layout.tensors.slice(0, 6).map((t) => `${t.name} [${t.shape}]`);
    expect(names).toEqual([
      'conv0.weight [16,1,3,3]',
      'norm0.weight [16]',
      'norm0.bias [16]',
      'norm0.running_mean [16]',
      'norm0.running_var [16]',
      'conv1.weight [16,16,3,3]',
    ]);
    const p = initParams(model.layout, { kind: 'he' }, Rng.fromSeed(0).stream('init'));
    const at = (name: string) => {
      const t = model.layout.tensors.find((s) => s.name === name) as { offset: number; size: number };
      return [...p.subarray(t.offset, t.offset + t.size)];
    };
    expect(at('norm0.weight')).toEqual(new Array(16).fill(1));
    expect(at('norm0.bias')).toEqual(new Array(16).fill(0));
    expect(at('norm0.running_mean')).toEqual(new Array(16).fill(0));
    expect(at('norm0.running_var')).toEqual(new Array(16).fill(1));
    // He init of conv0 (fan-in 9): sample std within 20 % of √(2/9) over its 144 entries.
    const w = at('conv0.weight');
    const std = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
    expect(Math.abs(std / Math.sqrt(2 / 9) - 1)).toBeLessThan(0.2);
  });
});

describe('cnn', () => {
  test('conv-pool blocks then a dense head: 28 → 14 → 7, flatten 32·7·7, biases only without norm', () => {
    const model = modelGraphSpec({ kind: 'cnn', channels: [16, 32], dense: [64] }, 784, 10, 'cross-entropy');
    expect(model.layout.tensors.map((t) => `${t.name} [${t.shape}]`)).toEqual([
      'conv0.weight [16,1,3,3]',
      'conv0.bias [16]',
      'conv1.weight [32,16,3,3]',
      'conv1.bias [32]',
      'dense0.weight [64,1568]',
      'dense0.bias [64]',
      'dense1.weight [10,64]',
      'dense1.bias [10]',
    ]);
    expect(hiddenOutputs(model)).toEqual([
      { name: 'conv0', width: 16 * 28 * 28 },
      { name: 'conv1', width: 32 * 14 * 14 },
      { name: 'dense0', width: 64 },
    ]);
  });

  test('bad specs name the field', () => {
    expect(() => modelGraphSpec({ kind: 'cnn', channels: [4] }, 10, 2, 'cross-entropy')).toThrow(
      'model.image is required: 10 input features are not a square image',
    );
    expect(() =>
      modelGraphSpec({ kind: 'cnn', channels: [4], image: [3, 4, 4] }, 36, 2, 'cross-entropy'),
    ).toThrow('model.image [3,4,4] has 48 elements, but the data has 36 features');
    expect(() =>
      modelGraphSpec({ kind: 'cnn', channels: [6], norm: 'group', groups: 4 }, 16, 2, 'cross-entropy'),
    ).toThrow('model.groups 4 must divide the 6 channels of norm0');
    expect(() => modelGraphSpec({ kind: 'resnet', depth: 9 }, 784, 10, 'cross-entropy')).toThrow(
      'model.depth must be 6n + 2 (8, 14, 20, …), got 9',
    );
    const spec = {
      name: 'x',
      seed: 0,
      data: { name: 'mnist', nTrain: 10, nTest: 10 },
      optimizer: { kind: 'sgd', lr: 0.1 },
      batchSize: 5,
      steps: 1,
    };
    expect(() => parseRunSpec({ ...spec, model: { kind: 'resnet', depth: 10 } })).toThrow(/model\.depth/);
    expect(() => parseRunSpec({ ...spec, model: { kind: 'cnn', channels: [] } })).toThrow(/model\.channels/);
  });
});
