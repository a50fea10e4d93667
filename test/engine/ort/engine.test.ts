import { afterAll, describe, expect, test } from 'vitest';
import { createOrtEngine, OrtJobs } from '../../../src/engine/ort/engine.js';
import type { OptimizerSpec } from '../../../src/engine/types.js';
import type { LossKind, ModelGraphSpec } from '../../../src/model/graph.js';
import { modelGraphSpec } from '../../../src/model/graph.js';
import type { ModelSpec } from '../../../src/model/spec.js';
import {
  mulberry32,
  randomBatch,
  referenceGradientFD,
  referenceLoss,
  referenceOptimizerState,
  referenceOptimizerStep,
  uniformArray,
} from '../../helpers/reference-model.js';

const cases: [string, ModelSpec, number, number, LossKind][] = [
  ['mlp relu', { kind: 'mlp', hidden: [5, 4], activation: 'relu' }, 3, 3, 'cross-entropy'],
  ['mlp tanh', { kind: 'mlp', hidden: [6], activation: 'tanh' }, 4, 3, 'cross-entropy'],
  ['mlp no bias', { kind: 'mlp', hidden: [5, 5], activation: 'tanh', bias: false }, 3, 2, 'cross-entropy'],
  ['mlp mse', { kind: 'mlp', hidden: [4], activation: 'tanh' }, 3, 2, 'mse'],
  ['deep linear chain', { kind: 'deep-linear-chain', depth: 3 }, 4, 1, 'mse'],
  ['linear', { kind: 'linear' }, 5, 3, 'cross-entropy'],
];

const jobsToDispose: OrtJobs[] = [];
afterAll(async () => {
  await Promise.all(jobsToDispose.map((j) => j.dispose()));
});

function setup(spec: ModelSpec, inDim: number, outDim: number, loss: LossKind, opt?: OptimizerSpec) {
  const model = modelGraphSpec(spec, inDim, outDim, loss);
  const jobs = new OrtJobs(model, opt ?? { kind: 'sgd', lr: 0.1 }, 1, 'float64');
  jobsToDispose.push(jobs);
  const rand = mulberry32(7);
  const params = Float64Array.from(uniformArray(rand, model.layout.size, -0.8, 0.8));
  const batch = randomBatch(model, 6, rand);
  return { model, jobs, params, batch, x: Float64Array.from(batch.x), y: Float64Array.from(batch.y), rand };
}

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

describe('ORT graphs in float64', () => {
  test.each(cases)('%s: loss equals the float64 reference forward', async (_n, spec, i, o, loss) => {
    const { model, jobs, params, batch, x, y } = setup(spec, i, o, loss);
    const ev = await jobs.evaluate(params, x, y, batch.size);
    expect(ev.loss).toBeCloseTo(referenceLoss(model, params, batch), 12);
  });

  // Central differences in float64 with h = 1e-6 have truncation + rounding error ~1e-9 here.
  test.each(cases)(
    '%s: gradient agrees with central finite differences to 1e-8',
    async (_n, spec, i, o, loss) => {
      const { model, jobs, params, batch, x, y } = setup(spec, i, o, loss);
      const { grad, loss: l } = await jobs.gradient(params, x, y, batch.size);
      expect(l).toBeCloseTo(referenceLoss(model, params, batch), 12);
      expect(maxAbs(grad, referenceGradientFD(model, params, batch))).toBeLessThan(1e-8);
    },
  );

  test.each(cases)(
    '%s: Hessian-vector product agrees with differences of gradients',
    async (_n, spec, i, o, loss) => {
      const { model, jobs, params, batch, x, y, rand } = setup(spec, i, o, loss);
      const v = Float64Array.from(uniformArray(rand, model.layout.size));
      const hv = await jobs.hvp(params, x, y, batch.size, v);
      const h = 1e-5;
      const gp = await jobs.gradient(
        params.map((p, k) => p + h * (v[k] as number)),
        x,
        y,
        batch.size,
      );
      const gm = await jobs.gradient(
        params.map((p, k) => p - h * (v[k] as number)),
        x,
        y,
        batch.size,
      );
      const fd = gp.grad.map((g, k) => (g - (gm.grad[k] as number)) / (2 * h));
      const scale = Math.max(1, Math.hypot(...hv));
      expect(maxAbs(hv, fd) / scale).toBeLessThan(1e-7);
    },
  );

  test('Hessian-vector product of a quadratic is exact: linear mse model, H = XᵀX / n', async () => {
    // L(w) = 1/(2n) Σ (x·w − y)² for a 1-output linear model without bias: H = XᵀX / n.
    const { jobs, x, y, batch, rand } = setup({ kind: 'linear', bias: false }, 3, 1, 'mse');
    const v = Float64Array.from(uniformArray(rand, 3));
    const hv = await jobs.hvp(Float64Array.from([0.3, -0.2, 0.5]), x, y, batch.size, v);
    const expected = [0, 1, 2].map((a) => {
      let s = 0;
      for (let r = 0; r < batch.size; r++) {
        const xr = (b: number) => x[r * 3 + b] as number;
        s += xr(a) * (xr(0) * (v[0] as number) + xr(1) * (v[1] as number) + xr(2) * (v[2] as number));
      }
      return s / batch.size;
    });
    expect(maxAbs(hv, expected)).toBeLessThan(1e-14);
  });
});

const optimizers: [string, OptimizerSpec][] = [
  ['sgd', { kind: 'sgd', lr: 0.1 }],
  ['sgd + weight decay', { kind: 'sgd', lr: 0.1, weightDecay: 0.01 }],
  ['momentum + dampening', { kind: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0.1 }],
  ['nesterov', { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }],
  ['adam', { kind: 'adam', lr: 0.01 }],
  ['adam + L2', { kind: 'adam', lr: 0.01, weightDecay: 0.1, beta1: 0.8 }],
  ['adamw', { kind: 'adamw', lr: 0.01, weightDecay: 0.1 }],
];

describe('optimizer steps match the closed-form PyTorch updates', () => {
  test.each(optimizers)('%s: three float64 steps agree with the reference to 1e-12', async (_n, opt) => {
    const { model, jobs, params, batch, x, y } = setup(
      { kind: 'mlp', hidden: [4], activation: 'tanh' },
      3,
      3,
      'cross-entropy',
      opt,
    );
    const ref = Float64Array.from(params);
    const refState = referenceOptimizerState(opt, model.layout.size);
    let p: Float64Array | Float32Array = params;
    let slots: (Float64Array | Float32Array)[] = refState.slots.map((s) => new Float64Array(s.length));
    const lrs = [0.1, 0.05, 0.02];
    for (const [step, lr] of lrs.entries()) {
      const grad = referenceGradientFD(model, ref, batch);
      const exact = await jobs.gradient(Float64Array.from(ref), x, y, batch.size);
      referenceOptimizerStep(opt, ref, exact.grad, refState, lr);
      const out = await jobs.trainStep(p, slots, step, x, y, batch.size, lr);
      p = out.params;
      slots = out.slots;
      expect(maxAbs(exact.grad, grad)).toBeLessThan(1e-8);
    }
    expect(maxAbs(p, ref)).toBeLessThan(1e-12);
    refState.slots.forEach((s, k) => expect(maxAbs(slots[k] as Float64Array, s)).toBeLessThan(1e-12));
  });
});

describe('float32 engine', () => {
  const model: ModelGraphSpec = modelGraphSpec({ kind: 'mlp', hidden: [16, 16] }, 4, 3, 'cross-entropy');
  const rand = mulberry32(3);
  const params = uniformArray(rand, model.layout.size, -0.5, 0.5);
  const batches = Array.from({ length: 12 }, () => randomBatch(model, 8, rand));

  async function trainAll(threads: number, opt: OptimizerSpec) {
    const engine = await createOrtEngine(model, { optimizer: opt, threads });
    const state = { params: params.slice(), opt: engine.initOptimizerState() };
    const losses: number[] = [];
    for (const [i, b] of batches.entries()) losses.push(await engine.trainStep(state, b, 0.05 / (1 + i)));
    await engine.dispose();
    return { state, losses };
  }

  test('training is bit-identical across repeats, at 1 and at 2 threads', async () => {
    for (const threads of [1, 2]) {
      const a = await trainAll(threads, { kind: 'adam', lr: 0.01 });
      const b = await trainAll(threads, { kind: 'adam', lr: 0.01 });
      expect(Buffer.from(a.state.params.buffer).equals(Buffer.from(b.state.params.buffer))).toBe(true);
      expect(a.losses).toEqual(b.losses);
      expect(a.state.opt.step).toBe(batches.length);
    }
  });

  test('an ONNX Loop of K steps equals K single steps bit for bit', async () => {
    const opt: OptimizerSpec = { kind: 'sgd', lr: 0.05, momentum: 0.9 };
    const single = await trainAll(1, opt);
    const jobs = new OrtJobs(model, opt, 1, 'float32');
    const xs = new Float32Array(batches.flatMap((b) => [...b.x]));
    const ys = new Float32Array(batches.flatMap((b) => [...b.y]));
    const lrs = batches.map((_, i) => 0.05 / (1 + i));
    const looped = await jobs.trainSteps(params, [new Float32Array(model.layout.size)], 0, xs, ys, 8, lrs);
    await jobs.dispose();
    expect(Buffer.from(looped.params.buffer).equals(Buffer.from(single.state.params.buffer))).toBe(true);
    expect(Array.from(looped.losses)).toEqual(single.losses);
  });

  test('float32 gradient is within float32 rounding of the float64 finite differences', async () => {
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const b = batches[0] as (typeof batches)[number];
    const { grad } = await engine.gradient(params, b);
    const fd = referenceGradientFD(model, params, b);
    // float32 forward/backward: relative error ~1e-6 of the gradient's scale.
    expect(maxAbs(grad, fd) / Math.hypot(...fd)).toBeLessThan(1e-5);
    await engine.dispose();
  });

  test('evaluate in chunks equals one-shot reference loss and counts correct predictions', async () => {
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const big = randomBatch(model, 5000, rand);
    const ev = await engine.evaluate(params, big.x, big.y, big.size);
    expect(ev.count).toBe(5000);
    expect(ev.loss).toBeCloseTo(referenceLoss(model, params, big), 5);
    const acts = await engine.activations(params, big.x, big.size);
    expect([...acts.keys()]).toEqual(['dense0', 'dense1']);
    expect(acts.get('dense1')?.length).toBe(5000 * 16);
    await engine.dispose();
  });

  test('wrong buffer sizes are rejected with the name and the expected size', async () => {
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const b = batches[0] as (typeof batches)[number];
    await expect(engine.gradient(params.subarray(1), b)).rejects.toThrow(
      `params has ${model.layout.size - 1} values, expected ${model.layout.size}`,
    );
    await expect(engine.gradient(params, { ...b, size: 9 })).rejects.toThrow('x has 32 values, expected 36');
    await engine.dispose();
  });
});
