import { afterAll, describe, expect, test } from 'vitest';
import type { Batch } from '../../../src/data/types.js';
import { lockstepTrainStepGraph, slotNames } from '../../../src/engine/model-graphs.js';
import { createOrtEngine, OrtJobs } from '../../../src/engine/ort/engine.js';
import { createLockstepEngine, OrtLockstepJobs } from '../../../src/engine/ort/lockstep.js';
import type { FloatArray } from '../../../src/engine/ort/session.js';
import { type OptimizerSpec, resolveOptimizer, type TrainState } from '../../../src/engine/types.js';
import { type LossKind, modelGraphSpec } from '../../../src/model/graph.js';
import type { ModelSpec } from '../../../src/model/spec.js';
import { mulberry32, randomBatch, uniformArray } from '../../helpers/reference-model.js';

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};
const maxAbsOf = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
};
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

const toDispose: { dispose(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(toDispose.map((j) => j.dispose()));
});

describe('lock-step graph', () => {
  test('declares [R, P] theta and slots, shared x/y, per-run loss [R]', () => {
    const model = modelGraphSpec({ kind: 'mlp', hidden: [5] }, 3, 2, 'cross-entropy');
    const opt = resolveOptimizer({ kind: 'adam', lr: 0.01 });
    const { graph, outputs } = lockstepTrainStepGraph(model, opt, 7, 4);
    const inputs = Object.fromEntries(
      graph.nodes.filter((n) => n.op === 'Input').map((n) => [n.name as string, n.shape]),
    );
    const P = model.layout.size;
    expect(inputs).toEqual({
      theta: [4, P],
      x: [7, 3],
      y: [7, 2],
      expAvg: [4, P],
      expAvgSq: [4, P],
      stepSize: [],
      bc2Sqrt: [],
    });
    expect(outputs.loss?.node.shape).toEqual([4]);
    expect(outputs.theta_new?.node.shape).toEqual([4, P]);
    expect(outputs.expAvgSq_new?.node.shape).toEqual([4, P]);
    expect(() => lockstepTrainStepGraph(model, opt, 7, 0)).toThrow('runs must be a positive integer, got 0');
  });
});

const models: [string, ModelSpec, number, number, LossKind][] = [
  ['mlp relu', { kind: 'mlp', hidden: [5, 4], activation: 'relu' }, 3, 3, 'cross-entropy'],
  [
    'mlp tanh no bias',
    { kind: 'mlp', hidden: [5, 5], activation: 'tanh', bias: false },
    3,
    2,
    'cross-entropy',
  ],
  ['mlp mse', { kind: 'mlp', hidden: [4], activation: 'tanh' }, 3, 2, 'mse'],
  ['deep linear chain', { kind: 'deep-linear-chain', depth: 3 }, 4, 1, 'mse'],
  ['linear', { kind: 'linear' }, 5, 3, 'cross-entropy'],
];

const optimizers: [string, OptimizerSpec][] = [
  ['sgd', { kind: 'sgd', lr: 0.1 }],
  ['nesterov + weight decay', { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }],
  ['momentum + dampening', { kind: 'sgd', lr: 0.1, momentum: 0.9, dampening: 0.1 }],
  ['adam + L2', { kind: 'adam', lr: 0.01, weightDecay: 0.1, beta1: 0.8 }],
  ['adamw', { kind: 'adamw', lr: 0.01, weightDecay: 0.1 }],
];

describe('lock-step float64 graph equals R single-run float64 steps', () => {
  // Same operations per run except batched MatMul for Gemm: in float64 the difference is rounding
  // in the last bits (observed ≤ 1e-16 here); the bound leaves room for summation-order changes.
  test.each(
    models.flatMap(([mn, spec, i, o, loss]) =>
      optimizers.map(([on, opt]) => [`${mn}, ${on}`, spec, i, o, loss, opt] as const),
    ),
  )('%s: 3 steps of R = 3 runs', async (_n, spec, inDim, outDim, loss, opt) => {
    const model = modelGraphSpec(spec, inDim, outDim, loss);
    const R = 3;
    const P = model.layout.size;
    const single = new OrtJobs(model, opt, 1, 'float64');
    const lock = new OrtLockstepJobs(model, opt, R, 1, 'float64');
    toDispose.push(single, lock);
    const rand = mulberry32(17);
    const runs: { params: FloatArray; slots: FloatArray[] }[] = Array.from({ length: R }, () => ({
      params: Float64Array.from(uniformArray(rand, P, -0.8, 0.8)),
      slots: slotNames(lock.opt).map(() => new Float64Array(P)),
    }));
    let params: FloatArray = new Float64Array(R * P);
    for (const [k, r] of runs.entries()) params.set(r.params, k * P);
    let slots: FloatArray[] = slotNames(lock.opt).map(() => new Float64Array(R * P));
    for (const [step, lr] of [0.1, 0.05, 0.02].entries()) {
      const b = randomBatch(model, 6, rand);
      const x = Float64Array.from(b.x);
      const y = Float64Array.from(b.y);
      const out = await lock.trainStep(params, slots, step, x, y, b.size, lr);
      expect(out.losses.length).toBe(R);
      for (const [k, run] of runs.entries()) {
        const s = await single.trainStep(run.params, run.slots, step, x, y, b.size, lr);
        run.params = s.params;
        run.slots = s.slots;
        expect(Math.abs((out.losses[k] as number) - s.loss)).toBeLessThan(1e-14);
        expect(maxAbs(out.params.subarray(k * P, (k + 1) * P), run.params)).toBeLessThan(1e-14);
        out.slots.forEach((slot, j) =>
          expect(maxAbs(slot.subarray(k * P, (k + 1) * P), run.slots[j] as FloatArray)).toBeLessThan(1e-14),
        );
      }
      params = out.params;
      slots = out.slots;
    }
  });
});

describe('float32 lock-step engine', () => {
  const model = modelGraphSpec({ kind: 'mlp', hidden: [16, 16] }, 4, 3, 'cross-entropy');
  const P = model.layout.size;
  const rand = mulberry32(3);
  const inits = Array.from({ length: 3 }, () => uniformArray(rand, P, -0.5, 0.5));
  const batches: Batch[] = Array.from({ length: 20 }, () => randomBatch(model, 8, rand));
  const lrOf = (i: number) => 0.05 / (1 + 0.1 * i);

  async function lockstepRun(opt: OptimizerSpec, starts: readonly Float32Array[]) {
    const single = await createOrtEngine(model, { optimizer: opt });
    const engine = await createLockstepEngine(model, { optimizer: opt, runs: starts.length });
    const states: TrainState[] = starts.map((p) => ({ params: p.slice(), opt: single.initOptimizerState() }));
    const losses: Float64Array[] = [];
    for (const [i, b] of batches.entries()) losses.push(await engine.trainStep(states, b, lrOf(i)));
    await Promise.all([single.dispose(), engine.dispose()]);
    return { states, losses };
  }

  test.each([
    ['sgd', { kind: 'sgd', lr: 0.05 }],
    ['sgd momentum', { kind: 'sgd', lr: 0.05, momentum: 0.9 }],
    ['adam', { kind: 'adam', lr: 0.01 }],
  ] as [string, OptimizerSpec][])(
    '%s: 20 steps of R = 3 runs agree with the single-run engine run by run',
    async (_n, opt) => {
      const lock = await lockstepRun(opt, inits);
      const single = await createOrtEngine(model, { optimizer: opt });
      for (const [r, init] of inits.entries()) {
        const state: TrainState = { params: init.slice(), opt: single.initOptimizerState() };
        for (const [i, b] of batches.entries()) {
          const loss = await single.trainStep(state, b, lrOf(i));
          const lockLoss = lock.losses[i]?.[r] as number;
          // float32 losses ~1: observed differences 0 to 1 ulp (≤ 1.2e-7).
          expect(Math.abs(lockLoss - loss)).toBeLessThan(2e-6 * Math.max(1, Math.abs(loss)));
        }
        const mine = lock.states[r] as TrainState;
        expect(mine.opt.step).toBe(batches.length);
        // Batched MatMul and Gemm sum in different orders, so the runs are not bit-identical to
        // single-run training (they differ from step 0), but 20 steps keep the difference at float32
        // rounding level. Observed max |Δ| / max |θ|: ≤ 6e-8 (sgd momentum); ≤ 1.2e-7 for two adam
        // runs and 4.8e-6 for the third (Adam's m / √v amplifies rounding where a gradient is ≈ 0).
        // Slots: ≤ 4.5e-7 of their max.
        const scale = maxAbsOf(state.params);
        expect(maxAbs(mine.params, state.params) / scale).toBeLessThan(2e-5);
        state.opt.slots.forEach((s, k) =>
          expect(maxAbs(mine.opt.slots[k] as Float32Array, s) / Math.max(maxAbsOf(s), 1e-30)).toBeLessThan(
            1e-5,
          ),
        );
      }
      await single.dispose();
    },
  );

  test.each([
    ['sgd momentum', { kind: 'sgd', lr: 0.05, momentum: 0.9 }],
    ['adam', { kind: 'adam', lr: 0.01 }],
  ] as [string, OptimizerSpec][])(
    '%s: runs with bit-identical inputs stay bit-identical over 20 steps (the σ = 0 control)',
    async (_n, opt) => {
      const a = inits[0] as Float32Array;
      const b = inits[1] as Float32Array;
      // Identical runs at positions 0, 2 and 3; a different run in between.
      const { states, losses } = await lockstepRun(opt, [a, b, a, a]);
      const [s0, s1, s2, s3] = states as [TrainState, TrainState, TrainState, TrainState];
      for (const s of [s2, s3]) {
        expect(bytes(s.params).equals(bytes(s0.params))).toBe(true);
        s.opt.slots.forEach((slot, k) =>
          expect(bytes(slot).equals(bytes(s0.opt.slots[k] as Float32Array))).toBe(true),
        );
      }
      expect(bytes(s1.params).equals(bytes(s0.params))).toBe(false);
      for (const l of losses) {
        expect(l[2]).toBe(l[0]);
        expect(l[3]).toBe(l[0]);
      }
      // And they did train: the parameters moved.
      expect(maxAbs(s0.params, a)).toBeGreaterThan(1e-3);
    },
  );

  test.each([
    ['sgd', { kind: 'sgd', lr: 0.05 }],
    ['adam', { kind: 'adam', lr: 0.01 }],
  ] as [string, OptimizerSpec][])(
    '%s: states get disjoint views of fresh buffers; kept views are fed back, replaced or edited ones are honoured',
    async (_n, opt) => {
      const single = await createOrtEngine(model, { optimizer: opt });
      const kept = await createLockstepEngine(model, { optimizer: opt, runs: 3 });
      const copied = await createLockstepEngine(model, { optimizer: opt, runs: 3 });
      toDispose.push(single, kept, copied);
      const fresh = () => inits.map((p) => ({ params: p.slice(), opt: single.initOptimizerState() }));
      const a: TrainState[] = fresh();
      const b: TrainState[] = fresh();
      let before: Float32Array[] = [];
      for (const [i, batch] of batches.slice(0, 8).entries()) {
        if (i === 3) {
          // An in-place edit of one run's view, and a replaced array for another: both count.
          for (const s of [a, b]) {
            (s[0] as TrainState).params[5] = 0.25;
            (s[2] as TrainState).params = (inits[1] as Float32Array).slice();
          }
        }
        // `b` never holds views at a call (copies force the packing path); `a` keeps its views.
        for (const s of b) {
          s.params = s.params.slice();
          s.opt.slots = s.opt.slots.map((x) => x.slice());
        }
        const snapshot = a.map((s) => s.params.slice());
        before = a.map((s) => s.params);
        const la = await kept.trainStep(a, batch, lrOf(i));
        const lb = await copied.trainStep(b, batch, lrOf(i));
        expect(Array.from(la)).toEqual(Array.from(lb));
        // The previous step's arrays are not written by the next call.
        before.forEach((p, r) => expect(bytes(p).equals(bytes(snapshot[r] as Float32Array))).toBe(true));
      }
      a.forEach((s, r) => {
        const other = b[r] as TrainState;
        expect(bytes(s.params).equals(bytes(other.params))).toBe(true);
        s.opt.slots.forEach((x, k) =>
          expect(bytes(x).equals(bytes(other.opt.slots[k] as Float32Array))).toBe(true),
        );
        // Views of one [R · P] buffer per tensor, run r at r · P.
        expect(s.params.length).toBe(P);
        expect(s.params.buffer).toBe(a[0]?.params.buffer);
        expect(s.params.byteOffset - (a[0]?.params.byteOffset ?? 0)).toBe(r * P * 4);
      });
      // The single-run engine reads a view like any array.
      const view = a[1] as TrainState;
      const copy: TrainState = {
        params: view.params.slice(),
        opt: { step: view.opt.step, slots: view.opt.slots.map((x) => x.slice()) },
      };
      const batch = batches[9] as Batch;
      expect(await single.trainStep(view, batch, 0.01)).toBe(await single.trainStep(copy, batch, 0.01));
      expect(bytes(view.params).equals(bytes(copy.params))).toBe(true);
    },
  );

  test('bad states are rejected with a clear error', async () => {
    const opt: OptimizerSpec = { kind: 'adam', lr: 0.01 };
    const single = await createOrtEngine(model, { optimizer: opt });
    const engine = await createLockstepEngine(model, { optimizer: opt, runs: 2 });
    toDispose.push(single, engine);
    const b = batches[0] as Batch;
    const fresh = (): TrainState => ({
      params: (inits[0] as Float32Array).slice(),
      opt: single.initOptimizerState(),
    });
    const ahead = fresh();
    ahead.opt.step = 3;
    await expect(engine.trainStep([fresh(), ahead], b, 0.01)).rejects.toThrow(
      'lock-step runs must be at the same optimizer step: run 0 is at step 0, run 1 at step 3',
    );
    const short = fresh();
    short.params = short.params.subarray(1);
    await expect(engine.trainStep([fresh(), short], b, 0.01)).rejects.toThrow(
      `run 1: params has ${P - 1} values, expected ${P}`,
    );
    await expect(engine.trainStep([fresh()], b, 0.01)).rejects.toThrow(
      'lock-step engine trains 2 runs, got 1 states',
    );
    const noSlots = fresh();
    noSlots.opt.slots = [];
    await expect(engine.trainStep([noSlots, fresh()], b, 0.01)).rejects.toThrow(
      'run 0: expected 2 optimizer slots, got 0',
    );
    await expect(engine.trainStep([fresh(), fresh()], { ...b, size: 9 }, 0.01)).rejects.toThrow(
      'x has 32 values, expected 36',
    );
    await expect(createLockstepEngine(model, { optimizer: opt, runs: 1.5 })).rejects.toThrow(
      'runs must be a positive integer, got 1.5',
    );
    // A rejected call leaves the states untouched.
    const ok = [fresh(), fresh()];
    expect(Array.from(await engine.trainStep(ok, b, 0.01))).toHaveLength(2);
    expect(ok[0]?.opt.step).toBe(1);
  });
});
