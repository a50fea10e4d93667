import { afterAll, describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import type { Engine, ParamsBatch } from '../../src/engine/types.js';
import {
  criticalSigma,
  engineEvaluator,
  findCriticalSigma,
  type LossAccuracy,
  noiseStream,
  type ParamsEvaluator,
  perturbWeights,
  summaryStats,
  weightSensitivity,
} from '../../src/measure/sensitivity.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { Rng } from '../../src/rng/rng.js';
import { mulberry32, uniformArray } from '../helpers/reference-model.js';

/** A deterministic synthetic evaluator: loss = mean (p − θ)², accuracy = 0.9 − c · rms(p − θ). */
function syntheticEvaluator(theta: Float32Array, c = 1) {
  const calls: Float32Array[] = [];
  const evaluate: ParamsEvaluator = async (p) => {
    calls.push(p);
    let s = 0;
    for (let i = 0; i < p.length; i++) s += ((p[i] as number) - (theta[i] as number)) ** 2;
    const ms = s / p.length;
    return { loss: ms, accuracy: 0.9 - c * Math.sqrt(ms) };
  };
  return { evaluate, calls };
}

/** Brute-force mean and sample std (naive sums, no shared code with summaryStats). */
function bruteStats(v: number[]) {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.map((x) => (x - mean) * (x - mean)).reduce((a, b) => a + b, 0) / (v.length - 1);
  return { mean, std: Math.sqrt(variance), min: Math.min(...v), max: Math.max(...v) };
}

describe('perturbWeights', () => {
  const theta = Float32Array.from([0.5, 0, -2, 0, 1e-3, -0, 3.25]);

  test('iid: θ_i + σ z_i in float64 rounded once, z the successive normals of the stream', () => {
    const p = perturbWeights(theta, 0.3, 'iid', Rng.fromSeed(5).stream('x'));
    const z = Rng.fromSeed(5).stream('x').fillNormal(new Float64Array(theta.length));
    for (let i = 0; i < theta.length; i++) {
      expect(p[i]).toBe(Math.fround((theta[i] as number) + 0.3 * (z[i] as number)));
      expect(p[i]).not.toBe(theta[i]);
    }
  });

  test('relative: σ |θ_i| z_i, exactly zero for zero weights', () => {
    const p = perturbWeights(theta, 0.3, 'relative', Rng.fromSeed(5).stream('x'));
    const z = Rng.fromSeed(5).stream('x').fillNormal(new Float64Array(theta.length));
    for (let i = 0; i < theta.length; i++) {
      const t = theta[i] as number;
      expect(p[i]).toBe(Math.fround(t + 0.3 * Math.abs(t) * (z[i] as number)));
    }
    for (const i of [1, 3, 5]) expect(p[i] === 0).toBe(true); // +0 or -0
    expect(p[0]).not.toBe(0.5);
    expect(p[6]).not.toBe(3.25);
    // Large σ still leaves zero weights at zero.
    const big = perturbWeights(theta, 1e6, 'relative', Rng.fromSeed(9));
    for (const i of [1, 3, 5]) expect(big[i] === 0).toBe(true);
  });

  test('σ = 0 is a bit-exact copy, even of -0 and NaN-free values', () => {
    for (const noise of ['iid', 'relative'] as const) {
      const p = perturbWeights(theta, 0, noise, Rng.fromSeed(1));
      expect(p).not.toBe(theta);
      expect(Object.is(p[5], -0)).toBe(true);
      expect(Array.from(p)).toEqual(Array.from(theta));
    }
  });

  test('errors', () => {
    expect(() => perturbWeights(theta, -0.1, 'iid', Rng.fromSeed(1))).toThrow(
      /σ must be a finite number >= 0, got -0.1/,
    );
    expect(() => perturbWeights(theta, Number.NaN, 'iid', Rng.fromSeed(1))).toThrow(/got NaN/);
    expect(() => perturbWeights(theta, 0.1, 'gauss' as never, Rng.fromSeed(1))).toThrow(
      /unknown noise 'gauss'/,
    );
  });
});

describe('summaryStats', () => {
  test('against brute force; single value and NaN', () => {
    const v = [0.3, 0.1, 0.7, 0.45, 0.2];
    const s = summaryStats(v);
    const b = bruteStats(v);
    expect(s.mean).toBeCloseTo(0.35, 15);
    expect(s.mean).toBeCloseTo(b.mean, 15);
    // Σ(v − 0.35)² = 0.0025 + 0.0625 + 0.1225 + 0.01 + 0.0225 = 0.22 → std = sqrt(0.22 / 4).
    expect(s.std).toBeCloseTo(Math.sqrt(0.055), 15);
    expect(s.std).toBeCloseTo(b.std, 15);
    expect([s.min, s.max]).toEqual([0.1, 0.7]);
    const one = summaryStats([2]);
    expect([one.mean, one.min, one.max]).toEqual([2, 2, 2]);
    expect(one.std).toBeNaN();
    expect(summaryStats([1, Number.NaN]).mean).toBeNaN();
    expect(summaryStats([]).max).toBeNaN();
  });
});

describe('weightSensitivity (synthetic evaluator)', () => {
  const theta = uniformArray(mulberry32(21), 300, -1, 1);
  const sigmas = [0, 0.01, 0.1, 0.5];

  test('draws come from the (seed, σ index, draw) streams; stats equal brute force', async () => {
    const { evaluate, calls } = syntheticEvaluator(theta);
    const r = await weightSensitivity(evaluate, theta, sigmas, { draws: 12, seed: 7 });
    expect(r.noise).toBe('iid');
    expect(r.streams).toBe('per-sigma');
    expect(r.draws).toBe(12);
    expect(r.clean).toEqual({ loss: 0, accuracy: 0.9 });
    // σ = 0 is not re-evaluated: 1 clean + 3 σ × 12 draws.
    expect(r.evaluations).toBe(37);
    expect(calls).toHaveLength(37);
    expect(r.levels.map((l) => l.sigma)).toEqual(sigmas);
    for (let i = 1; i < sigmas.length; i++) {
      const level = r.levels[i]!;
      const sigma = sigmas[i]!;
      const expected: LossAccuracy[] = [];
      for (let d = 0; d < 12; d++) {
        const p = perturbWeights(theta, sigma, 'iid', noiseStream(7, 'per-sigma', i, d));
        // The stream path is the documented one.
        const z = Rng.fromSeed(7).stream('eval').stream('sensitivity', i, d).normal();
        expect(p[0]).toBe(Math.fround((theta[0] as number) + sigma * z));
        expected.push(await syntheticEvaluator(theta).evaluate(p));
      }
      expect(level.draws.loss).toEqual(expected.map((e) => e.loss));
      expect(level.draws.accuracy).toEqual(expected.map((e) => e.accuracy));
      for (const key of ['loss', 'accuracy'] as const) {
        const b = bruteStats(level.draws[key]);
        expect(level[key].mean).toBeCloseTo(b.mean, 14);
        expect(level[key].std).toBeCloseTo(b.std, 14);
        expect(level[key].min).toBe(b.min);
        expect(level[key].max).toBe(b.max);
        expect(level[key].std).toBeGreaterThan(0);
      }
      // loss = mean ε² ≈ σ² (300 entries; within 25 %).
      expect(level.loss.mean / sigma ** 2).toBeGreaterThan(0.75);
      expect(level.loss.mean / sigma ** 2).toBeLessThan(1.25);
    }
    // σ = 0: exactly the clean evaluation in every draw.
    const zero = r.levels[0]!;
    expect(zero.draws.accuracy).toEqual(Array(12).fill(0.9));
    expect([zero.accuracy.mean, zero.accuracy.std, zero.accuracy.min, zero.accuracy.max]).toEqual([
      0.9, 0, 0.9, 0.9,
    ]);
  });

  test('same seed → same draws, different seed → different; draw d depends only on (seed, σ index, d)', async () => {
    const a = await weightSensitivity(syntheticEvaluator(theta).evaluate, theta, sigmas, {
      draws: 10,
      seed: 3,
    });
    const b = await weightSensitivity(syntheticEvaluator(theta).evaluate, theta, sigmas, {
      draws: 10,
      seed: 3,
    });
    const c = await weightSensitivity(syntheticEvaluator(theta).evaluate, theta, sigmas, {
      draws: 10,
      seed: 4,
    });
    expect(b).toEqual(a);
    for (let i = 1; i < sigmas.length; i++) {
      const da = a.levels[i]!.draws.loss;
      const dc = c.levels[i]!.draws.loss;
      for (let d = 0; d < 10; d++) expect(dc[d]).not.toBe(da[d]);
    }
    // Draw d depends only on (seed, σ index, d): a 3-draw run repeats the first 3 draws of a 10-draw run.
    const short = await weightSensitivity(syntheticEvaluator(theta).evaluate, theta, sigmas, {
      draws: 3,
      seed: 3,
    });
    for (let i = 0; i < sigmas.length; i++) {
      expect(short.levels[i]!.draws.loss).toEqual(a.levels[i]!.draws.loss.slice(0, 3));
    }
  });

  test('common streams: the same z at every σ', async () => {
    const { evaluate, calls } = syntheticEvaluator(theta);
    await weightSensitivity(evaluate, theta, [0.01, 0.02], { draws: 2, seed: 1, streams: 'common' });
    // calls: clean, (σ=0.01, d=0), (0.01, 1), (0.02, 0), (0.02, 1)
    const dir = (p: Float32Array, s: number) =>
      Float64Array.from(p, (v, i) => (v - (theta[i] as number)) / s);
    const d0a = dir(calls[1]!, 0.01);
    const d0b = dir(calls[3]!, 0.02);
    const d1a = dir(calls[2]!, 0.01);
    for (let i = 0; i < theta.length; i++) {
      expect(Math.abs((d0a[i] as number) - (d0b[i] as number))).toBeLessThan(1e-3);
    }
    expect(Math.abs((d0a[0] as number) - (d1a[0] as number))).toBeGreaterThan(1e-3);
  });

  test('frozen ranges (BatchNorm running statistics) get no noise; every other entry the same noise as without them', async () => {
    const free = syntheticEvaluator(theta);
    const held = syntheticEvaluator(theta);
    await weightSensitivity(free.evaluate, theta, [0.1], { draws: 2, seed: 4 });
    await weightSensitivity(held.evaluate, theta, [0.1], {
      draws: 2,
      seed: 4,
      frozen: [{ offset: 2, size: 3 }],
    });
    for (const k of [1, 2]) {
      const [f, h] = [free.calls[k]!, held.calls[k]!];
      for (let i = 0; i < theta.length; i++) {
        if (i >= 2 && i < 5) expect(h[i]).toBe(theta[i]);
        else expect(h[i]).toBe(f[i]);
      }
      expect(f[3]).not.toBe(theta[3]);
    }
  });

  test('relative noise leaves zero weights at zero', async () => {
    const t = Float32Array.from(theta);
    for (let i = 0; i < t.length; i += 3) t[i] = 0;
    const { evaluate, calls } = syntheticEvaluator(t);
    await weightSensitivity(evaluate, t, [0.5], { draws: 10, noise: 'relative' });
    for (const p of calls.slice(1)) {
      for (let i = 0; i < t.length; i++) {
        if (i % 3 === 0) expect(p[i]).toBe(0);
        else expect(p[i]).not.toBe(t[i]);
      }
    }
  });

  test('errors', async () => {
    const { evaluate } = syntheticEvaluator(theta);
    await expect(weightSensitivity(evaluate, theta, [0.1, -1])).rejects.toThrow(
      /σ must be a finite number >= 0, got -1/,
    );
    await expect(weightSensitivity(evaluate, theta, [Number.POSITIVE_INFINITY])).rejects.toThrow(
      /got Infinity/,
    );
    await expect(weightSensitivity(evaluate, theta, [])).rejects.toThrow(/sigmas is empty/);
    await expect(weightSensitivity(evaluate, theta, [0.1], { draws: 0 })).rejects.toThrow(
      /draws must be an integer >= 1, got 0/,
    );
    await expect(weightSensitivity(evaluate, theta, [0.1], { draws: 2.5 })).rejects.toThrow(/got 2.5/);
    await expect(weightSensitivity(evaluate, theta, [0.1], { seed: -1 })).rejects.toThrow(/seed must be/);
    await expect(weightSensitivity(evaluate, theta, [0.1], { noise: 'x' as never })).rejects.toThrow(
      /unknown noise 'x'/,
    );
    await expect(weightSensitivity(evaluate, theta, [0.1], { streams: 'x' as never })).rejects.toThrow(
      /unknown streams 'x'/,
    );
  });
});

describe('findCriticalSigma (injected accuracy curve)', () => {
  // acc(σ) = 0.95 − 0.6 (1 − e^{−σ/s0}); acc = 0.85 at σ* = −s0 ln(1 − 0.1/0.6) = s0 ln 1.2.
  const curve = (s0: number) => (sigma: number) => 0.95 - 0.6 * (1 - Math.exp(-sigma / s0));
  const halfTol = (tol: number) => 0.5 * Math.log(1 + tol);

  test.each([
    [0.037, 'inside the default bracket'],
    [2e-7, 'below it (lo widened down)'],
    [4e3, 'above it (hi widened up)'],
  ])('s0 = %s (%s): within the stated tolerance of the exact σ*', async (s0) => {
    const exact = s0 * Math.log(1.2);
    const r = await findCriticalSigma(curve(s0), 0.95);
    expect(r.targetAccuracy).toBeCloseTo(0.85, 15);
    expect(r.cleanAccuracy).toBe(0.95);
    expect(Math.abs(Math.log(r.sigma) - Math.log(exact))).toBeLessThanOrEqual(halfTol(0.01));
    expect(r.hi / r.lo).toBeLessThanOrEqual(1.01);
    expect(r.lo).toBeLessThanOrEqual(exact);
    expect(r.hi).toBeGreaterThanOrEqual(exact);
    expect(r.sigma).toBeCloseTo(Math.sqrt(r.lo * r.hi), 15);
    // Every σ probed once.
    expect(new Set(r.probes.map((p) => p.sigma)).size).toBe(r.probes.length);
    for (const p of r.probes) expect(p.accuracy).toBe(curve(s0)(p.sigma));
  });

  test('probe count: 2 bracket probes + ⌈log2(ln(1000) / ln(1 + tol))⌉ bisections', async () => {
    const r = await findCriticalSigma(curve(0.037), 0.95);
    expect(r.probes.slice(0, 2).map((p) => p.sigma)).toEqual([1e-3, 1]);
    expect(r.probes).toHaveLength(2 + Math.ceil(Math.log2(Math.log(1000) / Math.log(1.01))));
    const tight = await findCriticalSigma(curve(0.037), 0.95, { tolerance: 1e-9, drop: 0.3 });
    // drop 0.3: 1 − e^{−σ/s0} = 0.5 → σ* = s0 ln 2.
    expect(Math.abs(Math.log(tight.sigma) - Math.log(0.037 * Math.LN2))).toBeLessThanOrEqual(halfTol(1e-9));
  });

  test('a step curve: σ* is the step', async () => {
    const r = await findCriticalSigma((s) => (s < 0.0123 ? 1 : 0.5), 1, { bracket: [1e-4, 10] });
    expect(r.lo).toBeLessThan(0.0123);
    expect(r.hi).toBeGreaterThanOrEqual(0.0123);
    expect(Math.abs(Math.log(r.sigma / 0.0123))).toBeLessThanOrEqual(halfTol(0.01));
  });

  test('errors', async () => {
    const f = curve(0.037);
    await expect(findCriticalSigma(() => 0.95, 0.95)).rejects.toThrow(
      /still above the target 0.85.* after 20 widenings up/,
    );
    await expect(findCriticalSigma(() => 0.1, 0.95, { maxExpansions: 3 })).rejects.toThrow(
      /already at or below the target .* after 3 widenings down/,
    );
    await expect(findCriticalSigma(f, 0.95, { drop: 0 })).rejects.toThrow(/drop must be in \(0, 1\], got 0/);
    await expect(findCriticalSigma(f, 0.95, { bracket: [1, 0.1] })).rejects.toThrow(/0 < lo < hi/);
    await expect(findCriticalSigma(f, 0.95, { bracket: [0, 1] })).rejects.toThrow(/0 < lo < hi/);
    await expect(findCriticalSigma(f, 0.95, { tolerance: 0 })).rejects.toThrow(/tolerance must be in/);
    await expect(findCriticalSigma(f, Number.NaN)).rejects.toThrow(/clean accuracy is NaN/);
    await expect(findCriticalSigma(() => Number.NaN, 0.95)).rejects.toThrow(/accuracy at σ = 0.001 is NaN/);
  });
});

describe('criticalSigma (synthetic evaluator)', () => {
  // accuracy = 0.9 − c · rms(ε): with common draws ε_d = σ z_d, the mean accuracy over D draws is
  // 0.9 − c σ mean_d rms(z_d), so σ* = drop / (c · mean_d rms(z_d)) exactly (up to float32 rounding).
  test('finds σ* of a linear-in-σ mean accuracy to the tolerance, deterministically', async () => {
    const theta = new Float32Array(500);
    const c = 2;
    const draws = 10;
    let rmsMean = 0;
    for (let d = 0; d < draws; d++) {
      const z = noiseStream(11, 'common', 0, d).fillNormal(new Float64Array(theta.length));
      rmsMean += Math.sqrt(z.reduce((s, v) => s + v * v, 0) / z.length) / draws;
    }
    const exact = 0.1 / (c * rmsMean);
    const { evaluate, calls } = syntheticEvaluator(theta, c);
    const r = await criticalSigma(evaluate, theta, { seed: 11, draws });
    expect(r.cleanAccuracy).toBe(0.9);
    expect(Math.abs(Math.log(r.sigma) - Math.log(exact))).toBeLessThanOrEqual(0.5 * Math.log(1.01) + 1e-6);
    expect(r.evaluations).toBe(1 + draws * r.probes.length);
    expect(calls).toHaveLength(r.evaluations);
    expect([r.noise, r.draws, r.seed]).toEqual(['iid', 10, 11]);
    const again = await criticalSigma(syntheticEvaluator(theta, c).evaluate, theta, { seed: 11, draws });
    expect(again).toEqual(r);
    // The probes are weightSensitivity's common-stream means at the same σ.
    const probes = r.probes.slice(0, 4);
    const s = await weightSensitivity(
      syntheticEvaluator(theta, c).evaluate,
      theta,
      probes.map((p) => p.sigma),
      { seed: 11, draws, streams: 'common' },
    );
    probes.forEach((p, i) => expect(s.levels[i]!.accuracy.mean).toBeCloseTo(p.accuracy, 14));
  });

  test('errors', async () => {
    const theta = new Float32Array(4);
    const { evaluate } = syntheticEvaluator(theta);
    await expect(criticalSigma(evaluate, theta, { draws: 0 })).rejects.toThrow(
      /draws must be an integer >= 1/,
    );
    await expect(criticalSigma(async () => ({ loss: 1, accuracy: Number.NaN }), theta)).rejects.toThrow(
      /clean accuracy is NaN \(a classification model is needed\)/,
    );
  });
});

describe('with the ORT engine', () => {
  const engines: Engine[] = [];
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.dispose()));
  });

  /** A tanh MLP 6-16-4 with targets = its own argmax on 200 inputs, so the clean accuracy is 1. */
  async function teacher() {
    const model = modelGraphSpec({ kind: 'mlp', hidden: [16], activation: 'tanh' }, 6, 4, 'cross-entropy');
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    engines.push(engine);
    const rand = mulberry32(5);
    const theta = uniformArray(rand, model.layout.size, -1, 1);
    const n = 200;
    const x = uniformArray(rand, n * 6, -2, 2);
    const logits = await engine.predictions!(theta, x, n);
    const y = new Float32Array(n * 4);
    for (let r = 0; r < n; r++) {
      const row = Array.from(logits.subarray(r * 4, r * 4 + 4));
      y[r * 4 + row.indexOf(Math.max(...row))] = 1;
    }
    return { engine, theta, data: { x, y, n } };
  }

  test('σ = 0 gives exactly the clean accuracy; draws are engine evaluations of the seeded θ + ε', async () => {
    const { engine, theta, data } = await teacher();
    const evaluate = engineEvaluator(engine, data);
    const clean = await engine.evaluate(theta, data.x, data.y, data.n);
    expect(clean.correct).toBe(200);
    const r = await weightSensitivity(evaluate, theta, [0, 0.05, 0.5], { draws: 10, seed: 2 });
    expect(r.clean).toEqual({ loss: clean.loss, accuracy: 1 });
    expect(r.levels[0]!.accuracy).toEqual({ mean: 1, std: 0, min: 1, max: 1 });
    expect(r.levels[0]!.loss.mean).toBe(clean.loss);
    expect(r.levels[0]!.draws.loss).toEqual(Array(10).fill(clean.loss));
    // Draw 4 at σ = 0.5 (index 2) recomputed by hand.
    const p = perturbWeights(theta, 0.5, 'iid', noiseStream(2, 'per-sigma', 2, 4));
    const e = await engine.evaluate(p, data.x, data.y, data.n);
    expect(r.levels[2]!.draws.loss[4]).toBe(e.loss);
    expect(r.levels[2]!.draws.accuracy[4]).toBe(e.correct / 200);
    // More noise, lower mean accuracy and higher mean loss.
    expect(r.levels[1]!.accuracy.mean).toBeLessThan(1);
    expect(r.levels[2]!.accuracy.mean).toBeLessThan(r.levels[1]!.accuracy.mean);
    expect(r.levels[2]!.loss.mean).toBeGreaterThan(r.levels[1]!.loss.mean);
    // Accuracies are multiples of 1/200.
    for (const a of r.levels[2]!.draws.accuracy)
      expect(Math.abs(a * 200 - Math.round(a * 200))).toBeLessThan(1e-9);
  });

  test('criticalSigma brackets the 10-point drop of the engine mean accuracy', async () => {
    const { engine, theta, data } = await teacher();
    const evaluate = engineEvaluator(engine, data);
    const r = await criticalSigma(evaluate, theta, { draws: 10, seed: 1, tolerance: 0.05 });
    expect(r.targetAccuracy).toBeCloseTo(0.9, 15);
    const at = await weightSensitivity(evaluate, theta, [r.lo, r.hi], {
      draws: 10,
      seed: 1,
      streams: 'common',
    });
    expect(at.levels[0]!.accuracy.mean).toBeGreaterThan(0.9);
    expect(at.levels[1]!.accuracy.mean).toBeLessThanOrEqual(0.9);
    expect(r.hi / r.lo).toBeLessThanOrEqual(1.05);
    expect(r.sigma).toBeGreaterThan(1e-3);
    expect(r.sigma).toBeLessThan(1);
  });

  test('an mse model has NaN accuracy', async () => {
    const model = modelGraphSpec({ kind: 'linear' }, 3, 2, 'mse');
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    engines.push(engine);
    const rand = mulberry32(8);
    const theta = uniformArray(rand, model.layout.size);
    const data = { x: uniformArray(rand, 30), y: uniformArray(rand, 20), n: 10 };
    const r = await engineEvaluator(engine, data)(theta);
    expect(r.accuracy).toBeNaN();
    expect(r.loss).toBe((await engine.evaluate(theta, data.x, data.y, 10)).loss);
    const s = await weightSensitivity(engineEvaluator(engine, data), theta, [0.1], { draws: 2 });
    expect(s.levels[0]!.accuracy.mean).toBeNaN();
    expect(s.levels[0]!.loss.mean).toBeGreaterThan(0);
  });
});

describe('batched evaluators (`many`)', () => {
  /** The synthetic evaluator with a `many` that evaluates a list point by point and records each list. */
  function batchedSynthetic(theta: Float32Array, c = 1) {
    const { evaluate } = syntheticEvaluator(theta, c);
    const lists: number[] = [];
    const many = async (points: ParamsBatch) => {
      if (!Array.isArray(points)) throw new Error('expected a list');
      lists.push(points.length);
      return Promise.all((points as Float32Array[]).map((p) => evaluate(p)));
    };
    return { evaluate: Object.assign(evaluate, { many }) as ParamsEvaluator, lists };
  }

  test('weightSensitivity sends every draw of every σ > 0 as lists of ≤ 64; same result', async () => {
    const theta = uniformArray(mulberry32(31), 200, -1, 1);
    const sigmas = [0, 0.01, 0.1, 0.3, 0.5, 1, 2, 3];
    const { evaluate, lists } = batchedSynthetic(theta);
    const r = await weightSensitivity(evaluate, theta, sigmas, { draws: 11, seed: 3 });
    expect(lists).toEqual([64, 13]); // 7 σ > 0 × 11 draws = 77
    expect(r.evaluations).toBe(78);
    expect(r).toEqual(
      await weightSensitivity(syntheticEvaluator(theta).evaluate, theta, sigmas, { draws: 11, seed: 3 }),
    );
  });

  test('criticalSigma sends each probe’s draws as one list; same result', async () => {
    const theta = new Float32Array(300);
    const { evaluate, lists } = batchedSynthetic(theta, 2);
    const r = await criticalSigma(evaluate, theta, { seed: 4, draws: 7 });
    expect(lists).toEqual(Array(r.probes.length).fill(7));
    expect(r).toEqual(
      await criticalSigma(syntheticEvaluator(theta, 2).evaluate, theta, { seed: 4, draws: 7 }),
    );
  });

  test('ORT engineEvaluator: batched sensitivity equals one engine evaluation per draw, bit for bit', async () => {
    const model = modelGraphSpec({ kind: 'mlp', hidden: [16, 8] }, 6, 4, 'cross-entropy');
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const rand = mulberry32(40);
    const theta = uniformArray(rand, model.layout.size, -1, 1);
    const n = 130;
    const x = uniformArray(rand, n * 6, -2, 2);
    // Targets: θ's own argmax, so the clean accuracy is 1 and the critical σ exists.
    const logits = await engine.predictions!(theta, x, n);
    const y = new Float32Array(n * 4);
    for (let r = 0; r < n; r++) {
      const row = Array.from(logits.subarray(r * 4, r * 4 + 4));
      y[r * 4 + row.indexOf(Math.max(...row))] = 1;
    }
    const batched = engineEvaluator(engine, { x, y, n });
    expect(batched.many).toBeDefined();
    const sequential: ParamsEvaluator = (p) => batched(p);
    for (const noise of ['iid', 'relative'] as const) {
      const options = { draws: 10, seed: 5, noise };
      const sigmas = [0, 0.05, 0.2, 0.8];
      expect(await weightSensitivity(batched, theta, sigmas, options)).toEqual(
        await weightSensitivity(sequential, theta, sigmas, options),
      );
      expect(await criticalSigma(batched, theta, { ...options, tolerance: 0.1 })).toEqual(
        await criticalSigma(sequential, theta, { ...options, tolerance: 0.1 }),
      );
    }
    await engine.dispose();
  });
});
