/**
 * BatchNorm-aware evaluation of imported models (src/onnx/norm-stats.ts, issue 15 item 4).
 *
 * `recompute` matches PyTorch: the reference numbers below are the running statistics PyTorch 1.13
 * computed for the fixture CNN and ResNet (weights loaded from the seed-0 ONNX files into
 * fixtures/onnx/make.py's `Cnn` / `ResNet`), after `reset_running_stats()` and `momentum = None` on
 * every BatchNorm2d, in train mode, on the first 500 examples of twinscope's `mnist` train split
 * (data seed 0) in batches of 128 (128, 128, 128, 116), under torch.no_grad().
 *
 * The barrier test builds a copy of the fixture CNN that computes the same function with different
 * weights: its channels permuted with a hand-written permutation spec of the CNN and each
 * convolution's output channels rescaled by a power of two (BatchNorm absorbs the scale: running
 * mean × s, running variance s² v + (s² − 1) ε), then aligned back with the inverse permutations. The weights
 * still differ by the per-channel scales, so the straight line between them interpolates the running
 * variances wrongly (the variance of (1 − α) x + α s x is not (1 − α) v + α s² v): with the statistics
 * copied there is a barrier, with them recomputed there is none. The same for the ResNet with a
 * random permutation under its inferred spec, aligned back by `compareModels`' activation matching.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import type { Split } from '../../src/data/types.js';
import { applyPermutations } from '../../src/measure/align.js';
import type { ParameterLayout, TensorSlot } from '../../src/model/layout.js';
import { compareModels } from '../../src/onnx/compare.js';
import { type ImportedModel, importOnnxFile } from '../../src/onnx/import-model.js';
import { NormStats, normalizationLayers } from '../../src/onnx/norm-stats.js';
import { inferPermutationSpec } from '../../src/onnx/permutation-spec.js';
import { ImportedSession } from '../../src/onnx/session.js';
import { Rng } from '../../src/rng/rng.js';
import { fixturePath } from '../helpers/fixtures.js';

const cnn = importOnnxFile(fixturePath('onnx', 'cnn-s0.onnx'));
const resnet = importOnnxFile(fixturePath('onnx', 'resnet-s0.onnx'));
const mlp = importOnnxFile(fixturePath('onnx', 'mlp-s0.onnx'));
let train: Split;
let test_: Split;

const head = (s: Split, n: number): Split => ({
  x: s.x.subarray(0, n * 784),
  y: s.y.subarray(0, n * 10),
  n,
});

beforeAll(() => {
  const ds = loadDataset({ name: 'mnist' }, 0);
  train = head(ds.train, 500);
  test_ = head(ds.test, 500);
});

const slot = (m: ImportedModel, name: string) => {
  const s = m.architecture.layout.tensors.find((t) => t.name === name);
  if (!s) throw new Error(`no ${name}`);
  return s;
};
const values = (w: Float32Array, s: TensorSlot, k = 3) => Array.from(w.subarray(s.offset, s.offset + k));

function expectClose(got: number[], want: number[], rel: number) {
  got.forEach((g, i) => {
    const w = want[i] as number;
    expect(Math.abs(g - w), `entry ${i}: ${g} vs ${w}`).toBeLessThanOrEqual(
      rel * Math.max(1e-3, Math.abs(w)),
    );
  });
}

describe('normalization layers of the fixtures', () => {
  test('BatchNorm nodes and affine layers are found with their slots', () => {
    const c = normalizationLayers(cnn.architecture);
    expect(c.batchNorms.map((b) => [b.name, b.channels, b.mean.name, b.variance.name])).toEqual([
      ['bn1', 8, 'bn1.running_mean', 'bn1.running_var'],
      ['bn2', 16, 'bn2.running_mean', 'bn2.running_var'],
    ]);
    expect(c.batchNorms[0]?.epsilon).toBeCloseTo(1e-5, 10);
    expect(normalizationLayers(resnet.architecture).batchNorms.map((b) => b.name)).toEqual([
      'bn',
      'block1.bn1',
      'block1.bn2',
      'block2.bn1',
      'block2.bn2',
      'block2.shortcut.1',
    ]);
    const m = normalizationLayers(mlp.architecture);
    expect(m.batchNorms).toEqual([]);
    expect(m.affine.map((a) => [a.name, a.weight.name, a.weightAxis, a.bias.name, a.channels])).toEqual([
      ['fc1', 'fc1.weight', 0, 'fc1.bias', 32],
      ['fc2', 'fc2.weight', 0, 'fc2.bias', 32],
    ]);
  });
});

describe('recompute matches PyTorch (momentum=None, batches of 128)', () => {
  test('CNN and ResNet running statistics to 2e-5 relative', async () => {
    for (const [model, mean, variance, wantMean, wantVar] of [
      [
        cnn,
        'bn2.running_mean',
        'bn2.running_var',
        [-0.6775965690612793, -0.5211310386657715, 0.1177506074309349],
        [3.668456554412842, 2.3450193405151367, 1.19913911819458],
      ],
      [
        resnet,
        'block2.shortcut.1.running_mean',
        'block2.shortcut.1.running_var',
        [-0.25059932470321655, -0.44637176394462585, -0.8367229104042053],
        [0.303920716047287, 0.19985802471637726, 0.6772187352180481],
      ],
    ] as const) {
      const norm = await NormStats.create(model.architecture, { batch: 128 });
      try {
        const w = await norm.recompute(model.weights, train.x, train.n);
        expectClose(values(w, slot(model, mean)), [...wantMean], 2e-5);
        expectClose(values(w, slot(model, variance)), [...wantVar], 2e-5);
        // Only the running statistics change.
        const stats = new Set(norm.batchNorms.flatMap((b) => [b.mean.name, b.variance.name]));
        for (const t of model.architecture.layout.tensors) {
          if (stats.has(t.name)) continue;
          expect(values(w, t, t.size)).toEqual(values(model.weights, t, t.size));
        }
      } finally {
        await norm.dispose();
      }
    }
  });
});

/**
 * The fixture CNN's permutation spec, by hand: P1 (8 channels) acts on conv1's outputs, bn1 and
 * conv2's inputs; P2 (16) on conv2's outputs, bn2 and fc's inputs (flattened channel-major: channel
 * c is columns 49 c … 49 c + 48 of fc.weight).
 */
const EPS = 1e-5;

function permuteAndScaleCnn(
  w: Float32Array,
  layout: ParameterLayout,
  p1: readonly number[],
  p2: readonly number[],
  s1: readonly number[],
  s2: readonly number[],
): Float32Array {
  const out = Float32Array.from(w);
  const get = (name: string) => layout.tensors.find((t) => t.name === name) as TensorSlot;
  // Out-channel permutation (and scale) of a conv layer and its BatchNorm: channel i of the copy is channel p[i].
  const channels = (conv: string, bn: string, p: readonly number[], s: readonly number[]) => {
    const cw = get(`${conv}.weight`);
    const per = cw.size / (cw.shape[0] as number);
    p.forEach((src, i) => {
      const f = s[i] as number;
      for (let j = 0; j < per; j++)
        out[cw.offset + i * per + j] = (w[cw.offset + src * per + j] as number) * f;
      const cb = get(`${conv}.bias`);
      out[cb.offset + i] = (w[cb.offset + src] as number) * f;
      for (const [t, g] of [
        ['weight', 1],
        ['bias', 1],
        ['running_mean', f],
      ] as const) {
        const b = get(`${bn}.${t}`);
        out[b.offset + i] = (w[b.offset + src] as number) * g;
      }
      // s² v + (s² − 1) ε, so that √(v' + ε) = s √(v + ε) exactly: the same function.
      const v = get(`${bn}.running_var`);
      out[v.offset + i] = (w[v.offset + src] as number) * f * f + (f * f - 1) * EPS;
    });
  };
  channels('conv1', 'bn1', p1, s1);
  channels('conv2', 'bn2', p2, s2);
  // In-channel permutations: conv2.weight axis 1 by P1 (after its rows were permuted above), fc.weight columns by P2.
  const c2 = get('conv2.weight');
  const rows = Float32Array.from(out.subarray(c2.offset, c2.offset + c2.size));
  for (let o = 0; o < 16; o++)
    p1.forEach((src, i) => {
      for (let k = 0; k < 9; k++) out[c2.offset + o * 72 + i * 9 + k] = rows[o * 72 + src * 9 + k] as number;
    });
  const fc = get('fc.weight');
  for (let o = 0; o < 10; o++)
    p2.forEach((src, i) => {
      for (let k = 0; k < 49; k++)
        out[fc.offset + o * 784 + i * 49 + k] = w[fc.offset + o * 784 + src * 49 + k] as number;
    });
  return out;
}

const inverse = (p: readonly number[]) => {
  const q = new Array<number>(p.length);
  p.forEach((v, i) => {
    q[v] = i;
  });
  return q;
};

describe('a permuted, rescaled copy of the fixture CNN', () => {
  const p1 = [3, 7, 0, 5, 1, 6, 2, 4];
  const p2 = [9, 2, 14, 0, 11, 5, 15, 7, 1, 12, 4, 10, 3, 13, 6, 8];
  const s1 = p1.map((_, i) => 2 ** ((i % 5) - 2)); // 1/4 … 4
  const s2 = p2.map((_, i) => 2 ** ((i % 4) - 1)); // 1/2 … 4
  const layout = cnn.architecture.layout;
  const copy = permuteAndScaleCnn(cnn.weights, layout, p1, p2, s1, s2);
  // Aligned back: the inverse permutations, scales 1 (the copy's scales stay, now in A's channel order).
  const aligned = permuteAndScaleCnn(
    copy,
    layout,
    inverse(p1),
    inverse(p2),
    [1, 1, 1, 1, 1, 1, 1, 1],
    new Array(16).fill(1),
  );
  let session: ImportedSession;
  beforeAll(async () => {
    session = await ImportedSession.create(cnn.architecture);
  });
  afterAll(async () => {
    await session.dispose();
  });

  test('computes the same function as the CNN (the spec is right)', async () => {
    const x = test_.x.subarray(0, 100 * 784);
    const a = await session.logits(cnn.weights, x, 100);
    for (const w of [copy, aligned]) {
      const b = await session.logits(w, x, 100);
      let worst = 0;
      a.data.forEach((v, i) => {
        worst = Math.max(worst, Math.abs(v - (b.data[i] as number)));
      });
      expect(worst).toBeLessThan(1e-4);
    }
    // Alignment undid the permutation exactly: only the scaled tensors differ.
    expect(values(aligned, slot(cnn, 'fc.weight'), 784 * 10)).toEqual(
      values(cnn.weights, slot(cnn, 'fc.weight'), 784 * 10),
    );
    expect(values(aligned, slot(cnn, 'conv1.weight'), 72)).not.toEqual(
      values(cnn.weights, slot(cnn, 'conv1.weight'), 72),
    );
  });

  test('barrier 0 at every α with statistics recomputed; not with them copied', async () => {
    const b: ImportedModel = { ...cnn, source: 'aligned copy', weights: aligned };
    const data = { name: 'mnist', train, test: test_ };
    const opts = { alphas: 5, ckaExamples: 50 } as const;
    const recomputed = await compareModels(cnn, b, data, { ...opts, normalization: 'recompute' });
    const copied = await compareModels(cnn, b, data, { ...opts, normalization: 'copy' });
    const repaired = await compareModels(cnn, b, data, { ...opts, normalization: 'repair' });
    expect([recomputed.normalization, copied.normalization, repaired.normalization]).toEqual([
      'recompute',
      'copy',
      'repair',
    ]);
    expect(recomputed.normExamples).toBe(500);
    expect(copied.normExamples).toBeNull();
    for (const r of [recomputed, repaired]) {
      const c = r.test as NonNullable<typeof r.test>;
      // Every point is the same network up to BatchNorm's ε: flat to 1e-4 relative.
      expect(Math.max(...c.loss) - Math.min(...c.loss)).toBeLessThan(2e-5);
      expect(new Set(c.error).size).toBe(1);
      expect(c.barrierLoss.linear).toBeLessThan(1e-5);
      expect(c.barrierLoss.midpointMean).toBeLessThan(1e-5);
      expect(c.barrierError.linear).toBe(0);
    }
    // REPAIR matches each channel to the endpoints' (equal) statistics: flat to float32 rounding.
    expect(repaired.test?.barrierLoss.midpointMean).toBeLessThan(1e-7);
    // Recomputed on 500 train examples: test loss 0.14462 at every α (stored statistics: 0.14228).
    expect(recomputed.test?.loss[2]).toBeCloseTo(0.144616, 5);
    expect(repaired.test?.loss[0]).toBeCloseTo(0.142277, 5);
    // Copied (interpolated naively): the running variances are wrong inside the path.
    const c = copied.test as NonNullable<typeof copied.test>;
    expect(c.loss[0]).toBeCloseTo(0.142277, 5);
    expect(c.loss[1]).toBeCloseTo(0.154533, 5);
    expect(c.loss[4]).toBeCloseTo(0.142277, 5);
    expect(c.barrierLoss.linear).toBeCloseTo(0.0122552, 6);
    expect(c.barrierError.linear).toBeCloseTo(0.002, 9);
  });
});

/**
 * The same with the ResNet, end to end: its channels and residual streams permuted at random with
 * the permutation spec inferred from its graph (src/onnx/permutation-spec.ts), each convolution's
 * output channels rescaled as above, and `compareModels` aligning the copy back by activation
 * matching.
 */
describe('a randomly permuted, rescaled copy of the fixture ResNet, aligned by compare', () => {
  test('aligned barrier 0 with statistics recomputed; not with them copied', async () => {
    const layout = resnet.architecture.layout;
    const spec = inferPermutationSpec(resnet);
    const rng = Rng.fromSeed(7).stream('test');
    const perms = spec.perms.map((g) => Int32Array.from(rng.permutation(g.size)));
    const copy = applyPermutations(resnet.weights, layout, perms, spec);
    // Each convolution's output channels rescaled; its BatchNorm absorbs the scale.
    for (const [conv, bn] of [
      ['stem', 'bn'],
      ['block1.conv1', 'block1.bn1'],
      ['block1.conv2', 'block1.bn2'],
      ['block2.conv1', 'block2.bn1'],
      ['block2.conv2', 'block2.bn2'],
      ['block2.shortcut.0', 'block2.shortcut.1'],
    ] as const) {
      const w = slot(resnet, `${conv}.weight`);
      const m = slot(resnet, `${bn}.running_mean`);
      const v = slot(resnet, `${bn}.running_var`);
      const per = w.size / (w.shape[0] as number);
      for (let c = 0; c < (w.shape[0] as number); c++) {
        const s = 2 ** ((c % 5) - 2);
        for (let j = 0; j < per; j++)
          copy[w.offset + c * per + j] = (copy[w.offset + c * per + j] as number) * s;
        copy[m.offset + c] = (copy[m.offset + c] as number) * s;
        copy[v.offset + c] = (copy[v.offset + c] as number) * s * s + (s * s - 1) * EPS;
      }
    }
    const b: ImportedModel = { ...resnet, source: 'permuted copy', weights: copy };
    const data = { name: 'mnist', train, test: test_ };
    // Activation matching: after each BatchNorm the copy's channels equal A's, permuted.
    const opts = { alphas: 5, ckaExamples: 50, alignExamples: 500 };
    const recomputed = await compareModels(resnet, b, data, {
      ...opts,
      align: ['activation'],
      normalization: 'recompute',
    });
    const copied = await compareModels(resnet, b, data, {
      ...opts,
      align: ['activation'],
      normalization: 'copy',
    });
    for (const r of [recomputed, copied]) {
      // Unaligned: far apart and not connected; aligned: only the channel scales remain (L2 68.0).
      expect(r.test?.barrierLoss.linear).toBeGreaterThan(1.5);
      expect(r.alignment?.activation?.l2).toBeCloseTo(67.998, 2);
    }
    const rec = recomputed.alignment?.activation?.test as NonNullable<typeof recomputed.test>;
    // Recomputed: the same network at every α, up to BatchNorm's ε (loss 0.50248 to 7e-5).
    expect(rec.loss[0]).toBeCloseTo(0.502476, 5);
    expect(Math.max(...rec.loss) - Math.min(...rec.loss)).toBeLessThan(1e-4);
    expect(rec.barrierLoss.linear).toBeLessThan(1e-4);
    expect(rec.barrierLoss.midpointMean).toBeLessThan(1e-4);
    expect(rec.error).toEqual([0.138, 0.138, 0.138, 0.138, 0.138]);
    expect(rec.barrierError.linear).toBe(0);
    // Copied: the interpolated running variances are wrong inside the path.
    const cop = copied.alignment?.activation?.test as NonNullable<typeof copied.test>;
    expect(cop.loss[3]).toBeCloseTo(0.820437, 5);
    expect(cop.barrierLoss.linear).toBeCloseTo(0.09744, 4);
  });
});
