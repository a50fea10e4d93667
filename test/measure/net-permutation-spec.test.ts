import { afterAll, describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import type { Engine } from '../../src/engine/types.js';
import {
  activationMatching,
  applyPermutations,
  type PermutationSpec,
  weightMatching,
} from '../../src/measure/align.js';
import { l2Distance } from '../../src/measure/distance.js';
import { netPermutationSpec, permutationSpecFor } from '../../src/measure/net-permutation-spec.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import type { ParameterLayout } from '../../src/model/layout.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';

const engines: Engine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.dispose()));
});

const resnet = (depth: number, norm: 'batch' | 'layer' | 'group' | 'none' = 'batch') =>
  modelGraphSpec({ kind: 'resnet', depth, norm } as ModelSpec, 144, 10, 'cross-entropy');

/** Random weights, every tensor (BatchNorm statistics too; variances positive). */
function randomWeights(layout: ParameterLayout, seed: number): Float32Array {
  const rng = Rng.fromSeed(seed).stream('weights');
  const w = new Float32Array(layout.size);
  for (const t of layout.tensors) {
    for (let i = 0; i < t.size; i++) {
      const v = rng.normal();
      w[t.offset + i] = t.name.endsWith('.running_var')
        ? 0.5 + Math.abs(v)
        : v * (t.role === 'weight' ? 0.3 : 0.5);
    }
  }
  return w;
}

function randomPerms(spec: PermutationSpec, seed: number): Int32Array[] {
  const rng = Rng.fromSeed(seed).stream('perm');
  return spec.perms.map((g) => Int32Array.from(rng.permutation(g.size)));
}

/** The group of a tensor axis, by name. */
function groupOf(spec: PermutationSpec, tensor: string, axis: number): string | null {
  const k = spec.axes.get(tensor)?.[axis];
  return k === null || k === undefined ? null : (spec.perms[k]?.name ?? null);
}

describe('netPermutationSpec: ResNet', () => {
  test('ResNet-8: a residual stream shares one permutation (union-find), projections join it', () => {
    const model = resnet(8);
    const spec = permutationSpecFor(model);
    // Stem conv0; stage 1: conv1, conv2 (identity shortcut); stage 2: conv3, conv4, shortcut conv5;
    // stage 3: conv6, conv7, shortcut conv8; dense0 (the logits: not permuted).
    expect(spec.perms.map((g) => [g.name, g.size])).toEqual([
      ['conv0', 16],
      ['conv1', 16],
      ['conv3', 32],
      ['conv4', 32],
      ['conv6', 64],
      ['conv7', 64],
    ]);
    const stream1 = ['conv0.weight', 'conv2.weight'].map((t) => groupOf(spec, t, 0));
    expect(stream1).toEqual(['conv0', 'conv0']);
    for (const t of ['norm0', 'norm2'])
      for (const s of ['weight', 'bias', 'running_mean', 'running_var'])
        expect(groupOf(spec, `${t}.${s}`, 0)).toBe('conv0');
    // The stream feeds conv1, conv3 and the stage-2 projection conv5 on their input axis.
    expect(['conv1', 'conv3', 'conv5'].map((c) => groupOf(spec, `${c}.weight`, 1))).toEqual([
      'conv0',
      'conv0',
      'conv0',
    ]);
    expect(groupOf(spec, 'conv2.weight', 1)).toBe('conv1');
    // Stage 2's stream: conv4 and the projection conv5 (and their norms) are one group.
    expect(
      ['conv4.weight', 'conv5.weight', 'norm4.running_var', 'norm5.bias'].map((t) => groupOf(spec, t, 0)),
    ).toEqual(['conv4', 'conv4', 'conv4', 'conv4']);
    expect(['conv7.weight', 'conv8.weight'].map((t) => groupOf(spec, t, 0))).toEqual(['conv7', 'conv7']);
    // After global average pooling the dense input axis is a plain permutation; the logits are fixed.
    expect(spec.perms[5]?.axes).toContainEqual({ tensor: 'dense0.weight', axis: 1 });
    expect(spec.axes.get('dense0.weight')).toEqual([null, 5]);
    expect(spec.axes.get('dense0.bias')).toEqual([null]);
    expect(spec.axes.get('conv0.weight')).toEqual([0, null, null, null]);
    // Hidden outputs: each block output carries its stage's stream.
    expect(spec.hidden).toEqual([
      { name: 'block0', perm: 0 },
      { name: 'block1', perm: 3 },
      { name: 'block2', perm: 5 },
    ]);
  });

  test("GroupNorm with several groups is refused; 'layer' (one group) is fine", () => {
    expect(() => permutationSpecFor(resnet(8, 'group'))).toThrow(/norm0 is a GroupNorm with 4 groups/);
    const spec = permutationSpecFor(resnet(8, 'layer'));
    expect(spec.perms).toHaveLength(6);
    expect(groupOf(spec, 'norm0.weight', 0)).toBe('conv0');
    expect(spec.axes.has('norm0.running_mean')).toBe(false);
  });

  for (const depth of [8, 14]) {
    test(`weight matching recovers a channel-permuted ResNet-${depth} exactly (BN buffers included)`, () => {
      const model = resnet(depth);
      const spec = permutationSpecFor(model);
      const a = randomWeights(model.layout, depth);
      const truth = randomPerms(spec, depth + 1);
      const b = applyPermutations(a, model.layout, truth, spec);
      expect(l2Distance(a, b)).toBeGreaterThan(10);
      const r = weightMatching(a, b, model.layout, { seed: 0, spec });
      expect(r.converged).toBe(true);
      expect(r.aligned).toEqual(a);
      expect(l2Distance(a, r.aligned)).toBe(0);
      // The permutations found are the inverses of the ones applied.
      r.perms.forEach((p, k) => {
        const t = truth[k] as Int32Array;
        for (let i = 0; i < p.length; i++) expect(t[p[i] as number]).toBe(i);
      });
    });
  }

  test('the plain-JS reference finds the same permutations on two independent ResNet-8s', () => {
    const model = resnet(8);
    const spec = permutationSpecFor(model);
    const a = randomWeights(model.layout, 1);
    const b = randomWeights(model.layout, 2);
    const fast = weightMatching(a, b, model.layout, { seed: 3, spec });
    const ref = weightMatching(a, b, model.layout, { seed: 3, spec, backend: 'js' });
    expect(fast.perms).toEqual(ref.perms);
    expect(fast.sweeps).toBe(ref.sweeps);
    expect(l2Distance(a, fast.aligned)).toBeLessThan(l2Distance(a, b));
  });
});

describe('netPermutationSpec: CNN (flatten: block permutations)', () => {
  const cnn = () =>
    modelGraphSpec(
      { kind: 'cnn', channels: [4, 6], dense: [5], norm: 'batch' } as ModelSpec,
      64,
      3,
      'cross-entropy',
    );

  test('the dense layer after the flatten takes the last conv group in blocks of H·W', () => {
    const model = cnn();
    const spec = permutationSpecFor(model);
    expect(spec.perms.map((g) => [g.name, g.size])).toEqual([
      ['conv0', 4],
      ['conv1', 6],
      ['dense0', 5],
    ]);
    // 8×8 → pool → 4×4 → pool → 2×2: 6 channels of 4 positions.
    expect(spec.perms[1]?.axes).toContainEqual({ tensor: 'dense0.weight', axis: 1, block: 4 });
    expect(spec.axes.get('dense1.weight')).toEqual([null, 2]);
    expect(spec.hidden).toEqual([
      { name: 'conv0', perm: 0 },
      { name: 'conv1', perm: 1 },
      { name: 'dense0', perm: 2 },
    ]);
  });

  test('a block permutation moves whole blocks of input columns', () => {
    const model = cnn();
    const spec = netPermutationSpec(model.net as NonNullable<typeof model.net>, model.layout);
    const a = randomWeights(model.layout, 5);
    const perms = spec.perms.map((g) => Int32Array.from({ length: g.size }, (_, i) => g.size - 1 - i));
    const b = applyPermutations(a, model.layout, perms, spec);
    const slot = model.layout.tensors.find((t) => t.name === 'dense0.weight');
    if (!slot) throw new Error('no dense0.weight');
    const [rows, cols] = slot.shape as [number, number];
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        // Row r of B is row 4 − r of A; column block c/4 is block 5 − c/4 of A.
        const src = (rows - 1 - r) * cols + (5 - Math.floor(c / 4)) * 4 + (c % 4);
        expect(b[slot.offset + r * cols + c]).toBe(a[slot.offset + src]);
      }
    }
    const r = weightMatching(a, b, model.layout, { seed: 1, spec });
    expect(r.aligned).toEqual(a);
  });

  test('activation matching on channels over examples and positions recovers a permuted copy', () => {
    const model = cnn();
    const spec = permutationSpecFor(model);
    const n = 7;
    const rng = Rng.fromSeed(9).stream('acts');
    const actsA = new Map<string, Float32Array>();
    const actsB = new Map<string, Float32Array>();
    const truth = randomPerms(spec, 11);
    // Hidden outputs [n, C·S] (NCHW); B's channels are A's permuted by the truth.
    for (const [name, c, s] of [
      ['conv0', 4, 16],
      ['conv1', 6, 4],
      ['dense0', 5, 1],
    ] as const) {
      const A = new Float32Array(n * c * s);
      for (let i = 0; i < A.length; i++) A[i] = rng.normal();
      const p = truth[spec.hidden?.find((h) => h.name === name)?.perm ?? -1] as Int32Array;
      const B = new Float32Array(A.length);
      for (let x = 0; x < n; x++)
        for (let ch = 0; ch < c; ch++)
          for (let t = 0; t < s; t++)
            B[(x * c + ch) * s + t] = A[(x * c + (p[ch] as number)) * s + t] as number;
      actsA.set(name, A);
      actsB.set(name, B);
    }
    const perms = activationMatching(actsA, actsB, n, { spec });
    perms.forEach((q, k) => {
      const t = truth[k] as Int32Array;
      for (let i = 0; i < q.length; i++) expect(t[q[i] as number]).toBe(i);
    });
  });

  test('activation matching sets the permutations no hidden output carries by weight matching', () => {
    const model = resnet(8);
    const spec = permutationSpecFor(model);
    const a = randomWeights(model.layout, 21);
    const truth = randomPerms(spec, 22);
    const b = applyPermutations(a, model.layout, truth, spec);
    // Activations of the three block outputs only (as Engine.activations returns them): here,
    // synthetic values permuted as B's channels are.
    const n = 3;
    const rng = Rng.fromSeed(23).stream('acts');
    const actsA = new Map<string, Float32Array>();
    const actsB = new Map<string, Float32Array>();
    for (const h of spec.hidden ?? []) {
      const c = spec.perms[h.perm]?.size as number;
      const s = 4;
      const A = Float32Array.from({ length: n * c * s }, () => rng.normal());
      const p = truth[h.perm] as Int32Array;
      const inv = new Int32Array(c);
      p.forEach((v, i) => {
        inv[v] = i;
      });
      const B = new Float32Array(A.length);
      // B's channel j is A's channel inv[j] (B = A permuted by the truth: B[i] = A[p[i]]).
      for (let x = 0; x < n; x++)
        for (let j = 0; j < c; j++)
          for (let t = 0; t < s; t++)
            B[(x * c + j) * s + t] = A[(x * c + (p[j] as number)) * s + t] as number;
      actsA.set(h.name, A);
      actsB.set(h.name, B);
    }
    expect(() => activationMatching(actsA, actsB, n, { spec })).toThrow(
      /no hidden output carries permutations conv1, conv3, conv6/,
    );
    const perms = activationMatching(actsA, actsB, n, { spec, weights: { a, b, layout: model.layout } });
    expect(applyPermutations(b, model.layout, perms, spec)).toEqual(a);
  });
});

describe('a permuted net computes the same function (ORT engine)', () => {
  for (const [label, spec] of [
    ['CNN with BatchNorm', { kind: 'cnn', channels: [4, 6], dense: [5], norm: 'batch' }],
    ['ResNet-8', { kind: 'resnet', depth: 8 }],
    ['ResNet-8 with LayerNorm', { kind: 'resnet', depth: 8, norm: 'layer' }],
  ] as const) {
    test(label, async () => {
      const model = modelGraphSpec(spec as ModelSpec, 64, 3, 'cross-entropy');
      const perm = permutationSpecFor(model);
      const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
      engines.push(engine);
      const a = randomWeights(model.layout, 31);
      const b = applyPermutations(a, model.layout, randomPerms(perm, 32), perm);
      expect(l2Distance(a, b)).toBeGreaterThan(1);
      const n = 5;
      const rng = Rng.fromSeed(33).stream('x');
      const x = Float32Array.from({ length: n * 64 }, () => rng.normal());
      const predictions = engine.predictions?.bind(engine);
      if (!predictions) throw new Error('the ORT engine has no predictions');
      const za = await predictions(a, x, n);
      const zb = await predictions(b, x, n);
      expect(za.length).toBe(n * 3);
      const scale = Math.max(...Array.from(za, Math.abs));
      za.forEach((v, i) => {
        expect(Math.abs(v - (zb[i] as number))).toBeLessThan(1e-5 * Math.max(1, scale));
      });
    });
  }
});
