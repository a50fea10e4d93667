/**
 * The measurements of docs/methods.md §12 on one network: gradient norms against engine.gradient on
 * the whole set and against float64 finite differences, ReLU saturation and dead units against a
 * brute-force count of the activations, weight norms against the layout's slices, and sharpness
 * against direct calls of the Hessian algorithms (Lanczos, power iteration, Adam preconditioning,
 * Hutchinson) and the thresholds' closed forms.
 */
import { afterAll, describe, expect, test } from 'vitest';
import type { Batch } from '../../src/data/types.js';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import type { Engine, OptimizerSpec, TrainState } from '../../src/engine/types.js';
import {
  gradientNorm,
  measureSharpness,
  reluSaturation,
  SATURATION_THRESHOLD,
  trainSubset,
  weightNorms,
} from '../../src/measure/diagnostics.js';
import {
  adamPreconditioner,
  engineHvp,
  hutchinsonTrace,
  lanczos,
  powerIteration,
  preconditionedSharpness,
} from '../../src/measure/hessian.js';
import { type ModelGraphSpec, modelGraphSpec } from '../../src/model/graph.js';
import { tensorSlot } from '../../src/model/layout.js';
import { mulberry32, randomBatch, referenceGradientFD, uniformArray } from '../helpers/reference-model.js';

const engines: Engine[] = [];
afterAll(async () => {
  await Promise.all(engines.map((e) => e.dispose()));
});

async function setup(hidden: number[], optimizer: OptimizerSpec = { kind: 'sgd', lr: 0.1 }, seed = 1) {
  const model = modelGraphSpec({ kind: 'mlp', hidden, activation: 'relu' }, 3, 2, 'cross-entropy');
  const engine = await createOrtEngine(model, { optimizer });
  engines.push(engine);
  const rand = mulberry32(seed);
  const params = uniformArray(rand, model.layout.size, -0.8, 0.8);
  const batch = randomBatch(model, 37, rand);
  return { model, engine, params, batch, set: { x: batch.x, y: batch.y, n: batch.size } };
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, v) => s + v * v, 0));

describe('gradientNorm (§12.1)', () => {
  test('equals the norm of engine.gradient on the whole set, in one chunk or several', async () => {
    const { engine, params, batch, set } = await setup([6, 5]);
    const whole = await engine.gradient(params, batch);
    const one = await gradientNorm(engine, params, set);
    // One chunk: the same float32 gradient, its norm in float64.
    expect(one.norm).toBe(norm(whole.grad));
    expect(one.loss).toBe(whole.loss);
    // Chunks of 10, 10, 10, 7 rows, weighted 10/37, …: the same gradient up to float32 rounding.
    const chunked = await gradientNorm(engine, params, set, { chunk: 10 });
    expect(Math.abs(chunked.norm - one.norm) / one.norm).toBeLessThan(1e-6);
    expect(Math.abs(chunked.loss - one.loss) / one.loss).toBeLessThan(1e-6);
    const diff = Array.from(chunked.gradient, (g, i) => g - (whole.grad[i] as number));
    expect(norm(diff) / one.norm).toBeLessThan(1e-6);
  });

  test('agrees with float64 central finite differences of the loss on a tiny MLP', async () => {
    const { model, engine, params, batch, set } = await setup([4]);
    const fd = referenceGradientFD(model, params, batch);
    const g = await gradientNorm(engine, params, set, { chunk: 16 });
    expect(Math.abs(g.norm - norm(fd)) / norm(fd)).toBeLessThan(1e-5);
    for (let i = 0; i < fd.length; i++) expect(g.gradient[i]).toBeCloseTo(fd[i] as number, 5);
  });
});

/** Brute force: count activations ≤ 1e-6 per layer, and units never above it. */
function bruteSaturation(acts: Map<string, Float32Array>, model: ModelGraphSpec, n: number) {
  return model.layers.slice(0, -1).map((l) => {
    const a = acts.get(l.name) as Float32Array;
    let saturated = 0;
    let dead = 0;
    for (let j = 0; j < l.outputs; j++) {
      let off = 0;
      for (let r = 0; r < n; r++) if ((a[r * l.outputs + j] as number) <= SATURATION_THRESHOLD) off++;
      saturated += off;
      if (off === n) dead++;
    }
    return { layer: l.name, units: l.outputs, saturated, dead };
  });
}

describe('reluSaturation (§12.1)', () => {
  test('matches a brute-force count of the activations, with dead units made on purpose', async () => {
    const { model, engine, params, set } = await setup([6, 5]);
    // Kill unit 2 of dense0 and unit 4 of dense1: weights 0 and a negative bias.
    for (const [layer, unit, width] of [
      ['dense0', 2, 3],
      ['dense1', 4, 6],
    ] as const) {
      const w = tensorSlot(model.layout, `${layer}.weight`);
      const b = tensorSlot(model.layout, `${layer}.bias`);
      params.fill(0, w.offset + unit * width, w.offset + (unit + 1) * width);
      params[b.offset + unit] = -1;
    }
    const acts = await engine.activations(params, set.x, set.n);
    const expected = bruteSaturation(acts, model, set.n);
    for (const chunk of [set.n, 8]) {
      const got = await reluSaturation(engine, params, set.x, set.n, { chunk });
      expect(got.map((g) => g.layer)).toEqual(['dense0', 'dense1', null]);
      expected.forEach((e, i) => {
        expect(got[i]?.saturation).toBe(e.saturated / (set.n * e.units));
        expect(got[i]?.dead).toBe(e.dead / e.units);
      });
      const units = expected.reduce((s, e) => s + e.units, 0);
      expect(got[2]?.saturation).toBe(expected.reduce((s, e) => s + e.saturated, 0) / (set.n * units));
      expect(got[2]?.dead).toBe(expected.reduce((s, e) => s + e.dead, 0) / units);
      expect(got[0]?.dead).toBeGreaterThanOrEqual(1 / 6);
      expect(got[1]?.dead).toBeGreaterThanOrEqual(1 / 5);
    }
  });

  test('is empty for a network without ReLU layers', async () => {
    const model = modelGraphSpec({ kind: 'mlp', hidden: [4], activation: 'tanh' }, 3, 2, 'cross-entropy');
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    engines.push(engine);
    const params = uniformArray(mulberry32(3), model.layout.size);
    expect(await reluSaturation(engine, params, uniformArray(mulberry32(4), 30), 10)).toEqual([]);
  });
});

describe('weightNorms (§12.1)', () => {
  test('the norm of each layout slice, then of all parameters', async () => {
    const { model, params } = await setup([6, 5]);
    const got = weightNorms(model.layout, params);
    expect(got.map((g) => g.name)).toEqual([...model.layout.tensors.map((t) => t.name), null]);
    model.layout.tensors.forEach((t, i) => {
      expect(got[i]?.norm).toBe(norm(params.subarray(t.offset, t.offset + t.size)));
    });
    expect(got.at(-1)?.norm).toBeCloseTo(norm(params), 12);
  });
});

describe('measureSharpness (§12.2)', () => {
  test('SGD: Lanczos top-k on the exact HVP, Hutchinson trace, threshold 2/η and (2 + 2μ)/η', async () => {
    const { engine, params, batch, set } = await setup([6, 5]);
    const dim = params.length;
    const m = await measureSharpness(engine, set, { params }, { kind: 'sgd', lr: 0.1 }, 0.05, {
      topK: 3,
      probes: 8,
    });
    const hvp = engineHvp(engine, params, batch);
    const direct = await lanczos(hvp, dim, { k: 3, steps: 50, tol: 1e-4, seed: 0 });
    expect(m.eigenvalues).toEqual([...direct.values]);
    expect(m.residuals).toEqual([...direct.residuals]);
    expect(m.eigenvalues[0]).toBeGreaterThan(m.eigenvalues[1] as number);
    const trace = await hutchinsonTrace(hvp, dim, { probes: 8, seed: 0 });
    expect(m.trace).toEqual({ mean: trace.mean, stderr: trace.stderr, probes: 8 });
    expect(m.threshold).toBe(2 / 0.05);
    expect(m.thresholdOf).toBe('sharpness');
    expect(m.preconditioned).toBeNull();
    expect(m.examples).toBe(37);
    const momentum = await measureSharpness(
      engine,
      set,
      { params },
      { kind: 'sgd', lr: 0.1, momentum: 0.9 },
      0.1,
    );
    expect(momentum.threshold).toBeCloseTo(3.8 / 0.1, 12);
    expect(momentum.trace).toBeNull();
  });

  test('power iteration agrees with Lanczos on the top eigenvalue', async () => {
    const { engine, params, set } = await setup([6, 5]);
    const opt: OptimizerSpec = { kind: 'sgd', lr: 0.1 };
    const l = await measureSharpness(engine, set, { params }, opt, 0.1, { topK: 1 });
    const p = await measureSharpness(engine, set, { params }, opt, 0.1, {
      method: 'power',
      tol: 1e-7,
      steps: 500,
    });
    const direct = await powerIteration(
      engineHvp(engine, params, { ...set, size: set.n } as Batch),
      params.length,
      {
        iterations: 500,
        tol: 1e-7,
        seed: 0,
      },
    );
    expect(p.eigenvalues).toEqual([direct.eigenvalue]);
    expect(Math.abs((p.eigenvalues[0] as number) - (l.eigenvalues[0] as number))).toBeLessThan(
      1e-3 * Math.abs(l.eigenvalues[0] as number),
    );
    await expect(
      measureSharpness(engine, set, { params }, opt, 0.1, { method: 'power', topK: 2 }),
    ).rejects.toThrow('power iteration finds one eigenvalue');
  });

  test("Adam: λ_max(P⁻¹H) from the state's second moments against (2 + 2β₁)/((1 − β₁)η)", async () => {
    const optimizer: OptimizerSpec = { kind: 'adam', lr: 0.01 };
    const { engine, params, batch, set } = await setup([6, 5], optimizer);
    const state: TrainState = { params: params.slice(), opt: engine.initOptimizerState() };
    for (let i = 0; i < 3; i++) await engine.trainStep(state, batch, 0.01);
    const m = await measureSharpness(engine, set, state, optimizer, 0.01);
    const p = adamPreconditioner(state.opt, optimizer);
    const direct = await preconditionedSharpness(engineHvp(engine, state.params, batch), p, {
      steps: 50,
      tol: 1e-4,
    });
    expect(m.preconditioned).toBe(direct.values[0]);
    // P = √v̂ + ε is small after 3 steps, so P⁻¹H is much sharper than H.
    expect(m.preconditioned as number).toBeGreaterThan(m.eigenvalues[0] as number);
    expect(m.threshold).toBeCloseTo(38 / 0.01, 9);
    expect(m.thresholdOf).toBe('preconditioned');
    // Before the first update there is no preconditioner.
    const fresh = await measureSharpness(
      engine,
      set,
      { params, opt: engine.initOptimizerState() },
      optimizer,
      0.01,
    );
    expect(fresh.preconditioned).toBeNull();
  });

  test('a non-finite Hessian-vector product gives NaN eigenvalues instead of failing', async () => {
    const { engine, params, set } = await setup([4]);
    const broken = { hvp: async () => new Float32Array(params.length).fill(Number.NaN) };
    const m = await measureSharpness(broken, set, { params }, { kind: 'sgd', lr: 0.1 }, 0.1, {
      topK: 2,
      probes: 2,
    });
    expect(m.eigenvalues).toEqual([Number.NaN, Number.NaN]);
    expect(m.trace?.mean).toBeNaN();
    expect(m.threshold).toBe(20);
    // The real engine on the same state is finite.
    expect(
      (await measureSharpness(engine, set, { params }, { kind: 'sgd', lr: 0.1 }, 0.1)).eigenvalues[0],
    ).toBeGreaterThan(0);
  });

  test('trainSubset: the first n examples of the split, all of them when n is absent or larger', () => {
    const train = { x: Float32Array.from({ length: 20 }, (_, i) => i), y: new Float32Array(20), n: 10 };
    expect(trainSubset(train, 3).n).toBe(3);
    expect([...trainSubset(train, 3).x]).toEqual([0, 1, 2, 3, 4, 5]);
    expect(trainSubset(train, undefined).n).toBe(10);
    expect(trainSubset(train, 50).n).toBe(10);
  });
});
