import { describe, expect, it } from 'vitest';
import type { Batch } from '../../src/data/types.js';
import type { OptimizerSpec } from '../../src/engine/types.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import {
  mulberry32,
  referenceForward,
  referenceGradientFD,
  referenceLoss,
  referenceOptimizerState,
  referenceOptimizerStep,
} from './reference-model.js';

function expectClose(actual: ArrayLike<number>, expected: number[], tol: number): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    expect(Math.abs((actual[i] as number) - (expected[i] as number))).toBeLessThanOrEqual(tol);
  }
}

describe('referenceLoss / referenceGradientFD', () => {
  it('linear regression, 2 inputs: loss and gradient match the closed form', () => {
    // z = w·x + b, L = mean ½(z − y)², dL/dw = mean (z − y) x, dL/db = mean (z − y).
    const model = modelGraphSpec({ kind: 'linear' }, 2, 1, 'mse');
    const params = Float64Array.from([0.2, -0.1, 0.3]); // dense0.weight [1, 2], dense0.bias [1]
    const batch: Batch = { x: Float32Array.from([1, 2, 3, -1]), y: Float32Array.from([0.5, 1]), size: 2 };
    // z = [0.3, 1.0], errors [−0.2, 0] → loss (0.02 + 0) / 2.
    expect(referenceLoss(model, params, batch)).toBeCloseTo(0.01, 12);
    expectClose(referenceGradientFD(model, params, batch), [-0.1, -0.2, -0.1], 1e-8);
  });

  it('softmax cross-entropy at zero weights: ln K and (softmax − y) xᵀ', () => {
    const model = modelGraphSpec({ kind: 'linear', bias: false }, 2, 2, 'cross-entropy');
    const params = new Float64Array(4);
    const batch: Batch = { x: Float32Array.from([1, 2]), y: Float32Array.from([1, 0]), size: 1 };
    expect(referenceLoss(model, params, batch)).toBeCloseTo(Math.log(2), 12);
    expectClose(referenceGradientFD(model, params, batch), [-0.5, -1, 0.5, 1], 1e-8);
  });

  it('cross-entropy is stable for large logits', () => {
    const model = modelGraphSpec({ kind: 'linear', bias: false }, 1, 2, 'cross-entropy');
    const batch: Batch = { x: Float32Array.from([1]), y: Float32Array.from([0, 1]), size: 1 };
    // logits [1000, 0]: loss = lse − 0 = 1000 + log(1 + e^−1000).
    expect(referenceLoss(model, Float64Array.from([1000, 0]), batch)).toBeCloseTo(1000, 9);
  });

  it('forward of a 1-1-1 tanh / relu MLP by hand', () => {
    const rand = mulberry32(1);
    for (const activation of ['tanh', 'relu'] as const) {
      const model = modelGraphSpec({ kind: 'mlp', hidden: [1], activation }, 1, 1, 'mse');
      const params = Float64Array.from([0.5, 0.1, 2, -0.3]); // w1, b1, w2, b2
      const x = Float32Array.from([rand() * 4 - 2, 1.5, -1]);
      const { hidden, output } = referenceForward(model, params, x, 3);
      const a = (z: number) => (activation === 'tanh' ? Math.tanh(z) : Math.max(0, z));
      const h = Array.from(x, (v) => a(0.5 * v + 0.1));
      expectClose(hidden[0] as Float64Array, h, 1e-15);
      expectClose(
        output,
        h.map((v) => 2 * v - 0.3),
        1e-15,
      );
    }
  });
});

describe('referenceOptimizerStep', () => {
  function run(opt: OptimizerSpec, p0: number, grads: number[], lr: number): number[] {
    const params = Float64Array.from([p0]);
    const state = referenceOptimizerState(opt, 1);
    const out: number[] = [];
    for (const g of grads) {
      referenceOptimizerStep(opt, params, Float64Array.from([g]), state, lr);
      out.push(params[0] as number);
    }
    expect(state.step).toBe(grads.length);
    return out;
  }

  it('SGD with weight decay', () => {
    // g = 0.5 + 0.1·1 = 0.6 → p = 1 − 0.1·0.6.
    expectClose(run({ kind: 'sgd', lr: 0.1, weightDecay: 0.1 }, 1, [0.5], 0.1), [0.94], 1e-15);
  });

  it('SGD momentum with dampening: first step takes g undamped', () => {
    // step 1: b = 1, p = −0.1; step 2: b = 0.9·1 + 0.5·2 = 1.9, p = −0.1 − 0.19.
    const opt: OptimizerSpec = { kind: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0.5 };
    expectClose(run(opt, 0, [1, 2], 0.1), [-0.1, -0.29], 1e-15);
  });

  it('SGD Nesterov', () => {
    // step 1: b = 1, g = 1 + 0.9 = 1.9, p = −0.19; step 2: b = 0.9 + 2 = 2.9, g = 2 + 2.61, p = −0.19 − 0.461.
    const opt: OptimizerSpec = { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true };
    expectClose(run(opt, 0, [1, 2], 0.1), [-0.19, -0.651], 1e-15);
  });

  it('Adam: the first step is lr·sign(g); the second follows the bias-corrected moments', () => {
    const opt: OptimizerSpec = { kind: 'adam', lr: 0.01 };
    const [p1, p2] = run(opt, 1, [0.5, -1], 0.01);
    expect(p1).toBeCloseTo(1 - 0.01, 9);
    // m = 0.9·0.05 − 0.1 = −0.055, v = 0.999·0.00025 + 0.001, bc1 = 0.19, bc2 = 1 − 0.999².
    const m = -0.055;
    const v = 0.999 * 0.00025 + 0.001;
    const expected = (p1 as number) - (0.01 / 0.19) * (m / (Math.sqrt(v / (1 - 0.999 ** 2)) + 1e-8));
    expect(p2).toBeCloseTo(expected, 14);
  });

  it('Adam weight decay is added to the gradient, AdamW decays the weight first', () => {
    // Adam: g = 0.5 + 0.1 = 0.6 > 0 → first step still lr·sign(g).
    expect(run({ kind: 'adam', lr: 0.01, weightDecay: 0.1 }, 1, [0.5], 0.01)[0]).toBeCloseTo(0.99, 9);
    // AdamW: p = 1·(1 − 0.01·0.1) then − lr·sign(g).
    expect(run({ kind: 'adamw', lr: 0.01, weightDecay: 0.1 }, 1, [-0.5], 0.01)[0]).toBeCloseTo(
      0.999 + 0.01,
      9,
    );
    // AdamW default weight decay is 0.01.
    expect(run({ kind: 'adamw', lr: 0.01 }, 1, [0.5], 0.01)[0]).toBeCloseTo(0.9999 - 0.01, 9);
  });
});
