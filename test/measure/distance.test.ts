import { describe, expect, test } from 'vitest';
import {
  amplification,
  cosineSimilarity,
  l2Distance,
  l2Norm,
  normalizedL2,
  perTensorL2,
} from '../../src/measure/distance.js';
import { layoutOf } from '../../src/model/layout.js';
import { denseLayers } from '../../src/model/spec.js';

const f32 = (xs: number[]) => Float32Array.from(xs);

describe('l2Distance', () => {
  test('3-4-5 and a hand-computed 4-vector', () => {
    expect(l2Distance(f32([3, 0]), f32([0, 4]))).toBe(5);
    // diff = [0, 4, −3, 4] → sqrt(0 + 16 + 9 + 16) = sqrt(41)
    expect(l2Distance(f32([1, 2, 2, 4]), f32([1, -2, 5, 0]))).toBe(Math.sqrt(41));
    expect(l2Distance(f32([1, 2]), f32([1, 2]))).toBe(0);
  });

  test('accumulates in float64: squares beyond float32 range do not overflow', () => {
    // 3e20² = 9e40 overflows float32 (max ≈ 3.4e38) but not float64.
    const a = f32([3e20, 4e20]);
    const d = l2Distance(a, f32([0, 0]));
    expect(Number.isFinite(d)).toBe(true);
    expect(d).toBeCloseTo(Math.hypot(a[0] as number, a[1] as number), -10);
    expect(d / 5e20).toBeCloseTo(1, 6);
  });

  test('many small terms sum without float32 drift', () => {
    // 2^20 differences of 1e-3 (float32): exact float64 sum of squares is n·fround(1e-3)².
    const n = 1 << 20;
    const a = new Float32Array(n).fill(1e-3);
    const e = Math.fround(1e-3);
    const exact = Math.sqrt(n * e * e);
    // A float32 running sum stalls long before 2^20 terms of 1e-6; float64 stays within ~1e-11.
    let s32 = 0;
    for (let i = 0; i < n; i++) s32 = Math.fround(s32 + Math.fround(e * e));
    expect(Math.abs(Math.sqrt(s32) - exact) / exact).toBeGreaterThan(1e-4);
    expect(Math.abs(l2Distance(a, new Float32Array(n)) - exact) / exact).toBeLessThan(1e-9);
  });

  test('length mismatch names both lengths', () => {
    expect(() => l2Distance(f32([1, 2, 3]), f32([1, 2]))).toThrow(/a has 3, b has 2/);
  });
});

describe('perTensorL2', () => {
  // Linear model 3 → 1 with bias: dense0.weight [1, 3] at 0..2, dense0.bias [1] at 3.
  const layout = layoutOf(denseLayers({ kind: 'linear' }, 3, 1), { kind: 'zeros' });

  test('per-tensor distances on a 2-tensor layout', () => {
    expect(layout.tensors.map((t) => t.name)).toEqual(['dense0.weight', 'dense0.bias']);
    const a = f32([1, 2, 2, 4]);
    const b = f32([1, -2, 5, 0]);
    const per = perTensorL2(a, b, layout);
    // weight diff [0, 4, −3] → 5; bias diff [4] → 4.
    expect(per).toEqual({ 'dense0.weight': 5, 'dense0.bias': 4 });
    expect(Object.keys(per)).toEqual(['dense0.weight', 'dense0.bias']);
    // Squares add up to the total.
    expect(5 ** 2 + 4 ** 2).toBe(l2Distance(a, b) ** 2);
  });

  test('MLP layout: four tensors whose squares sum to the total', () => {
    const mlp = layoutOf(denseLayers({ kind: 'mlp', hidden: [2] }, 2, 1), { kind: 'zeros' });
    // dense0.weight [2,2] (4), dense0.bias (2), dense1.weight [1,2] (2), dense1.bias (1) = 9
    expect(mlp.size).toBe(9);
    const a = f32([1, 1, 1, 1, 0, 0, 0, 0, 0]);
    const b = f32([0, 0, 0, 0, 3, 4, 1, 0, 2]);
    expect(perTensorL2(a, b, mlp)).toEqual({
      'dense0.weight': 2,
      'dense0.bias': 5,
      'dense1.weight': 1,
      'dense1.bias': 2,
    });
    expect(l2Distance(a, b)).toBe(Math.sqrt(4 + 25 + 1 + 4));
  });

  test('errors on length mismatches', () => {
    expect(() => perTensorL2(f32([1, 2, 3, 4]), f32([1, 2, 3]), layout)).toThrow(/a has 4, b has 3/);
    expect(() => perTensorL2(f32([1, 2, 3]), f32([1, 2, 3]), layout)).toThrow(
      /length 3, but the layout has 4 parameters/,
    );
  });
});

describe('normalizedL2 and cosineSimilarity', () => {
  test('hand-computed values', () => {
    // ‖a‖ = ‖b‖ = 5, a − b = [3, −1] → sqrt(10) / sqrt(25); ⟨a,b⟩ = 20 → cos 0.8.
    expect(normalizedL2(f32([3, 4]), f32([0, 5]))).toBeCloseTo(Math.sqrt(10) / 5, 15);
    expect(cosineSimilarity(f32([3, 4]), f32([0, 5]))).toBeCloseTo(0.8, 15);
    // ‖a‖ = 1, ‖b‖ = 4, ‖a − b‖ = 3 → 3 / sqrt(4) = 1.5; parallel → cos 1.
    expect(normalizedL2(f32([1, 0]), f32([4, 0]))).toBe(1.5);
    expect(cosineSimilarity(f32([1, 0]), f32([4, 0]))).toBe(1);
    // ‖a‖ = 5, ‖b‖ = sqrt(30), ‖a − b‖ = sqrt(41), ⟨a,b⟩ = 1 − 4 + 10 + 0 = 7.
    const a = f32([1, 2, 2, 4]);
    const b = f32([1, -2, 5, 0]);
    expect(l2Norm(a)).toBe(5);
    expect(normalizedL2(a, b)).toBeCloseTo(Math.sqrt(41) / Math.sqrt(5 * Math.sqrt(30)), 14);
    expect(cosineSimilarity(a, b)).toBeCloseTo(7 / (5 * Math.sqrt(30)), 15);
    expect(cosineSimilarity(f32([1, 2]), f32([-2, -4]))).toBe(-1);
    expect(cosineSimilarity(f32([1, 0]), f32([0, 2]))).toBe(0);
  });

  test('zero vectors', () => {
    const z = f32([0, 0]);
    expect(normalizedL2(z, z)).toBe(0);
    expect(normalizedL2(z, f32([1, 0]))).toBe(Number.POSITIVE_INFINITY);
    expect(cosineSimilarity(z, f32([1, 0]))).toBeNaN();
  });

  test('scale invariance of normalizedL2', () => {
    const a = f32([0.5, -1, 2]);
    const b = f32([1, 0.25, -0.5]);
    const s = (v: Float32Array) => v.map((x) => x * 8); // power of two: exact
    expect(normalizedL2(s(a), s(b))).toBeCloseTo(normalizedL2(a, b), 15);
  });

  test('length mismatch', () => {
    expect(() => normalizedL2(f32([1]), f32([1, 2]))).toThrow(/a has 1, b has 2/);
    expect(() => cosineSimilarity(f32([1, 2]), f32([1]))).toThrow(/a has 2, b has 1/);
  });
});

describe('amplification', () => {
  test('‖θ_A(T) − θ_B(T)‖ / ‖ε‖', () => {
    // diff [3, 4] → 5; ε norm 1e-3 → 5000.
    expect(amplification(f32([1, 1]), f32([4, 5]), 1e-3)).toBeCloseTo(5000, 9);
    expect(amplification(f32([1, 1]), f32([1, 1]), 0.5)).toBe(0);
  });

  test('errors', () => {
    expect(() => amplification(f32([1, 1]), f32([1]), 1)).toThrow(/a has 2, b has 1/);
    expect(() => amplification(f32([1]), f32([1]), 0)).toThrow(
      /epsNorm must be a positive finite number, got 0/,
    );
    expect(() => amplification(f32([1]), f32([1]), Number.NaN)).toThrow(/epsNorm/);
  });
});
