/** The ORT engine and the tfjs reference engine agree on the same weights and batches. */
import { describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { createTfjsEngine } from '../../src/engine/tfjs/engine.js';
import type { Engine, OptimizerSpec } from '../../src/engine/types.js';
import type { LossKind } from '../../src/model/graph.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { mulberry32, randomBatch, uniformArray } from '../helpers/reference-model.js';

const cases: [string, ModelSpec, number, number, LossKind][] = [
  ['mlp relu', { kind: 'mlp', hidden: [32, 16], activation: 'relu' }, 10, 4, 'cross-entropy'],
  ['mlp tanh no bias', { kind: 'mlp', hidden: [12], activation: 'tanh', bias: false }, 6, 3, 'cross-entropy'],
  ['mlp mse', { kind: 'mlp', hidden: [8, 8], activation: 'tanh' }, 5, 2, 'mse'],
  ['deep linear chain', { kind: 'deep-linear-chain', depth: 4 }, 6, 1, 'mse'],
  ['linear', { kind: 'linear' }, 7, 3, 'cross-entropy'],
];

const relErr = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs((a[i] as number) - (b[i] as number)));
    den += (b[i] as number) ** 2;
  }
  return num / Math.max(Math.sqrt(den), 1e-12);
};

async function pair(spec: ModelSpec, i: number, o: number, loss: LossKind, optimizer: OptimizerSpec) {
  const model = modelGraphSpec(spec, i, o, loss);
  const ort = await createOrtEngine(model, { optimizer });
  const tfjs = await createTfjsEngine(model, { optimizer });
  return { model, ort, tfjs, done: () => Promise.all([ort.dispose(), tfjs.dispose()]) };
}

describe('ORT and tfjs engines agree (both float32)', () => {
  test.each(cases)(
    '%s: loss, gradient, Hessian-vector product and activations',
    async (_n, spec, i, o, loss) => {
      const { model, ort, tfjs, done } = await pair(spec, i, o, loss, { kind: 'sgd', lr: 0.1 });
      const rand = mulberry32(21);
      const params = uniformArray(rand, model.layout.size, -0.6, 0.6);
      const batch = randomBatch(model, 32, rand);
      const a = await ort.gradient(params, batch);
      const b = await tfjs.gradient(params, batch);
      // Both engines round in float32 but sum in different orders: agreement to ~1e-6 relative.
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5 * (1 + Math.abs(b.loss)));
      expect(relErr(a.grad, b.grad)).toBeLessThan(1e-5);
      const v = uniformArray(rand, model.layout.size);
      expect(relErr(await ort.hvp(params, batch, v), await tfjs.hvp(params, batch, v))).toBeLessThan(1e-4);
      const actsA = await ort.activations(params, batch.x, batch.size);
      const actsB = await tfjs.activations(params, batch.x, batch.size);
      expect([...actsA.keys()]).toEqual([...actsB.keys()]);
      for (const [k, va] of actsA) expect(relErr(va, actsB.get(k) as Float32Array)).toBeLessThan(1e-5);
      await done();
    },
  );

  test.each(cases)(
    '%s: evaluateMany of a list and of a combination (tfjs loops over evaluate; ORT batches)',
    async (_n, spec, i, o, loss) => {
      const { model, ort, tfjs, done } = await pair(spec, i, o, loss, { kind: 'sgd', lr: 0.1 });
      const rand = mulberry32(22);
      const points = Array.from({ length: 5 }, () => uniformArray(rand, model.layout.size, -0.6, 0.6));
      const d = Float64Array.from(uniformArray(rand, model.layout.size, -0.3, 0.3));
      const combination = {
        vectors: [points[0] as Float32Array, d],
        coefficients: [-1, -0.5, 0, 0.5, 1, 1.5].map((a) => [1, a]),
      };
      const { x, y, size: n } = randomBatch(model, 40, rand);
      for (const batch of [points, combination]) {
        const a = await ort.evaluateMany(batch, x, y, n);
        const b = await tfjs.evaluateMany(batch, x, y, n);
        expect(a).toHaveLength(b.length);
        for (let k = 0; k < b.length; k++) {
          const rb = b[k]!;
          const ra = a[k]!;
          // tfjs's evaluateMany is its evaluate, point by point.
          const single = await tfjs.evaluate(
            'coefficients' in batch
              ? Float32Array.from(points[0]!, (v, j) => v + batch.coefficients[k]![1]! * d[j]!)
              : batch[k]!,
            x,
            y,
            n,
          );
          expect(rb).toEqual(single);
          expect(Math.abs(ra.loss - rb.loss)).toBeLessThan(1e-5 * (1 + Math.abs(rb.loss)));
          expect(ra.correct).toBe(rb.correct);
        }
      }
      await done();
    },
  );

  test.each<[string, OptimizerSpec]>([
    ['sgd momentum', { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-3 }],
    ['nesterov', { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true }],
    ['adam', { kind: 'adam', lr: 0.01 }],
    ['adamw', { kind: 'adamw', lr: 0.01, weightDecay: 0.05 }],
  ])('%s: ten training steps give the same weights', async (_n, optimizer) => {
    const { model, ort, tfjs, done } = await pair(
      cases[0]?.[1] as ModelSpec,
      10,
      4,
      'cross-entropy',
      optimizer,
    );
    const rand = mulberry32(4);
    const params = uniformArray(rand, model.layout.size, -0.3, 0.3);
    const batches = Array.from({ length: 10 }, () => randomBatch(model, 16, rand));
    const run = async (engine: Engine) => {
      const state = { params: params.slice(), opt: engine.initOptimizerState() };
      for (const b of batches) await engine.trainStep(state, b, optimizer.lr);
      return state.params;
    };
    // Ten float32 steps from identical weights drift apart only by accumulated rounding.
    expect(relErr(await run(ort), await run(tfjs))).toBeLessThan(1e-4);
    await done();
  });
});
