import { afterAll, describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import type { Engine } from '../../src/engine/types.js';
import {
  alphaGrid,
  barrier,
  interpolate,
  interpolationCurve,
  linearlyConnected,
} from '../../src/measure/barrier.js';
import type { LossKind } from '../../src/model/graph.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { mulberry32, randomBatch, uniformArray } from '../helpers/reference-model.js';

const f32 = (xs: number[]) => Float32Array.from(xs);

describe('interpolate', () => {
  test('endpoints are exact and interior points are float64 then rounded once', () => {
    const rand = mulberry32(3);
    const a = uniformArray(rand, 257, -3, 3);
    const b = uniformArray(rand, 257, -3, 3);
    expect(interpolate(a, b, 0)).toEqual(a);
    expect(interpolate(a, b, 1)).toEqual(b);
    for (const alpha of [0.1, 0.37, 0.5, -0.5, 1.5]) {
      const t = interpolate(a, b, alpha);
      for (let i = 0; i < a.length; i++) {
        expect(t[i]).toBe(Math.fround((1 - alpha) * (a[i] as number) + alpha * (b[i] as number)));
      }
    }
    expect(Array.from(interpolate(f32([1, -2]), f32([3, 2]), 0.25))).toEqual([1.5, -1]);
  });

  test('errors', () => {
    expect(() => interpolate(f32([1, 2]), f32([1]), 0.5)).toThrow(/a has 2, b has 1/);
    expect(() => interpolate(f32([1]), f32([1]), Number.NaN)).toThrow(/alpha must be finite/);
  });
});

describe('alphaGrid', () => {
  test('11 points by default, 0..1 inclusive', () => {
    expect(alphaGrid()).toEqual([0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1]);
    expect(alphaGrid(2)).toEqual([0, 1]);
    expect(alphaGrid(5)).toEqual([0, 0.25, 0.5, 0.75, 1]);
    const g = alphaGrid(7);
    expect(g[0]).toBe(0);
    expect(g[6]).toBe(1);
  });

  test('rejects fewer than 2 or fractional points', () => {
    expect(() => alphaGrid(1)).toThrow(/integer >= 2, got 1/);
    expect(() => alphaGrid(2.5)).toThrow(/got 2.5/);
  });
});

describe('barrier', () => {
  const grid = alphaGrid();
  const curve = (f: (a: number) => number) => grid.map(f);

  test('L(α) = 4α(1−α) + α = 5α − 4α² on the 11-point grid', () => {
    // Continuous max at α = 5/8; on the grid L(0.6) = 1.56 > L(0.7) = 1.54. L(0) = 0, L(1) = 1.
    const L = curve((a) => 4 * a * (1 - a) + a);
    const lin = barrier(L, grid);
    expect(lin.alphaStar).toBe(0.6);
    // Linear (Kwok et al.): 1.56 − [(1 − 0.6)·0 + 0.6·1] = 0.96.
    expect(lin.value).toBeCloseTo(0.96, 14);
    // Midpoint-mean (Frankle et al.): 1.56 − ½(0 + 1) = 1.06.
    const mid = barrier(L, grid, 'midpoint-mean');
    expect(mid.alphaStar).toBe(0.6);
    expect(mid.value).toBeCloseTo(1.06, 14);
    expect(barrier(L, grid, 'linear')).toEqual(lin);
  });

  test('conventions agree when the endpoints are equal', () => {
    // L(α) = 1 + 4α(1−α): peak 2 at α = 0.5, L(0) = L(1) = 1 → barrier 1 in both.
    const L = curve((a) => 1 + 4 * a * (1 - a));
    expect(barrier(L, grid)).toEqual({ value: 1, alphaStar: 0.5 });
    expect(barrier(L, grid, 'midpoint-mean')).toEqual({ value: 1, alphaStar: 0.5 });
  });

  test('a monotone curve: no linear barrier, but a midpoint-mean one', () => {
    // L(α) = 2 + 3α: α* = 1, linear B = 5 − 5 = 0; midpoint-mean B = 5 − ½(2 + 5) = 1.5.
    const L = curve((a) => 2 + 3 * a);
    expect(barrier(L, grid)).toEqual({ value: 0, alphaStar: 1 });
    expect(barrier(L, grid, 'midpoint-mean')).toEqual({ value: 1.5, alphaStar: 1 });
    // Decreasing: α* = 0, linear 0, midpoint-mean 5 − 3.5 = 1.5.
    const D = curve((a) => 5 - 3 * a);
    expect(barrier(D, grid)).toEqual({ value: 0, alphaStar: 0 });
    expect(barrier(D, grid, 'midpoint-mean')).toEqual({ value: 1.5, alphaStar: 0 });
  });

  test('convex curve: negative barrier below the chord is reported as is', () => {
    // L(α) = (α − ½)² + ¼α: L(0) = 0.25, L(1) = 0.5, max at α = 1 → linear 0; midpoint 0.5 − 0.375.
    const L = curve((a) => (a - 0.5) ** 2 + 0.25 * a);
    expect(barrier(L, grid)).toEqual({ value: 0, alphaStar: 1 });
    expect(barrier(L, grid, 'midpoint-mean').value).toBeCloseTo(0.125, 15);
  });

  test('non-uniform grid, ties take the first maximum', () => {
    const alphas = [0, 0.25, 0.3, 1];
    // max 3 at α = 0.25 and 0.3 → α* = 0.25; linear B = 3 − (0.75·1 + 0.25·2) = 1.75.
    expect(barrier([1, 3, 3, 2], alphas)).toEqual({ value: 1.75, alphaStar: 0.25 });
    expect(barrier([1, 3, 3, 2], alphas, 'midpoint-mean')).toEqual({ value: 1.5, alphaStar: 0.25 });
  });

  test('NaN values (mse error curves) give NaN', () => {
    const r = barrier([Number.NaN, Number.NaN], [0, 1]);
    expect(r.value).toBeNaN();
    expect(r.alphaStar).toBeNaN();
  });

  test('errors', () => {
    expect(() => barrier([1, 2, 3], [0, 1])).toThrow(/3 values but 2 alphas/);
    expect(() => barrier([1], [0])).toThrow(/at least 2 points/);
    expect(() => barrier([1, 2], [0, 0.9])).toThrow(/must run from 0 to 1/);
    expect(() => barrier([1, 2], [0, 1], 'max' as never)).toThrow(/unknown convention 'max'/);
  });
});

describe('linearlyConnected', () => {
  test('threshold 2 percentage points', () => {
    expect(linearlyConnected(0.019)).toBe(true);
    expect(linearlyConnected(-0.01)).toBe(true);
    expect(linearlyConnected(0.02)).toBe(false);
    expect(linearlyConnected(0.5)).toBe(false);
    expect(linearlyConnected(Number.NaN)).toBe(false);
    expect(linearlyConnected(0.04, 0.05)).toBe(true);
  });
});

describe('interpolationCurve with the ORT engine', () => {
  const engines: Engine[] = [];
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.dispose()));
  });

  async function setup(spec: ModelSpec, inDim: number, outDim: number, loss: LossKind, n: number) {
    const model = modelGraphSpec(spec, inDim, outDim, loss);
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    engines.push(engine);
    const rand = mulberry32(11);
    const a = uniformArray(rand, model.layout.size, -1, 1);
    const b = uniformArray(rand, model.layout.size, -1, 1);
    const batch = randomBatch(model, n, rand);
    return { engine, a, b, data: { x: batch.x, y: batch.y, n } };
  }

  test('MLP, cross-entropy: endpoints equal evaluate at a and b exactly; error = 1 − correct/count', async () => {
    const { engine, a, b, data } = await setup(
      { kind: 'mlp', hidden: [8], activation: 'tanh' },
      4,
      3,
      'cross-entropy',
      50,
    );
    const c = await interpolationCurve(engine, a, b, data);
    expect(c.alphas).toEqual(alphaGrid());
    expect(c.loss).toHaveLength(11);
    expect(c.error).toHaveLength(11);
    const ea = await engine.evaluate(a, data.x, data.y, data.n);
    const eb = await engine.evaluate(b, data.x, data.y, data.n);
    expect(c.loss[0]).toBe(ea.loss);
    expect(c.loss[10]).toBe(eb.loss);
    expect(c.error[0]).toBe(1 - ea.correct / ea.count);
    expect(c.error[10]).toBe(1 - eb.correct / eb.count);
    const emid = await engine.evaluate(interpolate(a, b, 0.5), data.x, data.y, data.n);
    expect(c.loss[5]).toBe(emid.loss);
    for (const e of c.error) {
      expect(e).toBeGreaterThanOrEqual(0);
      expect(e).toBeLessThanOrEqual(1);
      expect(Number.isInteger(Math.round((1 - e) * 50 * 1e6) / 1e6)).toBe(true); // k/50
    }
    // A barrier on the curve is well defined and α* is on the grid.
    const bl = barrier(c.loss, c.alphas);
    expect(c.alphas).toContain(bl.alphaStar);
    expect(bl.value).toBeGreaterThanOrEqual(0);
  });

  test('custom alphas are stored and evaluated in order', async () => {
    const { engine, a, b, data } = await setup(
      { kind: 'mlp', hidden: [4], activation: 'relu' },
      3,
      2,
      'cross-entropy',
      20,
    );
    const alphas = [0, 0.5, 1];
    const c = await interpolationCurve(engine, a, b, data, alphas);
    expect(c.alphas).toEqual(alphas);
    expect(c.alphas).not.toBe(alphas);
    const full = await interpolationCurve(engine, a, b, data, alphaGrid(5));
    expect([full.loss[0], full.loss[2], full.loss[4]]).toEqual(c.loss);
  });

  test('linear model, mse: L(α) is the quadratic through α = 0, ½, 1; error is NaN', async () => {
    const { engine, a, b, data } = await setup({ kind: 'linear' }, 5, 2, 'mse', 64);
    // Residuals are affine in θ and θ(α) is affine in α, so L(α) = ½·mean‖r(α)‖² = c0 + c1 α + c2 α².
    const [l0, lh, l1] = (await interpolationCurve(engine, a, b, data, [0, 0.5, 1])).loss as [
      number,
      number,
      number,
    ];
    const c0 = l0;
    const c2 = 2 * (l0 + l1) - 4 * lh;
    const c1 = l1 - l0 - c2;
    const alphas = [...alphaGrid(), -0.5, 1.5];
    const c = await interpolationCurve(engine, a, b, data, alphas);
    for (const e of c.error) expect(e).toBeNaN();
    const scale = Math.max(...c.loss.map(Math.abs));
    for (let i = 0; i < alphas.length; i++) {
      const t = alphas[i] as number;
      const closed = c0 + c1 * t + c2 * t * t;
      // float32 evaluation (rounded θ(α), float32 sums): agreement to ~1e-6 relative.
      expect(Math.abs((c.loss[i] as number) - closed) / scale).toBeLessThan(1e-5);
    }
    // The quadratic's curvature is ½·mean‖r(1) − r(0)‖² > 0 (two distinct random models).
    expect(c2).toBeGreaterThan(0);
    // Closed-form float64 check of the same curve from the data directly.
    const ref = (t: number) => {
      const th = Float64Array.from(a, (v, i) => (1 - t) * v + t * (b[i] as number));
      let s = 0;
      for (let r = 0; r < data.n; r++) {
        for (let o = 0; o < 2; o++) {
          let z = th[10 + o] as number; // dense0.bias at offset 2·5
          for (let k = 0; k < 5; k++) z += (th[o * 5 + k] as number) * (data.x[r * 5 + k] as number);
          const d = z - (data.y[r * 2 + o] as number);
          s += d * d;
        }
      }
      return (0.5 * s) / data.n;
    };
    for (let i = 0; i < alphas.length; i++) {
      expect(Math.abs((c.loss[i] as number) - ref(alphas[i] as number)) / scale).toBeLessThan(1e-5);
    }
  });

  test('70 alphas (two evaluateMany calls): every point is evaluate of interpolate, bit for bit', async () => {
    const { engine, a, b, data } = await setup({ kind: 'mlp', hidden: [9, 7] }, 5, 4, 'cross-entropy', 90);
    const alphas = Array.from({ length: 70 }, (_, i) => -0.5 + i / 34);
    const c = await interpolationCurve(engine, a, b, data, alphas);
    for (let i = 0; i < alphas.length; i++) {
      const e = await engine.evaluate(interpolate(a, b, alphas[i] as number), data.x, data.y, data.n);
      expect(c.loss[i]).toBe(e.loss);
      expect(c.error[i]).toBe(1 - e.correct / e.count);
    }
  });

  test('rejects parameter vectors of the wrong size', async () => {
    const { engine, a, data } = await setup({ kind: 'linear' }, 2, 1, 'mse', 4);
    await expect(interpolationCurve(engine, a, a.subarray(1), data)).rejects.toThrow(
      /the model has 3 parameters, but a has 3 and b has 2/,
    );
  });
});
