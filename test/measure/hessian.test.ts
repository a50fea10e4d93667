import { eigs } from 'mathjs';
import { afterAll, describe, expect, test } from 'vitest';
import type { Batch } from '../../src/data/types.js';
import { createOrtEngine, OrtJobs } from '../../src/engine/ort/engine.js';
import type { Engine, OptimizerSpec } from '../../src/engine/types.js';
import {
  adamPreconditioner,
  engineHvp,
  type HvpFn,
  hutchinsonTrace,
  lanczos,
  powerIteration,
  preconditionedHvp,
  preconditionedSharpness,
  stabilityThreshold,
} from '../../src/measure/hessian.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { Rng } from '../../src/rng/rng.js';
import { mulberry32, randomBatch, uniformArray } from '../helpers/reference-model.js';

const toDispose: { dispose(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(toDispose.map((e) => e.dispose()));
});

/** Row-major n × n matrix as an HvpFn. */
function matrixHvp(a: Float64Array, n: number): HvpFn {
  return async (v) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += (a[i * n + j] as number) * (v[j] as number);
      out[i] = s;
    }
    return out;
  };
}

/** A random orthogonal n × n matrix (columns: Gram–Schmidt, twice, of Gaussian vectors). */
function randomOrthogonal(n: number, seed: number): Float64Array[] {
  const rng = Rng.fromSeed(seed);
  const cols: Float64Array[] = [];
  for (let c = 0; c < n; c++) {
    const v = rng.fillNormal(new Float64Array(n));
    for (let pass = 0; pass < 2; pass++) {
      for (const q of cols) {
        const d = dot(q, v);
        for (let i = 0; i < n; i++) v[i] = (v[i] as number) - d * (q[i] as number);
      }
    }
    const nv = Math.sqrt(dot(v, v));
    cols.push(v.map((x) => x / nv));
  }
  return cols;
}

/** Q diag(values) Qᵀ with Q's columns `q`. */
function fromSpectrum(values: readonly number[], q: Float64Array[]): Float64Array {
  const n = values.length;
  const a = new Float64Array(n * n);
  values.forEach((l, k) => {
    const u = q[k] as Float64Array;
    for (let i = 0; i < n; i++)
      for (let j = 0; j < n; j++)
        a[i * n + j] = (a[i * n + j] as number) + l * (u[i] as number) * (u[j] as number);
  });
  return a;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

/** Eigenvalues of a row-major n × n matrix by mathjs (real parts), largest first. */
function mathEigs(a: ArrayLike<number>, n: number): number[] {
  const rows = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => a[i * n + j] as number),
  );
  const { values } = eigs(rows, { eigenvectors: false });
  return (values as unknown as number[]).map(Number).sort((x, y) => y - x);
}

/** The full Hessian, column by column, from an HvpFn (n products on the unit vectors). */
async function fullMatrix(hvp: HvpFn, n: number): Promise<Float64Array> {
  const a = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    const e = new Float64Array(n);
    e[j] = 1;
    const col = await hvp(e);
    for (let i = 0; i < n; i++) a[i * n + j] = col[i] as number;
  }
  return a;
}

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] as number));
  return m;
};

describe('power iteration and Lanczos on explicit matrices', () => {
  // Spectrum 10, 5, then 38 values in [−3, 4]: ratio r = |λ₂/λ₁| = 0.5.
  const n = 40;
  const tail = Array.from({ length: n - 2 }, (_, i) => -3 + (7 * i) / (n - 3));
  const spectrum = [10, 5, ...tail];
  const q = randomOrthogonal(n, 11);
  const hvp = matrixHvp(fromSpectrum(spectrum, q), n);

  test('power iteration with the METHODS defaults stops within tol·λ/(1 − r²) of the top eigenvalue', async () => {
    const r = await powerIteration(hvp, n);
    expect(r.converged).toBe(true);
    expect(r.iterations).toBeLessThan(100);
    // The Rayleigh quotient's error decays by r² = 0.25 per step; a change below 1e-3·λ leaves at most
    // 1e-3·λ/(1 − r²) ≈ 0.0133 (a geometric tail).
    expect(Math.abs(r.eigenvalue - 10)).toBeLessThan((1e-3 * 10) / (1 - 0.25));
    expect(r.eigenvalue).toBeLessThanOrEqual(10 + 1e-12); // a Rayleigh quotient never exceeds λ_max
  });

  test('power iteration to tol 1e-13 gives λ₁ to 1e-10 and its eigenvector', async () => {
    const r = await powerIteration(hvp, n, { tol: 1e-13, iterations: 200 });
    expect(r.converged).toBe(true);
    expect(Math.abs(r.eigenvalue - 10)).toBeLessThan(1e-10);
    expect(Math.abs(Math.abs(dot(r.vector, q[0] as Float64Array)) - 1)).toBeLessThan(1e-10);
    expect(r.residual).toBeLessThan(1e-4);
  });

  test('power iteration returns the eigenvalue of largest magnitude, with its sign', async () => {
    const h = matrixHvp(fromSpectrum([-12, 6, ...tail], q), n);
    const r = await powerIteration(h, n, { tol: 1e-13, iterations: 200 });
    expect(r.eigenvalue).toBeCloseTo(-12, 10);
  });

  test('power iteration stops at the iteration limit with converged false', async () => {
    // Ratio 9.9/10: 3 iterations cannot reach a relative change of 1e-12.
    const h = matrixHvp(fromSpectrum([10, 9.9, ...tail], q), n);
    const r = await powerIteration(h, n, { tol: 1e-12, iterations: 3 });
    expect(r).toMatchObject({ converged: false, iterations: 3 });
  });

  test('Lanczos top-3 of a rotated known spectrum: error within its residual bound, < 1e-9', async () => {
    const m = 80;
    const spec = [10, 9.5, 9, ...Array.from({ length: m - 3 }, (_, i) => -3 + (9 * i) / (m - 4))];
    const qq = randomOrthogonal(m, 12);
    const r = await lanczos(matrixHvp(fromSpectrum(spec, qq), m), m, {
      k: 3,
      steps: 60,
      tol: 1e-12,
      vectors: true,
    });
    expect(r.converged).toBe(true);
    expect(r.steps).toBeLessThan(60);
    expect(r.restarts).toBe(0);
    [10, 9.5, 9].forEach((l, i) => {
      const err = Math.abs((r.values[i] as number) - l);
      expect(err).toBeLessThan(1e-9);
      expect(err).toBeLessThanOrEqual((r.residuals[i] as number) + 1e-13);
      // Ritz vector = eigenvector up to sign; angle error ≲ residual / gap (gap 0.5).
      expect(1 - Math.abs(dot(r.vectors[i] as Float64Array, qq[i] as Float64Array))).toBeLessThan(1e-9);
    });
  });

  test('Lanczos agrees with power iteration and with mathjs on the 40 × 40 matrix', async () => {
    const r = await lanczos(hvp, n, { k: 2, steps: 30, tol: 1e-10 });
    expect(r.values[0]).toBeCloseTo(10, 10);
    expect(r.values[1]).toBeCloseTo(5, 10);
    const all = mathEigs(fromSpectrum(spectrum, q), n);
    expect(Math.abs((r.values[0] as number) - (all[0] as number))).toBeLessThan(1e-9);
  });

  test('steps ≥ dim: repeated eigenvalues are all found (restart after each breakdown)', async () => {
    const spec = [4, 4, 4, 1, 0, -2];
    const r = await lanczos(matrixHvp(fromSpectrum(spec, randomOrthogonal(6, 3)), 6), 6, { k: 6, steps: 20 });
    expect(r.steps).toBe(6);
    expect(r.restarts).toBeGreaterThanOrEqual(2); // a Krylov space holds one vector of the 4-eigenspace
    expect(r.converged).toBe(true);
    Array.from(r.values).forEach((v, i) => {
      expect(Math.abs(v - (spec[i] as number))).toBeLessThan(1e-12);
    });
  });

  test('rank-deficient H = 5 u₁u₁ᵀ + 2 u₂u₂ᵀ: breakdown at step 3, top-3 = 5, 2, 0', async () => {
    const m = 30;
    const qq = randomOrthogonal(m, 5);
    const h = matrixHvp(fromSpectrum([5, 2, ...new Array(m - 2).fill(0)], qq), m);
    const r = await lanczos(h, m, { k: 3, steps: 10 });
    expect(r.restarts).toBeGreaterThanOrEqual(1);
    expect(r.steps).toBe(10); // after a breakdown every step runs
    expect(Math.abs((r.values[0] as number) - 5)).toBeLessThan(1e-12);
    expect(Math.abs((r.values[1] as number) - 2)).toBeLessThan(1e-12);
    expect(Math.abs(r.values[2] as number)).toBeLessThan(1e-12);
    // Power iteration on it: after one product v lies in span(u₁, u₂), ratio 0.4.
    const p = await powerIteration(h, m, { tol: 1e-13, iterations: 100 });
    expect(p.eigenvalue).toBeCloseTo(5, 11);
  });

  test('the zero operator: an exact breakdown at every step gives zeros, not NaN', async () => {
    const zero: HvpFn = async (v) => new Float64Array(v.length);
    const r = await lanczos(zero, 5, { k: 2, steps: 8 });
    expect(Array.from(r.values)).toEqual([0, 0]);
    expect(r).toMatchObject({ steps: 5, restarts: 4, converged: true });
    expect(await powerIteration(zero, 5)).toMatchObject({ eigenvalue: 0, iterations: 1, converged: true });
  });

  test('dim 1 and k > dim: as many values as the dimension', async () => {
    const one = await lanczos(async (v) => v.map((x) => 3 * x), 1, { k: 2, steps: 5 });
    expect(Array.from(one.values)).toEqual([3]);
    expect(one.steps).toBe(1);
    expect((await powerIteration(async (v) => v.map((x) => 3 * x), 1)).eigenvalue).toBe(3);
    const two = await lanczos(matrixHvp(Float64Array.from([2, 1, 1, 2]), 2), 2, { k: 3, steps: 4 });
    expect(two.values.length).toBe(2);
    expect(two.values[0]).toBeCloseTo(3, 14);
    expect(two.values[1]).toBeCloseTo(1, 14);
  });

  test('the same seed gives the same numbers; another seed another start', async () => {
    const a = await lanczos(hvp, n, { k: 2, steps: 8, tol: 0, seed: 7 });
    const b = await lanczos(hvp, n, { k: 2, steps: 8, tol: 0, seed: 7 });
    const c = await lanczos(hvp, n, { k: 2, steps: 8, tol: 0, seed: 8 });
    expect(Array.from(a.values)).toEqual(Array.from(b.values));
    expect(a.values[1]).not.toBe(c.values[1]);
    const p = await powerIteration(hvp, n, { seed: 7, iterations: 3, tol: 0 });
    const p2 = await powerIteration(hvp, n, { seed: 7, iterations: 3, tol: 0 });
    const p3 = await powerIteration(hvp, n, { seed: 9, iterations: 3, tol: 0 });
    expect(Array.from(p.vector)).toEqual(Array.from(p2.vector));
    expect(p.eigenvalue).not.toBe(p3.eigenvalue);
  });

  test('bad arguments and operators of the wrong size are rejected', async () => {
    await expect(lanczos(hvp, n, { k: 5, steps: 4 })).rejects.toThrow('steps must be an integer ≥ k = 5');
    await expect(lanczos(hvp, 0)).rejects.toThrow('dim must be a positive integer');
    await expect(powerIteration(hvp, n + 1)).rejects.toThrow('the operator returned 40 values, expected 41');
    await expect(hutchinsonTrace(hvp, n, { probes: 0 })).rejects.toThrow('probes must be a positive integer');
  });
});

describe('Hutchinson trace', () => {
  test('a diagonal matrix gives its trace exactly (zᵀDz = tr D for ±1 entries); probes are balanced ±1', async () => {
    const n = 64;
    const d = Float64Array.from({ length: n }, (_, i) => (i % 7) - 2.5);
    const seen: Float64Array[] = [];
    const r = await hutchinsonTrace(
      async (v) => {
        seen.push(v);
        return v.map((x, i) => x * (d[i] as number));
      },
      n,
      { probes: 100, seed: 3 },
    );
    const trace = d.reduce((s, x) => s + x, 0);
    expect(r.mean).toBe(trace);
    expect(r.stderr).toBe(0);
    expect(r.probes).toBe(100);
    const entries = seen.flatMap((v) => Array.from(v));
    expect(entries.every((x) => x === 1 || x === -1)).toBe(true);
    const plus = entries.filter((x) => x === 1).length / entries.length;
    expect(Math.abs(plus - 0.5)).toBeLessThan(0.02); // 6400 fair signs: sd 0.00625
    expect(new Set(seen.map((v) => v.join())).size).toBe(100);
  });

  test('rotated spectrum: mean within 3 stderr of the trace, stderr ≈ sqrt(2 Σ_{i≠j} A_ij² / m)', async () => {
    const n = 20;
    const spec = Array.from({ length: n }, (_, i) => 3 - 0.4 * i);
    const a = fromSpectrum(spec, randomOrthogonal(n, 8));
    const m = 2000;
    const r = await hutchinsonTrace(matrixHvp(a, n), n, { probes: m, seed: 1 });
    const trace = spec.reduce((s, x) => s + x, 0);
    expect(Math.abs(r.mean - trace)).toBeLessThan(3 * r.stderr);
    let off = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) off += (a[i * n + j] as number) ** 2;
    const theory = Math.sqrt((2 * off) / m);
    // The sample sd of 2000 draws is within ~5% of the true sd (zᵀAz has light tails here).
    expect(Math.abs(r.stderr / theory - 1)).toBeLessThan(0.1);
    const again = await hutchinsonTrace(matrixHvp(a, n), n, { probes: m, seed: 1 });
    expect(again.mean).toBe(r.mean);
  });
});

describe('deep linear chain with one unit per layer (METHODS.md §7), f(x) = θ₃θ₂θ₁θ₀ x', () => {
  // L = (1/B) Σ_b ½ (P x_b − y_b)², P = ∏ θ_i. With P₋ᵢ = ∏_{j≠i} θ_j and r_b = P x_b − y_b:
  //   ∂L/∂θ_i = mean_b r_b x_b P₋ᵢ,
  //   ∂²L/∂θ_i∂θ_j = mean_b [x_b² P₋ᵢ P₋ⱼ + (i ≠ j) r_b x_b P₋ᵢⱼ].
  const without = (theta: readonly number[], ...skip: number[]) =>
    theta.reduce((p, t, i) => (skip.includes(i) ? p : p * t), 1);
  const chainGradient = (theta: number[], xs: number[], ys: number[]) =>
    theta.map((_, i) => {
      let s = 0;
      xs.forEach((x, b) => {
        s += (without(theta) * x - (ys[b] as number)) * x * without(theta, i);
      });
      return s / xs.length;
    });
  const chainHessian = (theta: number[], xs: number[], ys: number[]) => {
    const d = theta.length;
    const h = new Float64Array(d * d);
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        let s = 0;
        xs.forEach((x, b) => {
          const r = without(theta) * x - (ys[b] as number);
          s += x * x * without(theta, i) * without(theta, j) + (i === j ? 0 : r * x * without(theta, i, j));
        });
        h[i * d + j] = s / xs.length;
      }
    return h;
  };

  const depth = 3;
  const dim = depth + 1; // dense0 = uᵀ (one input), then `depth` scalar layers
  const model = modelGraphSpec({ kind: 'deep-linear-chain', depth }, 1, 1, 'mse');
  const theta = [0.9, -1.3, 0.7, 1.6];
  const xs = [0.5, -1.2, 2.0];
  const ys = [0.3, 0.8, -1.1];
  const batch: Batch = { x: Float32Array.from(xs), y: Float32Array.from(ys), size: xs.length };
  const jobs64 = new OrtJobs(model, { kind: 'sgd', lr: 0.1 }, 1, 'float64');
  toDispose.push(jobs64);
  /** The real graph's HVP in float64 on a fixed batch. */
  const graphHvp =
    (params: number[], x: number[], y: number[]): HvpFn =>
    async (v) =>
      Float64Array.from(
        await jobs64.hvp(Float64Array.from(params), Float64Array.from(x), Float64Array.from(y), x.length, v),
      );

  test('the analytic Hessian equals central differences of the analytic gradient', () => {
    const h = chainHessian(theta, xs, ys);
    const eps = 1e-5;
    for (let j = 0; j < dim; j++) {
      const plus = chainGradient(
        theta.map((t, k) => (k === j ? t + eps : t)),
        xs,
        ys,
      );
      const minus = chainGradient(
        theta.map((t, k) => (k === j ? t - eps : t)),
        xs,
        ys,
      );
      for (let i = 0; i < dim; i++) {
        // Central differences: truncation ~eps² · |∂³L| ≈ 1e-10 · 10, rounding ~1e-16/eps.
        expect(
          Math.abs(((plus[i] as number) - (minus[i] as number)) / (2 * eps) - (h[i * dim + j] as number)),
        ).toBeLessThan(1e-8);
      }
    }
  });

  test('the model graph has the analytic Hessian (float64 graph to 1e-12, float32 engine to 1e-5)', async () => {
    const h = chainHessian(theta, xs, ys);
    const scale = maxAbs(h);
    const g64 = await fullMatrix(graphHvp(theta, xs, ys), dim);
    expect(maxAbs(g64.map((x, i) => x - (h[i] as number))) / scale).toBeLessThan(1e-12);
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    toDispose.push(engine);
    const g32 = await fullMatrix(engineHvp(engine, Float32Array.from(theta), batch), dim);
    expect(maxAbs(g32.map((x, i) => x - (h[i] as number))) / scale).toBeLessThan(1e-5);
  });

  test('Lanczos and power iteration on the graph give the analytic Hessian eigenvalues', async () => {
    const exact = mathEigs(chainHessian(theta, xs, ys), dim);
    const r = await lanczos(graphHvp(theta, xs, ys), dim, { k: dim, steps: dim });
    expect(r.steps).toBe(dim);
    exact.forEach((l, i) => {
      expect(Math.abs((r.values[i] as number) - l)).toBeLessThan(1e-10 * Math.abs(exact[0] as number));
    });
    const p = await powerIteration(graphHvp(theta, xs, ys), dim, { tol: 1e-14, iterations: 1000 });
    const top = exact.reduce((a, b) => (Math.abs(b) > Math.abs(a) ? b : a));
    expect(Math.abs(p.eigenvalue - top)).toBeLessThan(1e-9 * Math.abs(top));
  });

  test('at an interpolating point the Hessian is x² p pᵀ: sharpness x² Σᵢ P₋ᵢ², the rest 0', async () => {
    // One example with y = P x: r = 0, so H = x² p pᵀ with p_i = P₋ᵢ (rank one).
    const x = 1.5;
    const y = without(theta) * x;
    const sharp = x * x * theta.reduce((s, _, i) => s + without(theta, i) ** 2, 0);
    const hvp = graphHvp(theta, [x], [y]);
    const r = await lanczos(hvp, dim, { k: 2, steps: dim });
    expect(r.restarts).toBeGreaterThanOrEqual(1); // the Krylov space of a rank-one H is 2-D
    expect(Math.abs((r.values[0] as number) - sharp) / sharp).toBeLessThan(1e-13);
    expect(Math.abs(r.values[1] as number)).toBeLessThan(1e-12 * sharp);
    const p = await powerIteration(hvp, dim);
    // The first product maps any v onto p, the second gives λ exactly, the third confirms it.
    expect(p.iterations).toBe(3);
    expect(Math.abs(p.eigenvalue - sharp) / sharp).toBeLessThan(1e-13);
  });
});

describe('a small MLP through the ORT engine (float32 HVPs)', async () => {
  const model = modelGraphSpec({ kind: 'mlp', hidden: [6], activation: 'tanh' }, 3, 3, 'cross-entropy');
  const dim = model.layout.size; // 3·6 + 6 + 6·3 + 3 = 45
  const rand = mulberry32(21);
  const params = uniformArray(rand, dim, -1.2, 1.2);
  const b1 = randomBatch(model, 16, rand);
  const b2 = randomBatch(model, 8, rand);
  const engine: Engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
  toDispose.push(engine);
  const hvp = engineHvp(engine, params, [b1, b2]);
  const full = await fullMatrix(hvp, dim);
  const scale = maxAbs(full);
  const sym = full.map((_, k) => {
    const i = Math.floor(k / dim);
    const j = k % dim;
    return ((full[i * dim + j] as number) + (full[j * dim + i] as number)) / 2;
  });
  const exact = mathEigs(sym, dim);
  const top = exact[0] as number;

  test('two batches average their HVPs by size: equal to one batch of all 24 examples', async () => {
    const both: Batch = {
      x: Float32Array.from([...b1.x, ...b2.x]),
      y: Float32Array.from([...b1.y, ...b2.y]),
      size: 24,
    };
    const v = Float64Array.from(uniformArray(rand, dim));
    const a = await hvp(v);
    const b = await engineHvp(engine, params, both)(v);
    expect(maxAbs(a.map((x, i) => x - (b[i] as number))) / maxAbs(b)).toBeLessThan(1e-5);
    // The float32 Hessian built column by column is symmetric to float32 rounding.
    expect(maxAbs(full.map((x, k) => x - (sym[k] as number))) / scale).toBeLessThan(1e-5);
    expect(dim).toBe(45);
  });

  test('Lanczos top-3 and power iteration agree with the eigenvalues of the full Hessian', async () => {
    // The engine's float32 products differ from the symmetrized full matrix by E with ‖E‖ ~ 1e-7·‖H‖
    // (observed Ritz errors: ~1.5e-8·λ₁); Ritz values move by at most ‖E‖, so 1e-6·λ₁ is a 10× margin
    // that still catches a wrong weighting, a missing reorthogonalization or a lost eigenvalue.
    const r = await lanczos(hvp, dim, { k: 3, steps: 30, tol: 1e-6 });
    for (let i = 0; i < 3; i++) {
      expect(Math.abs((r.values[i] as number) - (exact[i] as number))).toBeLessThan(1e-6 * top);
    }
    const ratio = Math.abs(exact[1] as number) / top;
    const p = await powerIteration(hvp, dim, { tol: 1e-7, iterations: 1000 });
    expect(p.converged).toBe(true);
    expect(Math.abs(p.eigenvalue - top)).toBeLessThan(1e-6 * top + (1e-7 * top) / (1 - ratio * ratio));
  });

  test('Hutchinson mean over 300 probes is within 3 stderr of the exact trace', async () => {
    let trace = 0;
    for (let i = 0; i < dim; i++) trace += full[i * dim + i] as number;
    const r = await hutchinsonTrace(hvp, dim, { probes: 300, seed: 4 });
    expect(r.stderr).toBeGreaterThan(0);
    expect(Math.abs(r.mean - trace)).toBeLessThan(3 * r.stderr);
  });

  test("Adam's preconditioner after one step is |g| + ε; preconditioned sharpness = λ_max(P⁻¹H)", async () => {
    const opt: OptimizerSpec = { kind: 'adam', lr: 0.01 };
    const adam = await createOrtEngine(model, { optimizer: opt });
    toDispose.push(adam);
    const state = { params: Float32Array.from(params), opt: adam.initOptimizerState() };
    const { grad } = await adam.gradient(params, b1);
    await adam.trainStep(state, b1, 0.01);
    // After one step v = (1 − β₂) g², so v̂ = g² and P = |g| + ε (float32 v: relative error ~1e-7).
    const p = adamPreconditioner(state.opt, opt);
    p.forEach((x, i) => {
      const g = Math.abs(grad[i] as number) + 1e-8;
      expect(Math.abs(x - g)).toBeLessThan(1e-6 * g + 1e-12);
    });
    // λ_max(P⁻¹H) at the new point from the full Hessian, against Lanczos on P^{-1/2} H P^{-1/2}.
    const h = engineHvp(adam, state.params, b1);
    const hm = await fullMatrix(h, dim);
    // P⁻¹H has the eigenvalues of the symmetric P^{-1/2} H P^{-1/2}; H is symmetrized first (the
    // float32 HVP columns are symmetric only to rounding, and a non-symmetric P⁻¹H can have complex
    // eigenvalue pairs, which mathjs returns as complex numbers that do not sort).
    const at = (i: number, j: number) => ((hm[i * dim + j] as number) + (hm[j * dim + i] as number)) / 2;
    const scale = (i: number) => Math.sqrt(p[i] as number);
    const ph = hm.map((_, k) => {
      const [i, j] = [Math.floor(k / dim), k % dim];
      return at(i, j) / (scale(i) * scale(j));
    });
    const want = mathEigs(ph, dim)[0] as number;
    const got = await preconditionedSharpness(h, p, { steps: 40, tol: 1e-7 });
    expect(Math.abs((got.values[0] as number) - want)).toBeLessThan(1e-6 * Math.abs(want));
    // P⁻¹ rescales the spectrum a lot here (λ_max(H) ≈ 1, λ_max(P⁻¹H) ≈ 24): a missing P would show.
    expect(want).toBeGreaterThan(5 * (mathEigs(hm, dim)[0] as number));
    expect(() => adamPreconditioner(adam.initOptimizerState(), opt)).toThrow('no update');
    expect(() => adamPreconditioner(state.opt, { kind: 'sgd', lr: 0.1 })).toThrow('adam or adamw');
  });
});

describe('preconditioned sharpness on explicit matrices', () => {
  const n = 5;
  const h = fromSpectrum([4, 2.5, 1, -0.5, -3], randomOrthogonal(n, 9));
  const p = [0.2, 1.5, 0.05, 3, 0.7];

  test('equals the top eigenvalue of P⁻¹H computed directly (mathjs, non-symmetric)', async () => {
    const pinvH = h.map((x, k) => x / (p[Math.floor(k / n)] as number));
    const direct = mathEigs(pinvH, n);
    const r = await preconditionedSharpness(matrixHvp(h, n), p, { k: 3, steps: n });
    for (let i = 0; i < 3; i++)
      expect(Math.abs((r.values[i] as number) - (direct[i] as number))).toBeLessThan(1e-10);
    // and differs from the plain sharpness 4: the test would notice a missing preconditioner
    expect(Math.abs((r.values[0] as number) - 4)).toBeGreaterThan(1);
    expect(() => preconditionedHvp(matrixHvp(h, n), [1, 0, 1, 1, 1])).toThrow('P must be positive');
  });

  test('frozen-preconditioner Adam is stable just below (2 + 2β₁)/((1 − β₁)η) and unstable just above', async () => {
    // m ← β₁ m + (1 − β₁) H θ, θ ← θ − η P⁻¹ m on L = ½ θᵀHθ with H PSD (spectrum ≥ 0).
    const hp = fromSpectrum([4, 2.5, 1, 0.5, 0.1], randomOrthogonal(n, 10));
    const hvp = matrixHvp(hp, n);
    const lam = (await preconditionedSharpness(hvp, p, { steps: n })).values[0] as number;
    const beta1 = 0.9;
    // The η at which the threshold equals the preconditioned sharpness.
    const critical = stabilityThreshold({ kind: 'adam', lr: 1, beta1 }) / lam;
    const run = async (eta: number) => {
      let theta = new Float64Array(n).fill(1);
      let m = new Float64Array(n);
      for (let t = 0; t < 400; t++) {
        const g = await hvp(theta);
        m = m.map((x, i) => beta1 * x + (1 - beta1) * (g[i] as number));
        theta = theta.map((x, i) => x - (eta * (m[i] as number)) / (p[i] as number));
      }
      return Math.sqrt(dot(theta, theta));
    };
    expect(await run(0.97 * critical)).toBeLessThan(1e-2);
    expect(await run(1.03 * critical)).toBeGreaterThan(1e2);
  });
});

describe('stability thresholds', () => {
  test('closed forms', () => {
    expect(stabilityThreshold({ kind: 'sgd', lr: 0.1 })).toBeCloseTo(20, 12);
    expect(stabilityThreshold({ kind: 'sgd', lr: 0.01, momentum: 0.9 })).toBeCloseTo(380, 10);
    expect(stabilityThreshold({ kind: 'sgd', lr: 0.01, momentum: 0.9, dampening: 0.5 })).toBeCloseTo(760, 10);
    expect(stabilityThreshold({ kind: 'sgd', lr: 0.01, momentum: 0.9, nesterov: true })).toBeCloseTo(
      3.8 / 2.8 / 0.01,
      10,
    );
    expect(stabilityThreshold({ kind: 'adam', lr: 1e-3 })).toBeCloseTo(38_000, 8); // 38/η (Cohen 2022)
    expect(stabilityThreshold({ kind: 'adamw', lr: 0.1, beta1: 0.8 })).toBeCloseTo(3.6 / 0.2 / 0.1, 10);
    expect(stabilityThreshold({ kind: 'sgd', lr: 0.1 }, 0.5)).toBeCloseTo(4, 12);
    expect(() => stabilityThreshold({ kind: 'sgd', lr: 0.1 }, 0)).toThrow('lr must be positive');
  });

  // The real optimizer (the ORT engine's PyTorch update equations) on L = ½ mean (w x − y)² with x = 2,
  // y = 0: H = 4, the sharpness. Just below the critical lr the weight decays, just above it grows.
  const linear = modelGraphSpec({ kind: 'linear', bias: false }, 1, 1, 'mse');
  const batch: Batch = { x: Float32Array.of(2), y: Float32Array.of(0), size: 1 };
  const optimizers: [string, OptimizerSpec][] = [
    ['gradient descent', { kind: 'sgd', lr: 1 }],
    ['heavy-ball momentum', { kind: 'sgd', lr: 1, momentum: 0.9 }],
    ['momentum with dampening', { kind: 'sgd', lr: 1, momentum: 0.5, dampening: 0.3 }],
    ['Nesterov', { kind: 'sgd', lr: 1, momentum: 0.9, nesterov: true }],
  ];
  test.each(optimizers)('%s: the engine diverges exactly across the threshold', async (_name, opt) => {
    const engine = await createOrtEngine(linear, { optimizer: opt });
    toDispose.push(engine);
    const sharp = (await powerIteration(engineHvp(engine, Float32Array.of(0.7), batch), 1)).eigenvalue;
    expect(sharp).toBeCloseTo(4, 6);
    // threshold(lr) = c / lr, so sharpness = threshold at lr* = threshold(1) / sharpness.
    const critical = stabilityThreshold(opt, 1) / sharp;
    const final = async (lr: number) => {
      const state = { params: Float32Array.of(1), opt: engine.initOptimizerState() };
      for (let t = 0; t < 300; t++) {
        await engine.trainStep(state, batch, lr);
        if (!(Math.abs(state.params[0] as number) < 1e6)) break; // stop before float32 overflows
      }
      return Math.abs(state.params[0] as number);
    };
    expect(await final(0.95 * critical)).toBeLessThan(1e-3);
    expect(await final(1.05 * critical)).toBeGreaterThan(1e3);
  });
});
