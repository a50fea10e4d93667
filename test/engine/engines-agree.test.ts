/** The ORT engine and the tfjs reference engine agree on the same weights and batches. */
import { describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { createTfjsEngine } from '../../src/engine/tfjs/engine.js';
import type { Engine, OptimizerSpec } from '../../src/engine/types.js';
import type { LossKind } from '../../src/model/graph.js';
import { hasNormBuffers, hiddenOutputs, modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';
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

/**
 * Layer graphs (small images, 3 classes): a CNN with BatchNorm on a 9 × 9 image (the max pools drop
 * an odd row and column), CNNs with GroupNorm / avg pool and without norm (conv biases), and a
 * ResNet-8 with BatchNorm (1×1 stride-2 shortcuts).
 */
const nets: [string, ModelSpec, number][] = [
  ['cnn batch norm', { kind: 'cnn', channels: [4, 8], dense: [16], norm: 'batch', image: [1, 9, 9] }, 81],
  [
    'cnn group norm, avg pool',
    { kind: 'cnn', channels: [4], norm: 'group', groups: 2, pool: 'avg', image: [1, 9, 9] },
    81,
  ],
  ['cnn no norm', { kind: 'cnn', channels: [3, 4], image: [1, 9, 9] }, 81],
  ['resnet-8 batch norm', { kind: 'resnet', depth: 8, image: [1, 8, 8] }, 64],
];

/** He-initialised weights with norm scales, shifts and running statistics moved off 1 and 0. */
function netParams(model: ReturnType<typeof modelGraphSpec>, seed: number): Float32Array {
  const params = initParams(model.layout, { kind: 'he' }, Rng.fromSeed(seed).stream('init'));
  const rand = mulberry32(seed);
  for (const t of model.layout.tensors) {
    const moved = t.role === 'scale' || t.name.endsWith('.running_var');
    if (!moved && !t.name.startsWith('norm')) continue;
    for (let i = 0; i < t.size; i++) params[t.offset + i] = moved ? 0.5 + rand() : rand() - 0.5;
  }
  return params;
}

describe('ORT and tfjs engines agree on conv nets (both float32)', () => {
  test.each(nets)(
    '%s: train-mode loss and gradient, eval-mode evaluation and activations',
    async (_n, spec, inputs) => {
      const { model, ort, tfjs, done } = await pair(spec, inputs, 3, 'cross-entropy', {
        kind: 'sgd',
        lr: 0.1,
      });
      const params = netParams(model, 3);
      const batch = randomBatch(model, 12, mulberry32(8));
      const a = await ort.gradient(params, batch);
      const b = await tfjs.gradient(params, batch);
      expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5 * (1 + Math.abs(b.loss)));
      expect(relErr(a.grad, b.grad)).toBeLessThan(1e-5);
      // Running statistics are state: no gradient in either engine.
      for (const t of model.layout.tensors.filter((s) => s.role === 'buffer')) {
        expect(Array.from(b.grad.subarray(t.offset, t.offset + t.size))).toEqual(new Array(t.size).fill(0));
        expect(Array.from(a.grad.subarray(t.offset, t.offset + t.size))).toEqual(new Array(t.size).fill(0));
      }
      // Eval mode reads the running statistics: a different loss from train mode when the net has BN.
      const ea = await ort.evaluate(params, batch.x, batch.y, batch.size);
      const eb = await tfjs.evaluate(params, batch.x, batch.y, batch.size);
      expect(Math.abs(ea.loss - eb.loss)).toBeLessThan(1e-5 * (1 + Math.abs(eb.loss)));
      expect(ea.correct).toBe(eb.correct);
      if (hasNormBuffers(model)) {
        expect(Math.abs(eb.loss - b.loss)).toBeGreaterThan(1e-3);
      } else {
        expect(Math.abs(eb.loss - b.loss)).toBeLessThan(1e-5 * (1 + Math.abs(b.loss)));
      }
      const actsA = await ort.activations(params, batch.x, batch.size);
      const actsB = await tfjs.activations(params, batch.x, batch.size);
      expect([...actsB.keys()]).toEqual(hiddenOutputs(model).map((h) => h.name));
      expect([...actsA.keys()]).toEqual([...actsB.keys()]);
      for (const h of hiddenOutputs(model)) {
        const va = actsA.get(h.name) as Float32Array;
        expect(va).toHaveLength(batch.size * h.width);
        expect(relErr(va, actsB.get(h.name) as Float32Array)).toBeLessThan(1e-5);
      }
      await expect(tfjs.hvp(params, batch, params)).rejects.toThrow(/conv nets .* use the ort engine/);
      await done();
    },
  );

  test.each<[string, OptimizerSpec]>([
    ['sgd momentum', { kind: 'sgd', lr: 0.05, momentum: 0.9, weightDecay: 1e-3 }],
    ['adam', { kind: 'adam', lr: 0.01 }],
  ])(
    'cnn batch norm and resnet-8, %s: five steps give the same weights, slots and running statistics',
    async (_o, optimizer) => {
      const tf = await import('@tensorflow/tfjs');
      for (const [, spec, inputs] of [nets[0], nets[3]] as [string, ModelSpec, number][]) {
        const { model, ort, tfjs, done } = await pair(spec, inputs, 3, 'cross-entropy', optimizer);
        const params = netParams(model, 4);
        const rand = mulberry32(9);
        const batches = Array.from({ length: 5 }, () => randomBatch(model, 10, rand));
        const run = async (engine: Engine) => {
          const state = { params: params.slice(), opt: engine.initOptimizerState() };
          const losses: number[] = [];
          for (const b of batches) losses.push(await engine.trainStep(state, b, optimizer.lr));
          return { state, losses };
        };
        const a = await run(ort);
        const tensorsBefore = tf.memory().numTensors;
        const b = await run(tfjs);
        // The running statistics kept out of tfjs's gradient scope are released.
        expect(tf.memory().numTensors).toBe(tensorsBefore);
        for (let s = 0; s < 5; s++) {
          expect(Math.abs((a.losses[s] as number) - (b.losses[s] as number))).toBeLessThan(1e-5);
        }
        // As for the MLPs: float32 rounding carried through five steps (Adam's first steps divide
        // by √v, so near-zero gradient entries move by up to ±lr whatever their rounding).
        expect(relErr(a.state.params, b.state.params)).toBeLessThan(1e-4);
        a.state.opt.slots.forEach((slot, i) => {
          expect(relErr(slot, b.state.opt.slots[i] as Float32Array)).toBeLessThan(1e-4);
        });
        for (const t of model.layout.tensors.filter((s) => s.role === 'buffer')) {
          const va = a.state.params.subarray(t.offset, t.offset + t.size);
          const vb = b.state.params.subarray(t.offset, t.offset + t.size);
          // Batch statistics of the (equally close) weights of each step.
          expect(relErr(va, vb)).toBeLessThan(1e-4);
          // Five momentum-0.1 updates moved them away from where they started.
          expect(relErr(vb, params.subarray(t.offset, t.offset + t.size))).toBeGreaterThan(1e-3);
        }
        await done();
      }
    },
  );
});
