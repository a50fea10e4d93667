/**
 * The measurement kernels on the GEMM path (issue 16) against their previous plain-JS
 * implementations (`backend: 'js'`, the Hungarian solver), on random inputs and on real ones: two
 * MLPs 784-64-32-10 trained briefly on MNIST digits, their activations on held-out digits, and the
 * raw pixels (whose always-zero border columns exercise the constant-column handling).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mlpSpec, randomParams } from '../../src/bench/inputs.js';
import { loadMnist } from '../../src/data/mnist.js';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { activationMatching, weightMatching } from '../../src/measure/align.js';
import { assignmentObjective, linearAssignment } from '../../src/measure/assignment.js';
import { cka, type Matrix } from '../../src/measure/cka.js';
import type { ModelGraphSpec } from '../../src/model/graph.js';
import { Rng } from '../../src/rng/rng.js';

interface Real {
  spec: ModelGraphSpec;
  a: Float32Array;
  b: Float32Array;
  n: number;
  pixels: Matrix;
  actsA: Map<string, Float32Array>;
  actsB: Map<string, Float32Array>;
}

const real = {} as Real;

beforeAll(async () => {
  const data = loadMnist({ name: 'mnist', nTrain: 2048, nTest: 600 }, Rng.fromSeed(1));
  const spec = mlpSpec([784, 64, 32, 10]);
  const engine = await createOrtEngine(spec, { optimizer: { kind: 'sgd', lr: 0.1 } });
  try {
    const train = async (seed: number): Promise<Float32Array> => {
      const state = { params: randomParams(spec, seed), opt: engine.initOptimizerState() };
      const order = Rng.fromSeed(seed).stream('order').permutation(data.train.n);
      const batch = 64;
      for (let s = 0; s < 60; s++) {
        const x = new Float32Array(batch * 784);
        const y = new Float32Array(batch * 10);
        for (let r = 0; r < batch; r++) {
          const i = order[(s * batch + r) % data.train.n] as number;
          x.set(data.train.x.subarray(i * 784, (i + 1) * 784), r * 784);
          y.set(data.train.y.subarray(i * 10, (i + 1) * 10), r * 10);
        }
        await engine.trainStep(state, { x, y, size: batch }, 0.1);
      }
      return state.params;
    };
    real.spec = spec;
    real.a = await train(1);
    real.b = await train(2);
    real.n = data.test.n;
    real.pixels = { rows: data.test.n, cols: 784, data: data.test.x };
    real.actsA = await engine.activations(real.a, data.test.x, data.test.n);
    real.actsB = await engine.activations(real.b, data.test.x, data.test.n);
  } finally {
    await engine.dispose();
  }
}, 60_000);

function randomActs(rng: Rng, n: number, widths: readonly number[]): Map<string, Float32Array> {
  return new Map(
    widths.map((w, l) => [
      `dense${l}`,
      Float32Array.from(rng.fillNormal(new Float64Array(n * w)), (v) => Math.max(0, v)),
    ]),
  );
}

describe('weightMatching: GEMM path = plain-JS path', () => {
  it('random He inits of several MLPs: same permutations, sweeps and convergence', () => {
    for (const [widths, seed] of [
      [[20, 16, 12, 3], 1],
      [[30, 24, 24, 24, 5], 2],
      [[784, 96, 64, 10], 3],
    ] as const) {
      const spec = mlpSpec(widths);
      const a = randomParams(spec, seed);
      const b = randomParams(spec, seed + 100);
      const fast = weightMatching(a, b, spec.layout, { seed: 0 });
      const ref = weightMatching(a, b, spec.layout, { seed: 0, backend: 'js' });
      expect(fast.perms, widths.join('-')).toEqual(ref.perms);
      expect([fast.sweeps, fast.converged]).toEqual([ref.sweeps, ref.converged]);
      expect(fast.aligned).toEqual(ref.aligned);
    }
  });

  it('two MLPs trained on MNIST: same permutations and sweeps', () => {
    const fast = weightMatching(real.a, real.b, real.spec.layout, { seed: 3 });
    const ref = weightMatching(real.a, real.b, real.spec.layout, { seed: 3, backend: 'js' });
    expect(fast.perms).toEqual(ref.perms);
    expect([fast.sweeps, fast.converged]).toEqual([ref.sweeps, ref.converged]);
    expect(fast.sweeps).toBeGreaterThan(1);
  });

  it('maxSweeps and a permuted copy behave as before', () => {
    const fast = weightMatching(real.a, real.b, real.spec.layout, { seed: 0, maxSweeps: 1 });
    const ref = weightMatching(real.a, real.b, real.spec.layout, { seed: 0, maxSweeps: 1, backend: 'js' });
    expect(fast.perms).toEqual(ref.perms);
    expect(fast.converged).toBe(ref.converged);
    expect(() => weightMatching(real.a, real.b, real.spec.layout, { seed: 0, backend: 'x' as 'js' })).toThrow(
      /backend/,
    );
  });
});

describe('activationMatching: GEMM path = plain-JS path', () => {
  it('random activations, correlation and inner products', () => {
    const rng = Rng.fromSeed(5).stream('acts');
    const a = randomActs(rng, 300, [40, 24]);
    const b = randomActs(rng, 300, [40, 24]);
    for (const method of ['correlation', 'inner'] as const) {
      expect(activationMatching(a, b, 300, { method })).toEqual(
        activationMatching(a, b, 300, { method, backend: 'js' }),
      );
    }
  });

  it('activations of two MNIST-trained MLPs on held-out digits', () => {
    // Trained ReLU layers have dead units (constant 0 on every digit): their rows of C tie exactly,
    // which is why activation matching keeps the Hungarian solver.
    for (const method of ['correlation', 'inner'] as const) {
      expect(activationMatching(real.actsA, real.actsB, real.n, { method })).toEqual(
        activationMatching(real.actsA, real.actsB, real.n, { method, backend: 'js' }),
      );
    }
  });
});

describe('cka: GEMM products = plain-JS products', () => {
  const forms = ['feature', 'gram'] as const;

  function agree(x: Matrix, y: Matrix, what: string): void {
    for (const linearForm of forms) {
      for (const debiased of [false, true]) {
        const fast = cka(x, y, { linearForm, debiased });
        const ref = cka(x, y, { linearForm, debiased, backend: 'js' });
        expect(Math.abs(fast - ref), `${what} ${linearForm} debiased=${debiased}`).toBeLessThan(1e-12);
      }
    }
  }

  it('random representations, including a constant column and an offset', () => {
    const rng = Rng.fromSeed(9).stream('cka');
    const n = 200;
    const x = rng.fillNormal(new Float64Array(n * 30));
    const y = new Float64Array(n * 20);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 20; j++) y[i * 20 + j] = (x[i * 30 + j] as number) + 0.5 * rng.normal() + 3;
      x[i * 30 + 7] = 2.5; // constant column
    }
    agree({ rows: n, cols: 30, data: x }, { rows: n, cols: 20, data: y }, 'random');
    agree({ rows: n, cols: 30, data: x }, { rows: n, cols: 30, data: x }, 'self');
    // n ≤ p: 'auto' picks the Gram form.
    const wide = { rows: 20, cols: 30, data: x.subarray(0, 600) };
    expect(Math.abs(cka(wide, wide) - cka(wide, wide, { backend: 'js' }))).toBeLessThan(1e-12);
  });

  it('a large common offset: the feature form centres first, so both paths agree to 1e-12', () => {
    const rng = Rng.fromSeed(10).stream('cka');
    const n = 300;
    const x = rng.fillNormal(new Float64Array(n * 16)).map((v) => v + 1e4);
    const y = Float64Array.from(x, (v) => v * v * 1e-4 + rng.normal());
    for (const debiased of [false, true]) {
      const X = { rows: n, cols: 16, data: x };
      const Y = { rows: n, cols: 16, data: y };
      const fast = cka(X, Y, { linearForm: 'feature', debiased });
      expect(Math.abs(fast - cka(X, Y, { linearForm: 'feature', debiased, backend: 'js' }))).toBeLessThan(
        1e-12,
      );
    }
  });

  it('MNIST pixels and the activations of two trained MLPs', () => {
    const { n } = real;
    const layer = (acts: Map<string, Float32Array>, name: string): Matrix => {
      const data = acts.get(name) as Float32Array;
      return { rows: n, cols: data.length / n, data };
    };
    expect([...real.actsA.keys()]).toEqual(['dense0', 'dense1']);
    for (const name of ['dense0', 'dense1']) {
      agree(layer(real.actsA, name), layer(real.actsB, name), name);
    }
    agree(real.pixels, layer(real.actsA, 'dense0'), 'pixels vs dense0');
  });
});

describe('linearAssignment: Jonker–Volgenant = Hungarian', () => {
  it('same permutation on continuous costs, same optimum with ties', () => {
    const rng = Rng.fromSeed(13).stream('lap');
    for (const n of [2, 9, 64, 300]) {
      for (let t = 0; t < 6; t++) {
        const tied = t % 2 === 0;
        const data = new Float64Array(n * n).map(() => (tied ? rng.int(4) : rng.normal()));
        const cost = { rows: n, cols: n, data };
        for (const maximize of [false, true]) {
          const jv = linearAssignment(cost, { maximize });
          const hu = linearAssignment(cost, { maximize, solver: 'hungarian' });
          expect([...jv].sort((p, q) => p - q)).toEqual([...Array(n).keys()]);
          if (tied) expect(assignmentObjective(cost, jv)).toBe(assignmentObjective(cost, hu));
          else expect(jv).toEqual(hu);
        }
      }
    }
  });

  it('the C matrices of weight matching on MNIST-trained weights', () => {
    // The first-layer similarity W_A0 · W_B0ᵀ (plus biases) of the trained pair.
    const slots = new Map(real.spec.layout.tensors.map((t) => [t.name, t]));
    const w = slots.get('dense0.weight')!;
    const [rows, cols] = w.shape as [number, number];
    const A = real.a.subarray(w.offset, w.offset + w.size);
    const B = real.b.subarray(w.offset, w.offset + w.size);
    const C = new Float64Array(rows * rows);
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < rows; j++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += (A[i * cols + c] as number) * (B[j * cols + c] as number);
        C[i * rows + j] = s;
      }
    }
    const cost = { rows, cols: rows, data: C };
    expect(linearAssignment(cost, { maximize: true })).toEqual(
      linearAssignment(cost, { maximize: true, solver: 'hungarian' }),
    );
  });
});
