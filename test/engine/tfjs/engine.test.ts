/**
 * The tfjs engine against the float64 reference (test/helpers/reference-model.ts).
 *
 * Tolerances (the engine computes in float32, unit roundoff 6e-8):
 * - gradient: ‖g − g_ref‖∞ ≤ 1e-4·‖g_ref‖₂ (g_ref: float64 central differences, error ~1e-9;
 *   float32 backprop on these small nets is good to ~1e-6 relative).
 * - loss / evaluate: |L − L_ref| ≤ 1e-5·(1 + |L_ref|).
 * - optimizer steps: both sides use the engine's own float32 gradient, so only the update's
 *   rounding differs: |p − p_ref| ≤ 1e-6·(1 + |p_ref|), slots ≤ 1e-6 relative to their max.
 * - hvp: central difference (h = 1e-4) of float64 finite-difference gradients (error ~1e-6),
 *   ‖Hv − Hv_ref‖∞ ≤ 1e-3·‖Hv_ref‖₂; and also against differences of the engine's own float32
 *   gradients (h = 1e-2, on smooth tanh / linear models only) at 2e-2.
 */
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import type { Batch } from '../../../src/data/types.js';
import { createTfjsEngine } from '../../../src/engine/tfjs/engine.js';
import type { OptimizerSpec } from '../../../src/engine/types.js';
import type { ModelGraphSpec } from '../../../src/model/graph.js';
import { modelGraphSpec } from '../../../src/model/graph.js';
import type { ModelSpec } from '../../../src/model/spec.js';
import {
  mulberry32,
  randomBatch,
  referenceForward,
  referenceGradientFD,
  referenceLoss,
  referenceOptimizerState,
  referenceOptimizerStep,
  uniformArray,
} from '../../helpers/reference-model.js';

interface Case {
  readonly label: string;
  readonly model: ModelGraphSpec;
  /** Smooth (no relu kinks): FD of float32 gradients with a large step is meaningful. */
  readonly smooth: boolean;
}

const mlp = (hidden: number[], activation: 'relu' | 'tanh', bias: boolean): ModelSpec => ({
  kind: 'mlp',
  hidden,
  activation,
  bias,
});

const CASES: Case[] = [
  {
    label: 'mlp 3-5-4-3 relu',
    model: modelGraphSpec(mlp([5, 4], 'relu', true), 3, 3, 'cross-entropy'),
    smooth: false,
  },
  {
    label: 'mlp 3-5-4-3 tanh',
    model: modelGraphSpec(mlp([5, 4], 'tanh', true), 3, 3, 'cross-entropy'),
    smooth: true,
  },
  {
    label: 'mlp 3-5-4-3 relu no bias',
    model: modelGraphSpec(mlp([5, 4], 'relu', false), 3, 3, 'cross-entropy'),
    smooth: false,
  },
  {
    label: 'mlp 3-5-4-3 tanh no bias',
    model: modelGraphSpec(mlp([5, 4], 'tanh', false), 3, 3, 'cross-entropy'),
    smooth: true,
  },
  { label: 'mlp 3-6-2 tanh mse', model: modelGraphSpec(mlp([6], 'tanh', true), 3, 2, 'mse'), smooth: true },
  {
    label: 'deep linear chain depth 3',
    model: modelGraphSpec({ kind: 'deep-linear-chain', depth: 3 }, 4, 1, 'mse'),
    smooth: true,
  },
  { label: 'linear 4-3 ce', model: modelGraphSpec({ kind: 'linear' }, 4, 3, 'cross-entropy'), smooth: true },
];

const SGD: OptimizerSpec = { kind: 'sgd', lr: 0.1 };

function params(model: ModelGraphSpec, seed: number): Float32Array {
  // Larger weights for the scalar chain so its product is O(1).
  const scale = model.layers.length > 3 ? 1.2 : 0.8;
  return uniformArray(mulberry32(seed), model.layout.size, -scale, scale);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
}

const norm2 = (a: ArrayLike<number>): number => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

describe('tfjs engine', () => {
  it('falls back to the cpu backend when tfjs-node is absent', async () => {
    const engine = await createTfjsEngine(CASES[0]?.model as ModelGraphSpec, { optimizer: SGD });
    expect(engine.name).toBe('tfjs');
    expect(engine.backend).toBe('tfjs cpu');
  });

  describe.each(CASES)('$label', ({ model, smooth }) => {
    const batch = randomBatch(model, 8, mulberry32(7));
    const p = params(model, 11);

    it('gradient and loss match the float64 reference', async () => {
      const engine = await createTfjsEngine(model, { optimizer: SGD });
      const { loss, grad } = await engine.gradient(p, batch);
      const ref = referenceGradientFD(model, p, batch);
      const refLoss = referenceLoss(model, p, batch);
      expect(Math.abs(loss - refLoss)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(refLoss)));
      expect(norm2(ref)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(grad, ref)).toBeLessThanOrEqual(1e-4 * norm2(ref));
    });

    it('evaluate matches the reference loss and argmax count, across chunks', async () => {
      const engine = await createTfjsEngine(model, { optimizer: SGD });
      const n = 4096 + 37; // two chunks
      const big = randomBatch(model, n, mulberry32(3));
      const r = await engine.evaluate(p, big.x, big.y, n);
      const refLoss = referenceLoss(model, p, big);
      expect(r.count).toBe(n);
      expect(Math.abs(r.loss - refLoss)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(refLoss)));
      let correct = 0;
      // Argmax hits of every model with two or more outputs, whatever its loss.
      if (model.outputDim >= 2) {
        const { output } = referenceForward(model, p, big.x, n);
        const k = model.outputDim;
        const argmax = (a: ArrayLike<number>, r0: number): number => {
          let best = 0;
          for (let j = 1; j < k; j++) if ((a[r0 * k + j] as number) > (a[r0 * k + best] as number)) best = j;
          return best;
        };
        for (let i = 0; i < n; i++) if (argmax(output, i) === argmax(big.y, i)) correct++;
      }
      // Near-ties in the logits could flip in float32; allow a couple.
      expect(Math.abs(r.correct - correct)).toBeLessThanOrEqual(2);
    });

    it('activations are the hidden layers of the forward pass', async () => {
      const engine = await createTfjsEngine(model, { optimizer: SGD });
      const acts = await engine.activations(p, batch.x, batch.size);
      const { hidden } = referenceForward(model, p, batch.x, batch.size);
      const hiddenLayers = model.layers.slice(0, -1);
      expect([...acts.keys()]).toEqual(hiddenLayers.map((l) => l.name));
      hiddenLayers.forEach((l, i) => {
        const a = acts.get(l.name) as Float32Array;
        expect(a.length).toBe(batch.size * l.outputs);
        expect(maxAbsDiff(a, hidden[i] as Float64Array)).toBeLessThanOrEqual(1e-5);
      });
    });

    it('hvp matches finite differences of the float64 gradient', async () => {
      const engine = await createTfjsEngine(model, { optimizer: SGD });
      const v = uniformArray(mulberry32(5), model.layout.size);
      const hv = await engine.hvp(p, batch, v);
      const h = 1e-4;
      const shift = (s: number) => Float64Array.from(p, (x, i) => x + s * (v[i] as number));
      const up = referenceGradientFD(model, shift(h), batch);
      const down = referenceGradientFD(model, shift(-h), batch);
      const ref = up.map((u, i) => (u - (down[i] as number)) / (2 * h));
      expect(norm2(ref)).toBeGreaterThan(1e-3);
      expect(maxAbsDiff(hv, ref)).toBeLessThanOrEqual(1e-3 * norm2(ref));
      if (smooth) {
        const hf = 1e-2;
        const shift32 = (s: number) => Float32Array.from(p, (x, i) => x + s * (v[i] as number));
        const gUp = (await engine.gradient(shift32(hf), batch)).grad;
        const gDown = (await engine.gradient(shift32(-hf), batch)).grad;
        const fd = gUp.map((u, i) => (u - (gDown[i] as number)) / (2 * hf));
        expect(maxAbsDiff(hv, fd)).toBeLessThanOrEqual(2e-2 * norm2(fd));
      }
    });
  });

  describe('optimizer steps match PyTorch equations in float64', () => {
    const optimizers: [string, OptimizerSpec, number][] = [
      ['sgd', { kind: 'sgd', lr: 0.1 }, 1],
      ['sgd + weight decay', { kind: 'sgd', lr: 0.1, weightDecay: 0.05 }, 1],
      ['sgd momentum + dampening', { kind: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0.3 }, 3],
      [
        'sgd nesterov + weight decay',
        { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
        3,
      ],
      ['adam', { kind: 'adam', lr: 0.01 }, 3],
      ['adam + weight decay', { kind: 'adam', lr: 0.01, weightDecay: 0.1 }, 3],
      ['adamw', { kind: 'adamw', lr: 0.01, weightDecay: 0.1 }, 3],
    ];
    const model = CASES[1]?.model as ModelGraphSpec; // tanh MLP with biases

    it.each(optimizers)('%s', async (_label, optimizer, steps) => {
      const engine = await createTfjsEngine(model, { optimizer });
      const state = { params: params(model, 13), opt: engine.initOptimizerState() };
      const ref = {
        params: Float64Array.from(state.params),
        opt: referenceOptimizerState(optimizer, model.layout.size),
      };
      expect(state.opt.slots.length).toBe(ref.opt.slots.length);
      const rand = mulberry32(17);
      for (let s = 0; s < steps; s++) {
        const batch: Batch = randomBatch(model, 8, rand);
        const lr = optimizer.lr * (1 - 0.1 * s); // a schedule: the step's lr is the one used
        const { loss: gLoss, grad } = await engine.gradient(state.params, batch);
        const loss = await engine.trainStep(state, batch, lr);
        expect(loss).toBe(gLoss);
        referenceOptimizerStep(optimizer, ref.params, grad, ref.opt, lr);
        expect(state.opt.step).toBe(s + 1);
        for (let i = 0; i < ref.params.length; i++) {
          const r = ref.params[i] as number;
          expect(Math.abs((state.params[i] as number) - r)).toBeLessThanOrEqual(1e-6 * (1 + Math.abs(r)));
        }
        ref.opt.slots.forEach((slot, k) => {
          const scale = Math.max(...Array.from(slot, Math.abs));
          expect(maxAbsDiff(state.opt.slots[k] as Float32Array, slot)).toBeLessThanOrEqual(
            1e-6 * scale + 1e-30,
          );
        });
      }
      // The update actually moved the weights.
      expect(maxAbsDiff(state.params, params(model, 13))).toBeGreaterThan(1e-4);
    });
  });

  it('does not leak tensors', async () => {
    const model = CASES[0]?.model as ModelGraphSpec;
    const engine = await createTfjsEngine(model, { optimizer: { kind: 'adam', lr: 0.01 } });
    const batch = randomBatch(model, 8, mulberry32(1));
    const p = params(model, 2);
    const state = { params: p, opt: engine.initOptimizerState() };
    const round = async () => {
      await engine.trainStep(state, batch, 0.01);
      await engine.gradient(p, batch);
      await engine.hvp(p, batch, p);
      await engine.evaluate(p, batch.x, batch.y, batch.size);
      await engine.activations(p, batch.x, batch.size);
    };
    await round();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) await round();
    expect(tf.memory().numTensors).toBe(before);
    await engine.dispose();
    await expect(engine.gradient(p, batch)).rejects.toThrow(/dispose/);
  });

  it('rejects mismatched parameter vectors', async () => {
    const model = CASES[0]?.model as ModelGraphSpec;
    const engine = await createTfjsEngine(model, { optimizer: SGD });
    const batch = randomBatch(model, 2, mulberry32(1));
    await expect(engine.gradient(new Float32Array(3), batch)).rejects.toThrow(/entries/);
  });
});
