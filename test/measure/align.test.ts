import { afterAll, describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import type { Engine } from '../../src/engine/types.js';
import {
  activationMatching,
  applyPermutations,
  mlpPermutationSpec,
  weightMatching,
} from '../../src/measure/align.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import type { ParameterLayout } from '../../src/model/layout.js';
import type { Activation, ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';

const engines: Engine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.dispose()));
});

function model(hidden: number[], activation: Activation = 'relu', bias = true, inDim = 10, outDim = 4) {
  const spec: ModelSpec = { kind: 'mlp', hidden, activation, bias, init: { kind: 'he', biasStd: 0.1 } };
  return { spec, graph: modelGraphSpec(spec, inDim, outDim, 'cross-entropy') };
}

function randomParams(layout: ParameterLayout, seed: number): Float32Array {
  return initParams(layout, { kind: 'he', biasStd: 0.1 }, Rng.fromSeed(seed).stream('init'));
}

function randomPerms(hidden: number[], seed: number): Int32Array[] {
  const rng = Rng.fromSeed(seed).stream('perm');
  return hidden.map((w) => Int32Array.from(rng.permutation(w)));
}

function randomData(n: number, inDim: number, outDim: number, seed: number) {
  const rng = Rng.fromSeed(seed).stream('data');
  const x = new Float32Array(n * inDim);
  for (let k = 0; k < x.length; k++) x[k] = rng.normal();
  const y = new Float32Array(n * outDim);
  for (let i = 0; i < n; i++) y[i * outDim + rng.int(outDim)] = 1;
  return { x, y };
}

const l2 = (a: Float32Array, b: Float32Array) => Math.hypot(...Array.from(a, (v, i) => v - (b[i] as number)));

/** Σ over all tensors of ⟨A, B⟩ in float64 (the weight-matching objective for aligned B). */
const inner = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * (b[i] as number), 0);

describe('mlpPermutationSpec', () => {
  test('one permutation per hidden layer, on the right axes', () => {
    const { graph } = model([5, 4]);
    const spec = mlpPermutationSpec(graph.layout);
    expect(spec.perms.map((g) => [g.name, g.size])).toEqual([
      ['P0', 5],
      ['P1', 4],
    ]);
    expect(spec.perms[0]?.axes).toEqual([
      { tensor: 'dense0.weight', axis: 0 },
      { tensor: 'dense0.bias', axis: 0 },
      { tensor: 'dense1.weight', axis: 1 },
    ]);
    expect(Object.fromEntries(spec.axes)).toEqual({
      'dense0.weight': [0, null],
      'dense0.bias': [0],
      'dense1.weight': [1, 0],
      'dense1.bias': [1],
      'dense2.weight': [null, 1],
      'dense2.bias': [null],
    });
  });

  test('no biases, and a linear model has no permutations', () => {
    const spec = mlpPermutationSpec(model([3], 'relu', false).graph.layout);
    expect(spec.perms[0]?.axes.map((a) => a.tensor)).toEqual(['dense0.weight', 'dense1.weight']);
    const linear = modelGraphSpec({ kind: 'linear' }, 3, 2, 'mse');
    expect(mlpPermutationSpec(linear.layout).perms).toEqual([]);
  });
});

describe('applyPermutations', () => {
  test.each([
    ['relu', [8, 6]],
    ['tanh', [7]],
    ['tanh', [5, 6, 4]],
  ] as [Activation, number[]][])('preserves the network function (%s, hidden %j)', async (act, hidden) => {
    const { graph } = model(hidden, act);
    const engine = await createOrtEngine(graph, { optimizer: { kind: 'sgd', lr: 0.1 } });
    engines.push(engine);
    const a = randomParams(graph.layout, 1);
    const perms = randomPerms(hidden, 2);
    const b = applyPermutations(a, graph.layout, perms);
    expect(b).not.toEqual(a);
    const n = 64;
    const { x, y } = randomData(n, 10, 4, 3);
    const ea = await engine.evaluate(a, x, y, n);
    const eb = await engine.evaluate(b, x, y, n);
    expect(eb.correct).toBe(ea.correct);
    expect(Math.abs(eb.loss - ea.loss)).toBeLessThan(1e-5 * Math.max(1, Math.abs(ea.loss)));
    const actsA = await engine.activations(a, x, n);
    const actsB = await engine.activations(b, x, n);
    hidden.forEach((w, l) => {
      const A = actsA.get(`dense${l}`) as Float32Array;
      const B = actsB.get(`dense${l}`) as Float32Array;
      const p = perms[l] as Int32Array;
      for (let r = 0; r < n; r++) {
        for (let i = 0; i < w; i++) {
          expect(B[r * w + i]).toBeCloseTo(A[r * w + (p[i] as number)] as number, 5);
        }
      }
    });
  });

  test('validates its permutations', () => {
    const { graph } = model([3, 2]);
    const a = randomParams(graph.layout, 1);
    expect(() => applyPermutations(a, graph.layout, [Int32Array.of(0, 1, 2)])).toThrow(/expected 2/);
    expect(() => applyPermutations(a, graph.layout, [Int32Array.of(0, 1, 1), Int32Array.of(0, 1)])).toThrow(
      /not a permutation/,
    );
  });
});

describe('weightMatching', () => {
  test.each([[[64]], [[16]], [[32, 48]], [[64, 64]], [[64, 17, 33]], [[8, 8, 8]]])(
    'recovers a permuted copy exactly (hidden %j)',
    (hidden) => {
      const { graph } = model(hidden);
      const a = randomParams(graph.layout, 5);
      const q = randomPerms(hidden, 6);
      const b = applyPermutations(a, graph.layout, q);
      const r = weightMatching(a, b, graph.layout, { seed: 7 });
      expect(r.converged).toBe(true);
      expect(r.sweeps).toBeGreaterThanOrEqual(1);
      expect(r.sweeps).toBeLessThanOrEqual(100);
      expect(l2(a, r.aligned)).toBe(0);
      expect(Buffer.from(r.aligned.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      // The recovered permutations invert the ones applied: q[p[i]] = i.
      r.perms.forEach((p, l) => {
        expect(Array.from(p, (v) => (q[l] as Int32Array)[v])).toEqual(Array.from(p, (_, i) => i));
      });
    },
  );

  test('recovers a permuted copy without biases', () => {
    const { graph } = model([24, 12], 'relu', false);
    const a = randomParams(graph.layout, 8);
    const b = applyPermutations(a, graph.layout, randomPerms([24, 12], 9));
    expect(l2(a, weightMatching(a, b, graph.layout, { seed: 1 }).aligned)).toBe(0);
  });

  test('independent nets: raises Σ⟨W_A, P W_B⟩ over identity, deterministic in the seed', () => {
    const { graph } = model([32, 32]);
    const a = randomParams(graph.layout, 10);
    const b = randomParams(graph.layout, 11);
    const r = weightMatching(a, b, graph.layout, { seed: 3 });
    expect(r.converged).toBe(true);
    expect(inner(a, r.aligned)).toBeGreaterThan(inner(a, b));
    expect(l2(a, r.aligned)).toBeLessThan(l2(a, b));
    const again = weightMatching(a, b, graph.layout, { seed: 3 });
    expect(again.perms).toEqual(r.perms);
    expect(again.sweeps).toBe(r.sweeps);
    // Aligned is B with the perms applied, and b is untouched.
    expect(r.aligned).toEqual(applyPermutations(b, graph.layout, r.perms));
    expect(b).toEqual(randomParams(graph.layout, 11));
  });

  test('maxSweeps caps the sweeps', () => {
    const { graph } = model([32, 32]);
    const a = randomParams(graph.layout, 10);
    const b = randomParams(graph.layout, 11);
    const r = weightMatching(a, b, graph.layout, { seed: 3, maxSweeps: 1 });
    expect(r.sweeps).toBe(1);
    expect(() => weightMatching(a, b, graph.layout, { seed: 3, maxSweeps: 0 })).toThrow(/maxSweeps/);
  });
});

describe('activationMatching', () => {
  test.each([
    ['tanh', [16, 12], 'correlation'],
    ['relu', [20, 10], 'correlation'],
    ['tanh', [16, 12], 'inner'],
  ] as [Activation, number[], 'correlation' | 'inner'][])(
    'recovers the permutation of a permuted copy from real activations (%s %j, %s)',
    async (act, hidden, method) => {
      const { graph } = model(hidden, act);
      const engine = await createOrtEngine(graph, { optimizer: { kind: 'sgd', lr: 0.1 } });
      engines.push(engine);
      const a = randomParams(graph.layout, 21);
      const q = randomPerms(hidden, 22);
      const b = applyPermutations(a, graph.layout, q);
      const n = 500;
      const { x } = randomData(n, 10, 4, 23);
      const perms = activationMatching(
        await engine.activations(a, x, n),
        await engine.activations(b, x, n),
        n,
        {
          method,
        },
      );
      expect(perms.map((p) => p.length)).toEqual(hidden);
      expect(l2(a, applyPermutations(b, graph.layout, perms))).toBe(0);
    },
  );

  test('constant units correlate 0; inner products use raw values', () => {
    // Two units over n = 4 examples; unit 0 of A is constant.
    const A = new Map([['dense0', Float32Array.of(5, 1, 5, 2, 5, 3, 5, 4)]]);
    const B = new Map([['dense0', Float32Array.of(4, 7, 3, 7, 2, 7, 1, 7)]]);
    // Correlation: A1 vs B0 = −1, everything else 0 → best is A0↔B0 (0) + A1↔B1 (0) = 0 > −1.
    expect([...(activationMatching(A, B, 4)[0] as Int32Array)]).toEqual([0, 1]);
    // Inner: A0·B0 = 50, A0·B1 = 140, A1·B0 = 20, A1·B1 = 70 → 50 + 70 < 140 + 20.
    expect([...(activationMatching(A, B, 4, { method: 'inner' })[0] as Int32Array)]).toEqual([1, 0]);
  });

  test('rejects mismatched inputs', () => {
    const A = new Map([['dense0', new Float32Array(6)]]);
    expect(() => activationMatching(A, new Map([['dense0', new Float32Array(4)]]), 2)).toThrow(/entries/);
    expect(() => activationMatching(A, new Map(), 2)).toThrow(/layers/);
    expect(() => activationMatching(new Map([['dense1', new Float32Array(6)]]), A, 2)).toThrow(/dense0/);
  });
});
