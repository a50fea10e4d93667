/**
 * Engine.evaluateMany on ORT: the points form is bit-identical to evaluate point by point; the
 * combination form (first layer as a combination of the vectors' products) agrees with it within
 * float32 rounding: |Δloss| ≤ 1e-5 · (1 + |loss|) (observed ≤ 2e-7 here) and equal correct
 * counts on these data (a count may differ in general where two logits tie to rounding).
 */
import { afterAll, describe, expect, test } from 'vitest';
import { Graph } from '../../../src/engine/ir/graph.js';
import { createOrtEngine, OrtJobs } from '../../../src/engine/ort/engine.js';
import { BoundedJobCache, OrtJob } from '../../../src/engine/ort/session.js';
import { paramsPoint } from '../../../src/engine/params-batch.js';
import type { Engine, EvalResult, ParamsCombination } from '../../../src/engine/types.js';
import type { LossKind } from '../../../src/model/graph.js';
import { modelGraphSpec } from '../../../src/model/graph.js';
import type { ModelSpec } from '../../../src/model/spec.js';
import { mulberry32, randomBatch, uniformArray } from '../../helpers/reference-model.js';

const engines: Engine[] = [];
const jobsToDispose: OrtJobs[] = [];
afterAll(async () => {
  await Promise.all([...engines.map((e) => e.dispose()), ...jobsToDispose.map((j) => j.dispose())]);
});

/** [name, model, inputs, outputs, loss, examples]: example counts off any SIMD width on purpose. */
const cases: [string, ModelSpec, number, number, LossKind, number][] = [
  ['mlp tanh, 50 examples', { kind: 'mlp', hidden: [8], activation: 'tanh' }, 4, 3, 'cross-entropy', 50],
  ['mlp relu, 2 chunks', { kind: 'mlp', hidden: [7, 6], activation: 'relu' }, 5, 3, 'cross-entropy', 2085],
  [
    'mlp no bias',
    { kind: 'mlp', hidden: [5, 5], activation: 'tanh', bias: false },
    3,
    2,
    'cross-entropy',
    37,
  ],
  ['mlp mse', { kind: 'mlp', hidden: [4], activation: 'tanh' }, 3, 2, 'mse', 41],
  ['deep linear chain', { kind: 'deep-linear-chain', depth: 3 }, 4, 1, 'mse', 29],
  ['linear', { kind: 'linear' }, 5, 3, 'cross-entropy', 64],
];

async function setup(spec: ModelSpec, inDim: number, outDim: number, loss: LossKind, n: number, threads = 1) {
  const model = modelGraphSpec(spec, inDim, outDim, loss);
  const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 }, threads });
  engines.push(engine);
  const rand = mulberry32(n + inDim);
  const batch = randomBatch(model, n, rand);
  return { model, engine, rand, x: batch.x, y: batch.y, n };
}

async function sequential(
  engine: Engine,
  points: Float32Array[],
  x: Float32Array,
  y: Float32Array,
  n: number,
) {
  const out: EvalResult[] = [];
  for (const p of points) out.push(await engine.evaluate(p, x, y, n));
  return out;
}

describe('evaluateMany, points form (ORT)', () => {
  test.each(cases)('%s: bit-identical to evaluate, point by point', async (_name, spec, i, o, loss, n) => {
    const { model, engine, rand, x, y } = await setup(spec, i, o, loss, n);
    // 70 points: more than one call's worth (64), so two balanced groups of 35.
    const points = Array.from({ length: 70 }, () => uniformArray(rand, model.layout.size, -1.5, 1.5));
    points[3] = points[0] as Float32Array; // a repeated point gives a repeated result
    const many = await engine.evaluateMany(points, x, y, n);
    expect(many).toEqual(await sequential(engine, points, x, y, n));
    expect(many[3]).toEqual(many[0]);
  });

  test('a model too large to gain from batching lists: one evaluate per point, same results', async () => {
    // 2 · 1,100 rows · (64·256 + 256·256 + 256·10) MACs = 186 MFLOP per point and chunk > 64 MFLOP.
    const { model, engine, rand, x, y, n } = await setup(
      { kind: 'mlp', hidden: [256, 256] },
      64,
      10,
      'cross-entropy',
      1100,
    );
    const points = Array.from({ length: 3 }, () => uniformArray(rand, model.layout.size, -0.2, 0.2));
    const progress: number[] = [];
    const many = await engine.evaluateMany(points, x, y, n, { onProgress: (done) => progress.push(done) });
    expect(many).toEqual(await sequential(engine, points, x, y, n));
    expect(progress).toEqual([1, 2, 3]);
  });

  test('bit-identical at two threads too, and for the float64 jobs', async () => {
    const { model, engine, rand, x, y, n } = await setup(
      { kind: 'mlp', hidden: [16, 9] },
      6,
      4,
      'cross-entropy',
      300,
      2,
    );
    const points = Array.from({ length: 9 }, () => uniformArray(rand, model.layout.size));
    expect(await engine.evaluateMany(points, x, y, n)).toEqual(await sequential(engine, points, x, y, n));
    const jobs = new OrtJobs(model, { kind: 'sgd', lr: 0.1 }, 1, 'float64');
    jobsToDispose.push(jobs);
    const x64 = Float64Array.from(x);
    const y64 = Float64Array.from(y);
    const many = await jobs.evaluateMany(points, x64, y64, n);
    for (let k = 0; k < points.length; k++) {
      expect(many[k]).toEqual(await jobs.evaluate(points[k] as Float32Array, x64, y64, n));
    }
  });

  test('a combination with as many vectors as points is formed in float64 and evaluated exactly', async () => {
    const { model, engine, rand, x, y, n } = await setup(
      { kind: 'mlp', hidden: [8], activation: 'tanh' },
      4,
      3,
      'cross-entropy',
      60,
    );
    const a = uniformArray(rand, model.layout.size);
    const b = uniformArray(rand, model.layout.size);
    const combination = {
      vectors: [a, b],
      coefficients: [
        [0.75, 0.25],
        [-0.5, 1.5],
      ],
    };
    const many = await engine.evaluateMany(combination, x, y, n);
    // fround((1 − α) a + α b) in float64, as interpolate (barrier.ts) forms it.
    const at = (alpha: number) => Float32Array.from(a, (v, i) => (1 - alpha) * v + alpha * (b[i] as number));
    expect(many).toEqual(await sequential(engine, [at(0.25), at(1.5)], x, y, n));
  });

  test('n = 0, no points, progress, errors', async () => {
    const { model, engine, rand, x, y, n } = await setup({ kind: 'linear' }, 3, 2, 'cross-entropy', 10);
    const p = uniformArray(rand, model.layout.size);
    expect(await engine.evaluateMany([], x, y, n)).toEqual([]);
    const [empty] = await engine.evaluateMany([p], x.subarray(0, 0), y.subarray(0, 0), 0);
    expect(empty?.count).toBe(0);
    expect(empty?.loss).toBeNaN();
    const progress: [number, number][] = [];
    await engine.evaluateMany(
      Array.from({ length: 130 }, () => p),
      x,
      y,
      n,
      { onProgress: (done, total) => progress.push([done, total]) },
    );
    expect(progress).toEqual([
      [44, 130],
      [88, 130],
      [130, 130],
    ]);
    await expect(engine.evaluateMany([p, p.subarray(1)], x, y, n)).rejects.toThrow(
      /point 1 has 7 values, expected 8/,
    );
    await expect(engine.evaluateMany({ vectors: [], coefficients: [] }, x, y, n)).rejects.toThrow(
      /at least one vector/,
    );
    await expect(engine.evaluateMany({ vectors: [p], coefficients: [[1, 2]] }, x, y, n)).rejects.toThrow(
      /coefficient row 0 has 2 values, expected one per vector \(1\)/,
    );
    await expect(
      engine.evaluateMany({ vectors: [p], coefficients: [[Number.NaN]] }, x, y, n),
    ).rejects.toThrow(/non-finite/);
    await expect(engine.evaluateMany([p], x.subarray(1), y, n)).rejects.toThrow(/x has 29 values/);
  });
});

describe('evaluateMany, combination form (ORT)', () => {
  /** A plane θ + a d₁ + b d₂ on a grid: 3 vectors, many points. */
  function plane(size: number, rand: () => number, side: number): ParamsCombination {
    const theta = uniformArray(rand, size, -1, 1);
    const d1 = Float64Array.from(uniformArray(rand, size, -0.5, 0.5));
    const d2 = Float64Array.from(uniformArray(rand, size, -0.5, 0.5));
    const coefficients: number[][] = [];
    for (let j = 0; j < side; j++) {
      for (let i = 0; i < side; i++)
        coefficients.push([1, -1 + (2 * i) / (side - 1), -1 + (2 * j) / (side - 1)]);
    }
    return { vectors: [theta, d1, d2], coefficients };
  }

  test.each(cases)(
    '%s: equals evaluate of the float64-formed points within float32 rounding',
    async (_n, spec, i, o, loss, n) => {
      const { model, engine, rand, x, y } = await setup(spec, i, o, loss, n);
      const combination = plane(model.layout.size, rand, 9); // 81 points: groups of 41, K = 3
      const many = await engine.evaluateMany(combination, x, y, n);
      const points = combination.coefficients.map((_, k) => paramsPoint(combination, k));
      const seq = await sequential(engine, points, x, y, n);
      let worst = 0;
      many.forEach((r, k) => {
        const s = seq[k] as EvalResult;
        worst = Math.max(worst, Math.abs(r.loss - s.loss) / (1 + Math.abs(s.loss)));
        expect(r.count).toBe(n);
        expect(r.correct).toBe(s.correct);
      });
      expect(worst).toBeLessThan(1e-5);
    },
  );

  test('MLP with 2 threads: same tolerance; the zero-coefficient rows of padding are not reported', async () => {
    const { model, engine, rand, x, y, n } = await setup(
      { kind: 'mlp', hidden: [32, 16] },
      12,
      5,
      'cross-entropy',
      700,
      2,
    );
    const combination = plane(model.layout.size, rand, 11); // 121 points: groups of 61, one padded
    const many = await engine.evaluateMany(combination, x, y, n);
    expect(many).toHaveLength(121);
    const seq = await sequential(
      engine,
      combination.coefficients.map((_, k) => paramsPoint(combination, k)),
      x,
      y,
      n,
    );
    many.forEach((r, k) => {
      expect(Math.abs(r.loss - (seq[k] as EvalResult).loss)).toBeLessThan(
        1e-5 * (1 + (seq[k] as EvalResult).loss),
      );
      expect(r.correct).toBe((seq[k] as EvalResult).correct);
    });
  });
});

describe('BoundedJobCache', () => {
  test('keeps the most recently used jobs; an evicted job in use finishes its run first', async () => {
    const g = new Graph();
    const x = g.input('x', [2]);
    const job = { graph: g, outputs: { y: g.add(x, 1) } };
    const compiled: string[] = [];
    const cache = new BoundedJobCache<string>(2);
    const compile = (key: string) => () => {
      compiled.push(key);
      return OrtJob.create(job, { threads: 1, floatType: 'float32' });
    };
    const run = (key: string) =>
      cache.use(
        key,
        compile(key),
        async (j) => (await j.run({ x: { data: Float32Array.of(1, 2), dims: [2] } })).y,
      );
    await run('a');
    await run('b');
    await run('a'); // a is now the most recent: c evicts b
    await run('c');
    expect(cache.size).toBe(2);
    await run('a');
    expect(compiled).toEqual(['a', 'b', 'c']);
    await run('b');
    expect(compiled).toEqual(['a', 'b', 'c', 'b']);
    // Evicted while running: the run still completes.
    let resume = () => {};
    const gate = new Promise<void>((r) => {
      resume = r;
    });
    const slow = cache.use('x', compile('x'), async (j) => {
      await gate;
      return (await j.run({ x: { data: Float32Array.of(5, 6), dims: [2] } })).y;
    });
    await run('y');
    await run('z'); // evicts x while its use is waiting
    resume();
    expect(Array.from((await slow) as Float32Array)).toEqual([6, 7]);
    expect(cache.size).toBe(2);
    await cache.dispose();
    expect(cache.size).toBe(0);
    expect(() => new BoundedJobCache(0)).toThrow(/capacity must be a positive integer/);
  });
});
