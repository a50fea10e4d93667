import { afterAll, describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { paramsPoint } from '../../src/engine/params-batch.js';
import { createTfjsEngine } from '../../src/engine/tfjs/engine.js';
import type { Engine, ParamsBatch, ParamsCombination } from '../../src/engine/types.js';
import { alphaGrid, interpolationCurve } from '../../src/measure/barrier.js';
import { engineEvaluator, type ParamsEvaluator } from '../../src/measure/sensitivity.js';
import {
  filterNormalize,
  lossLine,
  lossSurface,
  pcaPlane,
  pcaSurface,
  projectOntoPlane,
  randomDirection,
  randomPlaneSurface,
  surfaceAxis,
} from '../../src/measure/surface.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { tensorView } from '../../src/model/layout.js';
import { Rng } from '../../src/rng/rng.js';
import { mulberry32, randomBatch, uniformArray } from '../helpers/reference-model.js';

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));

/** MLP 5-7-6-3 with biases: tensors [7,5], [7], [6,7], [6], [3,6], [3]. */
const model = modelGraphSpec({ kind: 'mlp', hidden: [7, 6] }, 5, 3, 'cross-entropy');
const { layout } = model;

describe('filterNormalize / randomDirection', () => {
  const theta = uniformArray(mulberry32(1), layout.size, -2, 2);
  // One row of dense1.weight is all zeros: its direction row must be zero too.
  const w1 = layout.tensors.find((t) => t.name === 'dense1.weight')!;
  theta.fill(0, w1.offset + 2 * 7, w1.offset + 3 * 7);

  test('each weight row has the norm of θ’s row, same direction as the raw draw; biases zero', () => {
    const raw = Rng.fromSeed(4)
      .stream('eval')
      .stream('direction', 0)
      .fillNormal(new Float64Array(layout.size));
    const d = randomDirection(theta, layout, 0, { seed: 4 });
    expect(randomDirection(theta, layout, 0, { seed: 4, normalization: 'none' })).toEqual(raw);
    let rowsChecked = 0;
    for (const t of layout.tensors) {
      const dv = tensorView(d, t);
      if (t.role === 'bias') {
        expect(Array.from(dv).every((v) => v === 0)).toBe(true);
        continue;
      }
      const [rows, cols] = t.shape as [number, number];
      for (let r = 0; r < rows; r++) {
        const dRow = dv.subarray(r * cols, (r + 1) * cols);
        const tRow = theta.subarray(t.offset + r * cols, t.offset + (r + 1) * cols);
        const rawRow = raw.subarray(t.offset + r * cols, t.offset + (r + 1) * cols);
        const tn = norm(tRow);
        if (tn === 0) {
          expect(Array.from(dRow).every((v) => v === 0)).toBe(true);
        } else {
          expect(Math.abs(norm(dRow) - tn) / tn).toBeLessThan(1e-14);
          // d_row = raw_row · ‖θ_row‖ / ‖raw_row‖.
          const s = tn / norm(rawRow);
          for (let c = 0; c < cols; c++) expect(dRow[c]).toBeCloseTo((rawRow[c] as number) * s, 13);
        }
        rowsChecked++;
      }
    }
    expect(rowsChecked).toBe(7 + 6 + 3);
  });

  test('bias options: copy gives θ_b, normalize gives ‖d_b‖ = ‖θ_b‖ along the draw', () => {
    const raw = Rng.fromSeed(0)
      .stream('eval')
      .stream('direction', 1)
      .fillNormal(new Float64Array(layout.size));
    const copy = randomDirection(theta, layout, 1, { biases: 'copy' });
    const normalized = randomDirection(theta, layout, 1, { biases: 'normalize' });
    for (const t of layout.tensors.filter((x) => x.role === 'bias')) {
      expect(Array.from(tensorView(copy, t))).toEqual(Array.from(tensorView(theta, t)));
      const db = tensorView(normalized, t);
      const tn = norm(tensorView(theta, t));
      expect(Math.abs(norm(db) - tn) / tn).toBeLessThan(1e-14);
      const s = tn / norm(tensorView(raw, t));
      db.forEach((v, i) => expect(v).toBeCloseTo((tensorView(raw, t)[i] as number) * s, 13));
    }
    // Weight rows are the same whatever the bias option.
    const zero = randomDirection(theta, layout, 1);
    for (const t of layout.tensors.filter((x) => x.role === 'weight')) {
      expect(tensorView(copy, t)).toEqual(tensorView(zero, t));
    }
  });

  test('filterNormalize works in place on a given direction', () => {
    const d = new Float64Array(layout.size).fill(1);
    const out = filterNormalize(d, theta, layout);
    expect(out).toBe(d);
    const w0 = layout.tensors[0]!;
    // Row 0 of dense0.weight: five equal entries with the norm of θ's row.
    const tn = norm(theta.subarray(0, 5));
    for (let c = 0; c < 5; c++) expect(d[w0.offset + c]).toBeCloseTo(tn / Math.sqrt(5), 14);
  });

  test('seeds and indices give different directions; the same ones the same', () => {
    const a = randomDirection(theta, layout, 0, { seed: 1 });
    expect(randomDirection(theta, layout, 0, { seed: 1 })).toEqual(a);
    expect(randomDirection(theta, layout, 0, { seed: 2 })[0]).not.toBe(a[0]);
    expect(randomDirection(theta, layout, 1, { seed: 1 })[0]).not.toBe(a[0]);
  });

  test('errors', () => {
    expect(() => filterNormalize(new Float64Array(3), theta, layout)).toThrow(
      /the layout has 111 parameters, but the direction has 3 and θ 111/,
    );
    expect(() =>
      filterNormalize(new Float64Array(layout.size), theta, layout, { biases: 'x' as never }),
    ).toThrow(/unknown biases 'x'/);
    expect(() => randomDirection(theta, layout, -1)).toThrow(/index must be an integer >= 0/);
    expect(() => randomDirection(theta, layout, 0, { seed: 1.5 })).toThrow(/seed must be/);
    expect(() => randomDirection(theta.subarray(1), layout, 0)).toThrow(/θ has 110/);
  });
});

describe('surfaceAxis', () => {
  test('51 points on [−1, 1] with exact ends and an exact 0', () => {
    const a = surfaceAxis();
    expect(a).toHaveLength(51);
    expect([a[0], a[25], a[50]]).toEqual([-1, 0, 1]);
    for (let i = 0; i < 51; i++) {
      expect(a[i]).toBeCloseTo(-1 + i / 25, 15);
      expect(a[i]).toBe(-(a[50 - i] as number) + 0);
    }
    expect(surfaceAxis(0, 3, 4)).toEqual([0, 1, 2, 3]);
    expect(() => surfaceAxis(0, 1, 1)).toThrow(/points must be an integer >= 2, got 1/);
    expect(() => surfaceAxis(0, Number.NaN)).toThrow(/range must be finite/);
  });
});

/**
 * L(p) = ½ Σ h_i (p_i − m_i)² evaluated in float64 from the float32 point; accuracy = p_0 (to check
 * that accuracy is carried through). Along θ + a d1 + b d2 this is the exact quadratic
 * c0 + c1 a + c2 b + ½ (q11 a² + 2 q12 ab + q22 b²) with r = θ − m.
 */
function quadratic(size: number, seed: number) {
  const rand = mulberry32(seed);
  const h = Float64Array.from({ length: size }, () => 0.5 + rand());
  const m = Float64Array.from({ length: size }, () => rand() - 0.5);
  const evaluate: ParamsEvaluator = async (p) => {
    let s = 0;
    for (let i = 0; i < size; i++) s += (h[i] as number) * ((p[i] as number) - (m[i] as number)) ** 2;
    return { loss: 0.5 * s, accuracy: p[0] as number };
  };
  const closedForm = (theta: Float32Array, d1: Float64Array, d2: Float64Array) => {
    let c0 = 0;
    let c1 = 0;
    let c2 = 0;
    let q11 = 0;
    let q12 = 0;
    let q22 = 0;
    for (let i = 0; i < size; i++) {
      const r = (theta[i] as number) - (m[i] as number);
      const hi = h[i] as number;
      const u = d1[i] as number;
      const v = d2[i] as number;
      c0 += 0.5 * hi * r * r;
      c1 += hi * r * u;
      c2 += hi * r * v;
      q11 += hi * u * u;
      q12 += hi * u * v;
      q22 += hi * v * v;
    }
    return (a: number, b: number) =>
      c0 + c1 * a + c2 * b + 0.5 * (q11 * a * a + 2 * q12 * a * b + q22 * b * b);
  };
  return { evaluate, closedForm };
}

describe('lossSurface (quadratic loss)', () => {
  test('51 × 51 on [−1, 1]² matches the closed form at every grid point; loss[j][i] is (x[i], y[j])', async () => {
    const theta = uniformArray(mulberry32(2), layout.size, -1, 1);
    const d1 = randomDirection(theta, layout, 0, { seed: 9 });
    const d2 = randomDirection(theta, layout, 1, { seed: 9 });
    const { evaluate, closedForm } = quadratic(layout.size, 3);
    const L = closedForm(theta, d1, d2);
    const progress: number[] = [];
    const s = await lossSurface(evaluate, theta, d1, d2, {
      onProgress: (done, total) => progress.push(done / total),
    });
    expect(s.x).toEqual(surfaceAxis());
    expect(s.y).toEqual(surfaceAxis());
    expect(s.loss).toHaveLength(51);
    expect(progress).toHaveLength(2601);
    expect(progress.at(-1)).toBe(1);
    let worst = 0;
    for (let j = 0; j < 51; j++) {
      expect(s.loss[j]).toHaveLength(51);
      for (let i = 0; i < 51; i++) {
        const exact = L(s.x[i]!, s.y[j]!);
        worst = Math.max(worst, Math.abs(s.loss[j]![i]! - exact) / exact);
        // accuracy carries p_0 = fround(θ_0 + a d1_0 + b d2_0).
        expect(s.accuracy[j]![i]).toBe(Math.fround(theta[0]! + s.x[i]! * d1[0]! + s.y[j]! * d2[0]!));
      }
    }
    // The only difference is the rounding of each point to float32.
    expect(worst).toBeLessThan(1e-6);
    // The centre is θ itself.
    expect(s.loss[25]![25]).toBe((await evaluate(theta)).loss);
  });

  test('custom, asymmetric axes', async () => {
    const theta = uniformArray(mulberry32(4), 20, -1, 1);
    const d1 = Float64Array.from({ length: 20 }, (_, i) => (i === 3 ? 1 : 0));
    const d2 = Float64Array.from({ length: 20 }, (_, i) => (i === 7 ? 1 : 0));
    const { evaluate, closedForm } = quadratic(20, 5);
    const L = closedForm(theta, d1, d2);
    const s = await lossSurface(evaluate, theta, d1, d2, { x: [0, 0.5], y: [-2, 0, 2] });
    expect(s.loss).toHaveLength(3);
    expect(s.loss[0]).toHaveLength(2);
    for (let j = 0; j < 3; j++) {
      for (let i = 0; i < 2; i++) {
        expect(s.loss[j]![i]).toBeCloseTo(L(s.x[i]!, s.y[j]!), 6);
      }
    }
    // Moving along y changes the loss differently from moving along x: the layout is not transposed.
    expect(s.loss[0]![1]).not.toBeCloseTo(s.loss[1]![0]!, 3);
  });

  test('errors', async () => {
    const theta = new Float32Array(4);
    const { evaluate } = quadratic(4, 1);
    const d = new Float64Array(4);
    await expect(lossSurface(evaluate, theta, d, d.subarray(1))).rejects.toThrow(
      /θ has 4 parameters, but the directions have 4 and 3/,
    );
    await expect(lossSurface(evaluate, theta, d, d, { x: [] })).rejects.toThrow(/axis x is empty/);
    await expect(lossSurface(evaluate, theta, d, d, { y: [Number.NaN] })).rejects.toThrow(
      /axis y has a non-finite/,
    );
  });
});

describe('randomPlaneSurface', () => {
  test('Li et al. plane: directions 0 and 1 of the seed, metadata', async () => {
    const theta = uniformArray(mulberry32(6), layout.size, -1, 1);
    const { evaluate, closedForm } = quadratic(layout.size, 7);
    const s = await randomPlaneSurface(evaluate, theta, layout, { seed: 5, x: [-1, 0, 1], y: [0, 1] });
    expect(s.d1).toEqual(randomDirection(theta, layout, 0, { seed: 5 }));
    expect(s.d2).toEqual(randomDirection(theta, layout, 1, { seed: 5 }));
    const L = closedForm(theta, s.d1, s.d2);
    expect(s.loss[1]![2]).toBeCloseTo(L(1, 1), 6);
    // With zero bias directions, ‖d‖ = ‖θ's weights‖ (row norms squared add up).
    const weightNorm = Math.sqrt(
      layout.tensors
        .filter((t) => t.role === 'weight')
        .reduce((acc, t) => acc + norm(tensorView(theta, t)) ** 2, 0),
    );
    expect(s.directions.norms[0]).toBeCloseTo(weightNorm, 12);
    expect(s.directions.norms[1]).toBeCloseTo(weightNorm, 12);
    expect(s.directions).toMatchObject({ kind: 'random', seed: 5, normalization: 'filter', biases: 'zero' });
    expect(Math.abs(s.directions.cosine)).toBeLessThan(0.5);
  });
});

describe('pcaPlane', () => {
  /** A trajectory exactly in the plane θ_final + span(u, v): small dyadic values, exact in float32. */
  function planarTrajectory(p: number, t: number) {
    const rand = mulberry32(12);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const final = Float32Array.from({ length: p }, () => int(-64, 64) / 64);
    const u = Float32Array.from({ length: p }, () => int(-4, 4) / 8);
    const v = Float32Array.from({ length: p }, () => int(-4, 4) / 8);
    const coeff = Array.from({ length: t - 1 }, (_, k) => [int(-16, 16) / 4, (k * k - 3 * k) / 8] as const);
    const checkpoints = coeff.map(([a, b]) => Float32Array.from(final, (f, i) => f + a * u[i]! + b * v[i]!));
    checkpoints.push(final);
    // The construction must be exact in float32.
    coeff.forEach(([a, b], k) => {
      checkpoints[k]!.forEach((x, i) => expect(x).toBe(final[i]! + a * u[i]! + b * v[i]!));
    });
    return checkpoints;
  }

  test.each(['final', 'mean'] as const)(
    'reference %s: a planar trajectory is reconstructed exactly from its coordinates',
    (reference) => {
      const checkpoints = planarTrajectory(60, 9);
      const plane = pcaPlane(checkpoints, { reference });
      expect(plane.reference).toBe(reference);
      expect(plane.origin).toEqual(checkpoints[8]);
      expect(plane.origin).not.toBe(checkpoints[8]);
      // Orthonormal directions.
      let d11 = 0;
      let d22 = 0;
      let d12 = 0;
      for (let i = 0; i < 60; i++) {
        d11 += plane.d1[i]! ** 2;
        d22 += plane.d2[i]! ** 2;
        d12 += plane.d1[i]! * plane.d2[i]!;
      }
      expect(d11).toBeCloseTo(1, 12);
      expect(d22).toBeCloseTo(1, 12);
      expect(Math.abs(d12)).toBeLessThan(1e-12);
      expect(plane.coordinates).toHaveLength(9);
      expect(plane.coordinates[8]).toEqual([0, 0]);
      let worst = 0;
      checkpoints.forEach((c, t) => {
        const [x, y] = plane.coordinates[t]!;
        expect(projectOntoPlane(plane, c)).toEqual([x, y]);
        for (let i = 0; i < 60; i++) {
          worst = Math.max(worst, Math.abs(plane.origin[i]! + x * plane.d1[i]! + y * plane.d2[i]! - c[i]!));
        }
      });
      expect(worst).toBeLessThan(1e-12);
      expect(plane.explainedVarianceRatio[0] + plane.explainedVarianceRatio[1]).toBeCloseTo(1, 12);
      expect(plane.explainedVarianceRatio[0]).toBeGreaterThanOrEqual(plane.explainedVarianceRatio[1]);
    },
  );

  test('a point off the plane projects orthogonally', () => {
    const checkpoints = planarTrajectory(30, 5);
    const plane = pcaPlane(checkpoints);
    const [x, y] = plane.coordinates[1]!;
    // Add a component orthogonal to both directions: the coordinates do not change.
    const off = Float64Array.from({ length: 30 }, (_, i) => Math.sin(i + 1));
    const a = off.reduce((s, v, i) => s + v * plane.d1[i]!, 0);
    const b = off.reduce((s, v, i) => s + v * plane.d2[i]!, 0);
    const w = Float64Array.from(off, (v, i) => v - a * plane.d1[i]! - b * plane.d2[i]!);
    const moved = Float64Array.from(checkpoints[1]!, (c, i) => c + w[i]!);
    const [mx, my] = projectOntoPlane(plane, moved);
    expect(mx).toBeCloseTo(x, 12);
    expect(my).toBeCloseTo(y, 12);
  });

  test('errors', () => {
    const c = planarTrajectory(10, 4);
    expect(() => pcaPlane(c.slice(0, 2))).toThrow(/at least 3 checkpoints, got 2/);
    expect(() => pcaPlane(c, { reference: 'first' as never })).toThrow(/unknown reference 'first'/);
    // Collinear: θ_t = θ_final + t u.
    const u = Float32Array.from({ length: 10 }, (_, i) => (i % 3) - 1);
    const line = [3, 2, 1, 0].map((t) => Float32Array.from(u, (x) => 0.5 + t * x));
    expect(() => pcaPlane(line)).toThrow(/does not span two dimensions/);
    expect(() => projectOntoPlane(pcaPlane(c), new Float32Array(3))).toThrow(/expected 10 parameters, got 3/);
  });
});

describe('pcaSurface', () => {
  test('axes cover the path; values match the closed form on the PCA plane', async () => {
    const rand = mulberry32(13);
    const p = 25;
    // A curved path ending at the last point, not planar.
    const checkpoints = Array.from({ length: 6 }, (_, t) =>
      Float32Array.from(
        { length: p },
        (_, i) => Math.cos(t * 0.3 + i) * (6 - t) * 0.1 + (rand() - 0.5) * 0.01,
      ),
    );
    const { evaluate, closedForm } = quadratic(p, 14);
    const s = await pcaSurface(evaluate, checkpoints, { points: 7 });
    expect(s.x).toHaveLength(7);
    expect(s.y).toHaveLength(7);
    for (const [x, y] of s.plane.coordinates) {
      expect(x).toBeGreaterThan(s.x[0]!);
      expect(x).toBeLessThan(s.x[6]!);
      expect(y).toBeGreaterThan(s.y[0]!);
      expect(y).toBeLessThan(s.y[6]!);
    }
    // Default margin 0.2 of the extent on each side.
    const xs = s.plane.coordinates.map((c) => c[0]);
    const lo = Math.min(0, ...xs);
    const hi = Math.max(0, ...xs);
    expect(s.x[0]).toBeCloseTo(lo - 0.2 * (hi - lo), 14);
    expect(s.x[6]).toBeCloseTo(hi + 0.2 * (hi - lo), 14);
    const L = closedForm(s.plane.origin, s.plane.d1, s.plane.d2);
    for (let j = 0; j < 7; j++) {
      for (let i = 0; i < 7; i++) {
        const exact = L(s.x[i]!, s.y[j]!);
        expect(Math.abs(s.loss[j]![i]! - exact) / exact).toBeLessThan(1e-6);
      }
    }
    await expect(pcaSurface(evaluate, checkpoints, { margin: -1 })).rejects.toThrow(/margin must be/);
  });
});

describe('with the ORT engine', () => {
  const engines: Engine[] = [];
  afterAll(async () => {
    await Promise.all(engines.map((e) => e.dispose()));
  });

  test('lossLine to θ_B reproduces interpolationCurve exactly (loss, and error = 1 − accuracy)', async () => {
    const m = modelGraphSpec({ kind: 'mlp', hidden: [8], activation: 'tanh' }, 4, 3, 'cross-entropy');
    const engine = await createOrtEngine(m, { optimizer: { kind: 'sgd', lr: 0.1 } });
    engines.push(engine);
    const rand = mulberry32(15);
    const a = uniformArray(rand, m.layout.size, -1, 1);
    const b = uniformArray(rand, m.layout.size, -1, 1);
    const batch = randomBatch(m, 60, rand);
    const data = { x: batch.x, y: batch.y, n: 60 };
    const evaluate = engineEvaluator(engine, data);
    const line = await lossLine(evaluate, a, { to: b });
    const curve = await interpolationCurve(engine, a, b, data);
    expect(line.alphas).toEqual(alphaGrid());
    expect(line.loss).toEqual(curve.loss);
    line.accuracy.forEach((acc, i) => expect(1 - acc).toBe(curve.error[i]));
    const alphas = [-0.5, 0.25, 1.5];
    const line2 = await lossLine(evaluate, a, { to: b }, alphas);
    expect(line2.loss).toEqual((await interpolationCurve(engine, a, b, data, alphas)).loss);
    // Along a direction: α = 0 is θ itself, α = 1 is fround(θ + d).
    const d = randomDirection(a, m.layout, 0);
    const dl = await lossLine(evaluate, a, { direction: d }, [0, 1]);
    expect(dl.loss[0]).toBe((await engine.evaluate(a, data.x, data.y, 60)).loss);
    const ad = Float32Array.from(a, (v, i) => v + d[i]!);
    expect(dl.loss[1]).toBe((await engine.evaluate(ad, data.x, data.y, 60)).loss);
    expect((await lossLine(evaluate, a, { direction: d })).alphas).toEqual(surfaceAxis());
    await expect(lossLine(evaluate, a, { to: b.subarray(1) })).rejects.toThrow(/but the target has/);
    await expect(lossLine(evaluate, a, { direction: d }, [])).rejects.toThrow(/alphas is empty/);
  });

  test('linear regression with mse: the 2-D surface is the exact quadratic of the data', async () => {
    const m = modelGraphSpec({ kind: 'linear' }, 5, 2, 'mse');
    const engine = await createOrtEngine(m, { optimizer: { kind: 'sgd', lr: 0.1 } });
    engines.push(engine);
    const rand = mulberry32(16);
    const theta = uniformArray(rand, m.layout.size, -1, 1);
    const n = 64;
    const batch = randomBatch(m, n, rand);
    const d1 = randomDirection(theta, m.layout, 0, { biases: 'copy' });
    const d2 = randomDirection(theta, m.layout, 1, { biases: 'copy' });
    const axis = surfaceAxis(-1, 1, 5);
    const s = await lossSurface(engineEvaluator(engine, { x: batch.x, y: batch.y, n }), theta, d1, d2, {
      x: axis,
      y: axis,
    });
    // Float64 reference: ½ mean ‖W x + b − y‖² at θ + a d1 + b d2 (W at offset 0, bias at 10).
    const reference = (a: number, b: number) => {
      const th = Float64Array.from(theta, (v, i) => v + a * d1[i]! + b * d2[i]!);
      let sum = 0;
      for (let r = 0; r < n; r++) {
        for (let o = 0; o < 2; o++) {
          let z = th[10 + o]!;
          for (let k = 0; k < 5; k++) z += th[o * 5 + k]! * batch.x[r * 5 + k]!;
          sum += (z - batch.y[r * 2 + o]!) ** 2;
        }
      }
      return (0.5 * sum) / n;
    };
    const scale = Math.max(...s.loss.flat());
    for (let j = 0; j < 5; j++) {
      for (let i = 0; i < 5; i++) {
        expect(Math.abs(s.loss[j]![i]! - reference(axis[i]!, axis[j]!)) / scale).toBeLessThan(1e-5);
        expect(s.accuracy[j]![i]).toBeNaN();
      }
    }
    // It is a quadratic in (a, b): second differences along x are constant.
    const row = s.loss[2]!;
    const second = [1, 2, 3].map((i) => row[i - 1]! - 2 * row[i]! + row[i + 1]!);
    expect(second[0]).toBeGreaterThan(0);
    for (const v of second) expect(Math.abs(v - second[0]!) / scale).toBeLessThan(1e-5);
  });
});

describe('batched evaluators (`many`)', () => {
  test('lossSurface sends the grid as one combination [θ, d₁, d₂] · [1, a, b], rows along y; same values', async () => {
    const theta = uniformArray(mulberry32(20), layout.size, -1, 1);
    const d1 = randomDirection(theta, layout, 0, { seed: 2 });
    const d2 = randomDirection(theta, layout, 1, { seed: 2 });
    const { evaluate } = quadratic(layout.size, 21);
    const received: ParamsBatch[] = [];
    const many = async (points: ParamsBatch, onProgress?: (done: number, total: number) => void) => {
      received.push(points);
      const n = Array.isArray(points) ? points.length : (points as ParamsCombination).coefficients.length;
      const out = [];
      for (let k = 0; k < n; k++) out.push(await evaluate(paramsPoint(points, k)));
      onProgress?.(n, n);
      return out;
    };
    const batched = Object.assign(async (p: Float32Array) => evaluate(p), { many }) as ParamsEvaluator;
    const grid = { x: [-1, 0, 0.5], y: [-2, 2] };
    const progress: number[] = [];
    const s = await lossSurface(batched, theta, d1, d2, {
      ...grid,
      onProgress: (done) => progress.push(done),
    });
    expect(received).toHaveLength(1);
    const c = received[0] as ParamsCombination;
    expect(c.vectors).toEqual([theta, d1, d2]);
    expect(c.coefficients).toEqual([
      [1, -1, -2],
      [1, 0, -2],
      [1, 0.5, -2],
      [1, -1, 2],
      [1, 0, 2],
      [1, 0.5, 2],
    ]);
    expect(progress).toEqual([6]);
    // paramsPoint forms the points exactly as the sequential path does: the same surface, bit for bit.
    expect(s).toEqual(await lossSurface(evaluate, theta, d1, d2, grid));
  });

  test('ORT: the batched surface equals one evaluation per point within float32 rounding; lines exactly', async () => {
    const m = modelGraphSpec({ kind: 'mlp', hidden: [24, 16] }, 10, 4, 'cross-entropy');
    const engine = await createOrtEngine(m, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const rand = mulberry32(23);
    const theta = uniformArray(rand, m.layout.size, -0.8, 0.8);
    const batch = randomBatch(m, 300, rand);
    const batched = engineEvaluator(engine, { x: batch.x, y: batch.y, n: 300 });
    const sequential: ParamsEvaluator = (p) => batched(p);
    const options = { seed: 3, x: surfaceAxis(-1, 1, 11), y: surfaceAxis(-0.5, 1.5, 9) };
    const fast = await randomPlaneSurface(batched, theta, m.layout, options);
    const slow = await randomPlaneSurface(sequential, theta, m.layout, options);
    let worst = 0;
    for (let j = 0; j < 9; j++) {
      for (let i = 0; i < 11; i++) {
        const l = slow.loss[j]![i]!;
        worst = Math.max(worst, Math.abs(fast.loss[j]![i]! - l) / (1 + Math.abs(l)));
      }
    }
    expect(worst).toBeLessThan(1e-5);
    expect(fast.accuracy).toEqual(slow.accuracy);
    expect(fast.directions).toEqual(slow.directions);
    // Lines go as lists of points: exactly the sequential values.
    const b = uniformArray(rand, m.layout.size, -0.8, 0.8);
    expect(await lossLine(batched, theta, { to: b })).toEqual(await lossLine(sequential, theta, { to: b }));
    expect(await lossLine(batched, theta, { direction: fast.d1 })).toEqual(
      await lossLine(sequential, theta, { direction: fast.d1 }),
    );
    await engine.dispose();
  });

  test('tfjs: evaluateMany loops over evaluate, so the batched surface is the sequential one exactly', async () => {
    const m = modelGraphSpec({ kind: 'mlp', hidden: [6], activation: 'tanh' }, 4, 3, 'cross-entropy');
    const engine = await createTfjsEngine(m, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const rand = mulberry32(24);
    const theta = uniformArray(rand, m.layout.size, -1, 1);
    const batch = randomBatch(m, 40, rand);
    const batched = engineEvaluator(engine, { x: batch.x, y: batch.y, n: 40 });
    const options = { x: surfaceAxis(-1, 1, 4), y: surfaceAxis(-1, 1, 3) };
    expect(await randomPlaneSurface(batched, theta, m.layout, options)).toEqual(
      await randomPlaneSurface((p) => batched(p), theta, m.layout, options),
    );
    await engine.dispose();
  });
});
