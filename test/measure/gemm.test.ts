import { describe, expect, it } from 'vitest';
import { gemm, gemmThreads, scratchFloat64, setGemmThreads } from '../../src/measure/gemm.js';
import { Rng } from '../../src/rng/rng.js';

/** op(A) · op(B) by the definition, in float64. */
function naive(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  k: number,
  n: number,
  transA: boolean,
  transB: boolean,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let l = 0; l < k; l++) {
        const av = transA ? a[l * m + i]! : a[i * k + l]!;
        const bv = transB ? b[j * k + l]! : b[l * n + j]!;
        s += av * bv;
      }
      c[i * n + j] = s;
    }
  }
  return c;
}

function maxRelDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < x.length; i++) {
    scale = Math.max(scale, Math.abs(y[i]!));
    diff = Math.max(diff, Math.abs(x[i]! - y[i]!));
  }
  return diff / (scale || 1);
}

describe('gemm', () => {
  const rng = Rng.fromSeed(7).stream('gemm');

  it('equals the definition for every transpose combination, float64 and float32', () => {
    for (const [m, k, n] of [
      [1, 1, 1],
      [3, 5, 2],
      [17, 33, 9],
      [64, 200, 48],
    ] as const) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          const a = rng.fillNormal(new Float64Array(m * k));
          const b = rng.fillNormal(new Float64Array(k * n));
          const ref = naive(a, b, m, k, n, transA, transB);
          const c = gemm(a, b, { m, k, n, transA, transB });
          expect(c).toBeInstanceOf(Float64Array);
          expect(c).toHaveLength(m * n);
          expect(maxRelDiff(c, ref)).toBeLessThan(1e-13);
          const c32 = gemm(a, b, { m, k, n, transA, transB }, { floatType: 'float32' });
          expect(c32).toBeInstanceOf(Float32Array);
          expect(maxRelDiff(c32, ref)).toBeLessThan(1e-5);
        }
      }
    }
  });

  it('takes float32 operands and views into larger buffers; repeated calls reuse the session', () => {
    const big = rng.fillNormal(new Float64Array(1000));
    const a = big.subarray(100, 100 + 6 * 4); // 6 × 4
    const b32 = Float32Array.from(big.subarray(500, 500 + 4 * 5)); // 4 × 5
    const ref = naive(a, b32, 6, 4, 5, false, false);
    for (let r = 0; r < 3; r++)
      expect(maxRelDiff(gemm(a, b32, { m: 6, k: 4, n: 5 }), ref)).toBeLessThan(1e-14);
    // The operands are not modified.
    expect(a[0]).toBe(big[100]);
  });

  it('is exact on small integers (float64 sums of products)', () => {
    const a = Float64Array.from({ length: 6 }, (_, i) => i + 1); // [[1,2,3],[4,5,6]]
    const b = Float64Array.from({ length: 12 }, (_, i) => i - 3); // 3 × 4
    expect([...gemm(a, b, { m: 2, k: 3, n: 4 })]).toEqual([14, 20, 26, 32, 23, 38, 53, 68]);
  });

  it('rejects bad shapes and thread counts', () => {
    const a = new Float64Array(6);
    expect(() => gemm(a, a, { m: 2, k: 3, n: 3 })).toThrow(/B has 6 values, expected 3 × 3/);
    expect(() => gemm(a, a, { m: 3, k: 3, n: 2 })).toThrow(/A has 6 values/);
    expect(() => gemm(a, a, { m: 0, k: 3, n: 2 })).toThrow(/m must be a positive integer/);
    expect(() => gemm(a, a, { m: 2, k: 3, n: 2 }, { threads: 0 })).toThrow(/threads/);
    expect(() => setGemmThreads(1.5)).toThrow(/threads/);
  });

  it('runs at any thread count with the same result; setGemmThreads sets the default', () => {
    const a = rng.fillNormal(new Float64Array(300 * 200));
    const b = rng.fillNormal(new Float64Array(200 * 100));
    const one = gemm(a, b, { m: 300, k: 200, n: 100 }, { threads: 1 });
    const previous = gemmThreads();
    setGemmThreads(2);
    try {
      expect(gemmThreads()).toBe(2);
      expect(maxRelDiff(gemm(a, b, { m: 300, k: 200, n: 100 }), one)).toBeLessThan(1e-14);
    } finally {
      setGemmThreads(previous);
    }
  });
});

describe('scratchFloat64', () => {
  it('reuses one zero-filled buffer per name', () => {
    const a = scratchFloat64('test.a', 10);
    a.fill(3);
    const b = scratchFloat64('test.a', 8);
    expect(b.buffer).toBe(a.buffer);
    expect([...b]).toEqual(new Array(8).fill(0));
    expect(scratchFloat64('test.b', 8).buffer).not.toBe(a.buffer);
    expect(scratchFloat64('test.a', 20)).toHaveLength(20);
  });
});
