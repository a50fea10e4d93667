/**
 * The merge rules of src/onnx/merge-methods.ts on tiny hand-built vectors, against values computed
 * by hand (docs/methods.md §8, mergekit's definitions).
 */
import { describe, expect, test } from 'vitest';
import type { ParameterLayout } from '../../src/model/layout.js';
import {
  dareMerge,
  greedySoup,
  linearMerge,
  slerpMerge,
  slerpTensor,
  taskArithmetic,
  tiesMerge,
  trimTopK,
} from '../../src/onnx/merge-methods.js';
import { Rng } from '../../src/rng/rng.js';

/** One tensor per entry of `sizes`. */
function layoutOf(...sizes: number[]): ParameterLayout {
  let offset = 0;
  const tensors = sizes.map((size, k) => {
    const t = {
      name: `t${k}`,
      shape: [size],
      offset,
      size,
      role: 'bias' as const,
      fanIn: size,
      fanOut: size,
      initStd: 0,
    };
    offset += size;
    return t;
  });
  return { tensors, size: offset };
}

const f32 = (...v: number[]) => Float32Array.from(v);
const norm = (v: Float32Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('linear', () => {
  test('weights (0.5, 0.5) give the midpoint; weights are normalized to sum 1', () => {
    const a = f32(1, -2, 3.5);
    const b = f32(3, 4, -0.5);
    expect(Array.from(linearMerge([a, b], [0.5, 0.5]))).toEqual([2, 1, 1.5]);
    expect(Array.from(linearMerge([a, b]))).toEqual([2, 1, 1.5]);
    expect(Array.from(linearMerge([a, b], [1, 3]))).toEqual([2.5, 2.5, 0.5]);
    expect(() => linearMerge([a, b], [1, -1])).toThrow(/sum to 0/);
  });
});

describe('slerp', () => {
  const layout = layoutOf(2, 3);
  test('t = 0 and t = 1 give the endpoints', () => {
    const a = f32(1, 2, 3, -1, 0.5);
    const b = f32(-2, 1, 0.5, 4, 2);
    for (const [t, want] of [
      [0, a],
      [1, b],
    ] as const) {
      const got = slerpMerge(a, b, t, layout);
      got.forEach((v, i) => {
        expect(v).toBeCloseTo(want[i] as number, 6);
      });
    }
  });

  test('orthogonal unit vectors: the great circle, norm preserved', () => {
    const m = slerpTensor(f32(1, 0), f32(0, 1), 0.5);
    expect(m[0]).toBeCloseTo(Math.SQRT1_2, 7);
    expect(m[1]).toBeCloseTo(Math.SQRT1_2, 7);
    // t = 1/3 of 90°: (cos 30°, sin 30°).
    const third = slerpTensor(f32(1, 0), f32(0, 1), 1 / 3);
    expect(third[0]).toBeCloseTo(Math.cos(Math.PI / 6), 6);
    expect(third[1]).toBeCloseTo(0.5, 6);
  });

  test('equal-norm vectors keep their norm at every t (per tensor)', () => {
    const a = f32(3, 4, 1, 2, 2);
    const b = f32(0, 5, 2, -1, 2); // ‖a_0‖ = ‖b_0‖ = 5, ‖a_1‖ = ‖b_1‖ = 3
    for (const t of [0.1, 0.25, 0.5, 0.9]) {
      const m = slerpMerge(a, b, t, layout);
      expect(norm(m.subarray(0, 2))).toBeCloseTo(5, 5);
      expect(norm(m.subarray(2, 5))).toBeCloseTo(3, 5);
    }
  });

  test('near-colinear tensors (|cos Ω| > 0.9995) fall back to linear', () => {
    const a = f32(1, 0);
    const b = f32(2, 0.01); // cos Ω = 0.99998
    expect(Array.from(slerpTensor(a, b, 0.5))).toEqual([Math.fround(1.5), Math.fround(0.005)]);
    const anti = slerpTensor(f32(1, 0), f32(-1, 0), 0.25);
    expect(Array.from(anti)).toEqual([0.5, 0]);
  });
});

describe('task vectors', () => {
  const base = f32(0, 0, 0, 0, 0);
  const m1 = f32(3, -1, 0.5, -4, 2); // τ_1
  const m2 = f32(-2, 2, 1, -1, 3); // τ_2
  const layout = layoutOf(5);

  test('task arithmetic: θ₀ + λ Σ w_k τ_k', () => {
    expect(Array.from(taskArithmetic(base, [m1, m2], { scale: 0.5 }))).toEqual([0.5, 0.5, 0.75, -2.5, 2.5]);
    expect(Array.from(taskArithmetic(f32(1, 1, 1, 1, 1), [m1], { weights: [2] }))).toEqual([5, -3, 0, -9, 3]);
  });

  test('trim keeps the top ⌊density n⌋ magnitudes per tensor, ties by position', () => {
    const d = Float64Array.from([-2, 2, 1, -1, 3]);
    expect(Array.from(trimTopK(d, 0.6, layout))).toEqual([-2, 2, 0, 0, 3]);
    // Two tensors of 2 and 3 entries at density 0.5: 1 and 1 entries kept.
    expect(Array.from(trimTopK(Float64Array.from([1, -3, 2, 0.5, -2]), 0.5, layoutOf(2, 3)))).toEqual([
      0, -3, 2, 0, 0,
    ]);
  });

  test('TIES: trim to 60 %, elect signs, disjoint mean (by hand)', () => {
    // trimmed τ_1 = [3, 0, 0, −4, 2], τ_2 = [−2, 2, 0, 0, 3]; sums [1, 2, 0, −4, 5] → signs + + + − +;
    // agreeing entries: [3], [2], none, [−4], [2, 3] → 3, 2, 0, −4, 2.5.
    expect(Array.from(tiesMerge(base, [m1, m2], layout, { density: 0.6 }))).toEqual([3, 2, 0, -4, 2.5]);
    // Weights (2, 1): weighted [6, 0, 0, −8, 4], [−2, 2, 0, 0, 3]; disjoint means 6/2, 2/1, 0, −8/2, 7/3.
    const w = tiesMerge(base, [m1, m2], layout, { density: 0.6, weights: [2, 1] });
    expect(Array.from(w)).toEqual([3, 2, 0, -4, Math.fround(7 / 3)]);
    // λ = 0.5 from a nonzero base.
    const shifted = tiesMerge(
      f32(1, 1, 1, 1, 1),
      [m1, m2].map((m) => m.map((v) => v + 1)),
      layout,
      {
        density: 0.6,
        scale: 0.5,
      },
    );
    expect(Array.from(shifted)).toEqual([2.5, 2, 1, -1, 2.25]);
  });

  test('DARE: each entry kept with probability density and rescaled by 1/density (seeded)', () => {
    const n = 4000;
    const t1 = new Float32Array(n).map((_, i) => ((i % 7) - 3) * 0.25);
    const zero = new Float32Array(n);
    const got = dareMerge(zero, [t1], { density: 0.25, seed: 9 });
    const rng = Rng.fromSeed(9).stream('dare', 0);
    let kept = 0;
    got.forEach((v, i) => {
      const keep = rng.uniform() < 0.25;
      expect(v).toBe(keep ? (t1[i] as number) * 4 : 0);
      if (keep) kept++;
    });
    expect(Math.abs(kept / n - 0.25)).toBeLessThan(0.03);
    // Density 1 is task arithmetic; the same seed gives the same drop.
    expect(Array.from(dareMerge(base, [m1, m2], { density: 1, seed: 1 }))).toEqual(
      Array.from(taskArithmetic(base, [m1, m2])),
    );
    expect(Array.from(dareMerge(zero, [t1], { density: 0.25, seed: 9 }))).toEqual(Array.from(got));
    // dare-ties with density 1 is TIES without trimming.
    expect(Array.from(dareMerge(base, [m1, m2], { density: 1, seed: 1, ties: true }))).toEqual(
      Array.from(tiesMerge(base, [m1, m2], layout, { density: 1 })),
    );
  });
});

describe('greedy soup', () => {
  test('adds a model only when the soup does not lose held-out accuracy', async () => {
    const models = [f32(1), f32(2), f32(4)];
    // Held-out accuracy by soup members (sorted indices).
    const table: Record<string, number> = {
      '0': 0.8,
      '1': 0.9,
      '2': 0.7,
      '0,1': 0.85,
      '1,2': 0.95,
      '0,1,2': 0.99,
    };
    const seen: string[] = [];
    const soup = await greedySoup(models, async (w, members) => {
      const key = [...members].sort().join(',');
      seen.push(`${key}:${w[0]}`);
      return table[key] as number;
    });
    // Order by accuracy: 1 (0.9), 0 (0.8), 2 (0.7). {1, 0}: 0.85 < 0.9, left out; {1, 2}: 0.95, added.
    expect(soup.ingredients).toEqual([1, 2]);
    expect(Array.from(soup.weights)).toEqual([3]);
    expect(soup.steps.map((s) => [s.model, s.accuracy, s.soupAccuracy, s.added])).toEqual([
      [1, 0.9, 0.9, true],
      [0, 0.8, 0.85, false],
      [2, 0.7, 0.95, true],
    ]);
    expect(seen).toEqual(['0:1', '1:2', '2:4', '0,1:1.5', '1,2:3']);
  });

  test('an equal accuracy joins (does not fall)', async () => {
    const soup = await greedySoup([f32(1), f32(3)], async () => 0.5);
    expect(soup.ingredients).toEqual([0, 1]);
    expect(Array.from(soup.weights)).toEqual([2]);
  });
});
