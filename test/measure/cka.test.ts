import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { angularCka, cka, type Matrix, medianOfDistances, minibatchCka } from '../../src/measure/cka.js';
import { fixturePath } from '../helpers/fixtures.js';

// ---- helpers (seeded Gaussian data, plain float64 linear algebra) ---------------------------

function gaussian(seed: number): () => number {
  let s = seed >>> 0;
  const u = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function randn(rows: number, cols: number, seed: number, offset = 0): Matrix {
  const g = gaussian(seed);
  const data = new Float64Array(rows * cols);
  for (let i = 0; i < data.length; i++) data[i] = g() + offset;
  return { rows, cols, data };
}

function get(m: Matrix, i: number, j: number): number {
  return m.data[i * m.cols + j]!;
}

function matmul(a: Matrix, b: Matrix): Matrix {
  const out = new Float64Array(a.rows * b.cols);
  for (let i = 0; i < a.rows; i++)
    for (let j = 0; j < b.cols; j++) {
      let s = 0;
      for (let k = 0; k < a.cols; k++) s += get(a, i, k) * get(b, k, j);
      out[i * b.cols + j] = s;
    }
  return { rows: a.rows, cols: b.cols, data: out };
}

function transpose(a: Matrix): Matrix {
  const out = new Float64Array(a.rows * a.cols);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out[j * a.rows + i] = get(a, i, j);
  return { rows: a.cols, cols: a.rows, data: out };
}

/** Random orthogonal p×p matrix: modified Gram–Schmidt on the columns of a Gaussian matrix. */
function orthogonal(p: number, seed: number): Matrix {
  const a = randn(p, p, seed);
  const cols: number[][] = [];
  for (let j = 0; j < p; j++) {
    const v = Array.from({ length: p }, (_, i) => get(a, i, j));
    for (const c of cols) {
      let d = 0;
      for (let i = 0; i < p; i++) d += c[i]! * v[i]!;
      for (let i = 0; i < p; i++) v[i] = v[i]! - d * c[i]!;
    }
    const norm = Math.hypot(...v);
    cols.push(v.map((t) => t / norm));
  }
  const data = new Float64Array(p * p);
  for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) data[i * p + j] = cols[j]![i]!;
  return { rows: p, cols: p, data };
}

function scale(m: Matrix, c: number): Matrix {
  return { ...m, data: m.data.map((v) => v * c) };
}

// ---- plain reference implementation (explicit H, full sorts, explicit products) -------------

type Dense = number[][];

function refLinearGram(x: Matrix): Dense {
  return Array.from({ length: x.rows }, (_, i) =>
    Array.from({ length: x.rows }, (_, j) => {
      let s = 0;
      for (let a = 0; a < x.cols; a++) s += get(x, i, a) * get(x, j, a);
      return s;
    }),
  );
}

function refRbfGram(x: Matrix, tau: number, includeDiag: boolean): Dense {
  const n = x.rows;
  const d2 = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let a = 0; a < x.cols; a++) s += (get(x, i, a) - get(x, j, a)) ** 2;
      return s;
    }),
  );
  const all: number[] = [];
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (includeDiag || i !== j) all.push(d2[i]![j]!);
  all.sort((a, b) => a - b);
  const m = all.length;
  const med = m % 2 === 1 ? all[(m - 1) / 2]! : (all[m / 2 - 1]! + all[m / 2]!) / 2;
  return d2.map((row) => row.map((v) => Math.exp(-v / (2 * tau * tau * med))));
}

function mm(a: Dense, b: Dense): Dense {
  const n = a.length;
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => {
      let s = 0;
      for (let k = 0; k < n; k++) s += a[i]![k]! * b[k]![j]!;
      return s;
    }),
  );
}

function frob(a: Dense, b: Dense): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) for (let j = 0; j < a.length; j++) s += a[i]![j]! * b[i]![j]!;
  return s;
}

function refBiasedCka(k: Dense, l: Dense): number {
  const n = k.length;
  const h = Array.from({ length: n }, (_, i) =>
    Array.from({ length: n }, (_, j) => (i === j ? 1 : 0) - 1 / n),
  );
  const kc = mm(mm(h, k), h);
  const lc = mm(mm(h, l), h);
  return frob(kc, lc) / Math.sqrt(frob(kc, kc) * frob(lc, lc));
}

function refHsic1(k: Dense, l: Dense): number {
  const n = k.length;
  const kt = k.map((row, i) => row.map((v, j) => (i === j ? 0 : v)));
  const lt = l.map((row, i) => row.map((v, j) => (i === j ? 0 : v)));
  const kl = mm(kt, lt);
  let tr = 0;
  let oneKLone = 0;
  let sk = 0;
  let sl = 0;
  for (let i = 0; i < n; i++) {
    tr += kl[i]![i]!;
    for (let j = 0; j < n; j++) {
      oneKLone += kl[i]![j]!;
      sk += kt[i]![j]!;
      sl += lt[i]![j]!;
    }
  }
  return (tr + (sk * sl) / ((n - 1) * (n - 2)) - (2 / (n - 2)) * oneKLone) / (n * (n - 3));
}

function refDebiasedCka(k: Dense, l: Dense): number {
  return refHsic1(k, l) / Math.sqrt(refHsic1(k, k) * refHsic1(l, l));
}

// ---- tests --------------------------------------------------------------------------------

describe('linear CKA invariances', () => {
  const x = randn(200, 20, 1, 3); // non-zero mean to exercise centring

  it('CKA(X, X) = 1 to 1e-12 in both forms, biased and debiased', () => {
    for (const linearForm of ['feature', 'gram'] as const) {
      expect(Math.abs(cka(x, x, { linearForm }) - 1)).toBeLessThan(1e-12);
      expect(Math.abs(cka(x, x, { linearForm, debiased: true }) - 1)).toBeLessThan(1e-12);
    }
    expect(Math.abs(cka(x, x, { kernel: 'rbf' }) - 1)).toBeLessThan(1e-12);
  });

  it('is invariant to orthogonal maps and isotropic scaling', () => {
    const q = orthogonal(20, 2);
    const qtq = matmul(transpose(q), q);
    for (let i = 0; i < 20; i++)
      for (let j = 0; j < 20; j++) expect(get(qtq, i, j)).toBeCloseTo(i === j ? 1 : 0, 12);
    expect(Math.abs(cka(x, matmul(x, q)) - 1)).toBeLessThan(1e-12);
    expect(Math.abs(cka(x, matmul(x, q), { debiased: true }) - 1)).toBeLessThan(1e-12);
    expect(Math.abs(cka(x, scale(x, 7.5)) - 1)).toBeLessThan(1e-12);
    expect(Math.abs(cka(x, scale(x, -0.01), { linearForm: 'gram' }) - 1)).toBeLessThan(1e-12);
    expect(Math.abs(cka(x, scale(x, 3), { kernel: 'rbf' }) - 1)).toBeLessThan(1e-12);
  });

  it('is not invariant to a general invertible linear map', () => {
    // A = Q diag(1, 1e-3, ...) Q', condition number 1e3
    const q = orthogonal(20, 3);
    const d = new Float64Array(400);
    for (let i = 0; i < 20; i++) d[i * 21] = i === 0 ? 1 : 1e-3;
    const a = matmul(matmul(q, { rows: 20, cols: 20, data: d }), transpose(q));
    const v = cka(x, matmul(x, a));
    expect(v).toBeLessThan(0.5);
    expect(v).toBeGreaterThan(0);
  });
});

describe('independent Gaussian representations (p = q = 50)', () => {
  it('biased CKA is inflated at small n and shrinks with n; debiased stays near 0', () => {
    const res = [60, 2000].map((n) => {
      const x = randn(n, 50, 10 + n);
      const y = randn(n, 50, 20 + n);
      return { n, biased: cka(x, y), debiased: cka(x, y, { debiased: true }) };
    });
    const [small, large] = res as [(typeof res)[0], (typeof res)[0]];
    expect(small.biased).toBeGreaterThan(0.3);
    expect(large.biased).toBeLessThan(0.1);
    expect(large.biased).toBeLessThan(small.biased / 4);
    expect(Math.abs(small.debiased)).toBeLessThan(0.05);
    expect(Math.abs(large.debiased)).toBeLessThan(0.05);
  });
});

describe('forms agree', () => {
  it('linear feature-space form equals the linear Gram form to 1e-10 (biased and debiased)', () => {
    for (const [n, p, q, seed] of [
      [50, 7, 11, 4],
      [300, 40, 25, 5],
    ] as const) {
      const x = randn(n, p, seed, 2);
      const y = matmul(x, randn(p, q, seed + 1));
      const yn = { ...y, data: y.data.map((v, i) => v + 3 * Math.sin(i)) };
      for (const debiased of [false, true]) {
        const f = cka(x, yn, { linearForm: 'feature', debiased });
        const g = cka(x, yn, { linearForm: 'gram', debiased });
        expect(Math.abs(f - g)).toBeLessThan(1e-10);
        expect(f).toBeGreaterThan(0.05);
      }
    }
  });

  it('float32 and float64 storage of the same values give the same result', () => {
    const x = randn(80, 6, 6);
    const y = randn(80, 9, 7);
    const x32 = { ...x, data: Float32Array.from(x.data) };
    const x64 = { ...x, data: Float64Array.from(x32.data) };
    expect(cka(x32, y)).toBe(cka(x64, y));
    expect(cka(x32, y, { kernel: 'rbf', debiased: true })).toBe(
      cka(x64, y, { kernel: 'rbf', debiased: true }),
    );
  });
});

describe('against a plain float64 reference (explicit H)', () => {
  const x = randn(23, 5, 8, 1);
  const y0 = randn(23, 4, 9);
  // make y related to x so values are not near 0
  const y = { ...y0, data: y0.data.map((v, i) => v + 0.8 * get(x, Math.floor(i / 4), i % 4) ** 2) };

  it('linear biased and debiased', () => {
    const k = refLinearGram(x);
    const l = refLinearGram(y);
    for (const linearForm of ['feature', 'gram'] as const) {
      expect(Math.abs(cka(x, y, { linearForm }) - refBiasedCka(k, l))).toBeLessThan(1e-12);
      expect(Math.abs(cka(x, y, { linearForm, debiased: true }) - refDebiasedCka(k, l))).toBeLessThan(1e-12);
    }
  });

  it('RBF biased and debiased, median with and without the diagonal, several τ', () => {
    for (const includeDiag of [true, false]) {
      for (const tau of [0.5, 1, 0.2]) {
        const k = refRbfGram(x, tau, includeDiag);
        const l = refRbfGram(y, tau, includeDiag);
        const opts = { kernel: 'rbf' as const, rbfThreshold: tau, medianIncludesDiagonal: includeDiag };
        const b = cka(x, y, opts);
        const d = cka(x, y, { ...opts, debiased: true });
        expect(Math.abs(b - refBiasedCka(k, l))).toBeLessThan(1e-12);
        expect(Math.abs(d - refDebiasedCka(k, l))).toBeLessThan(1e-12);
        expect(b).toBeGreaterThan(0.1);
      }
    }
    // the diagonal convention matters
    expect(cka(x, y, { kernel: 'rbf' })).not.toBe(
      cka(x, y, { kernel: 'rbf', medianIncludesDiagonal: false }),
    );
  });

  it('medianOfDistances matches a full sort for odd and even n', () => {
    for (const n of [4, 5, 6, 7]) {
      const g = gaussian(n);
      const upper = Float64Array.from({ length: (n * (n - 1)) / 2 }, () => Math.round(Math.abs(g()) * 4));
      for (const includeDiag of [true, false]) {
        const all: number[] = [];
        for (const v of upper) all.push(v, v);
        if (includeDiag) for (let i = 0; i < n; i++) all.push(0);
        all.sort((a, b) => a - b);
        const m = all.length;
        const want = m % 2 ? all[(m - 1) / 2]! : (all[m / 2 - 1]! + all[m / 2]!) / 2;
        expect(medianOfDistances(Float64Array.from(upper), n, includeDiag)).toBe(want);
      }
    }
  });
});

describe('minibatch CKA', () => {
  it('with one batch equals debiased CKA of that batch', () => {
    const x = randn(40, 6, 11);
    const y = randn(40, 8, 12);
    for (const kernel of ['linear', 'rbf'] as const) {
      expect(
        Math.abs(minibatchCka([[x, y]], { kernel }) - cka(x, y, { kernel, debiased: true })),
      ).toBeLessThan(1e-14);
    }
  });

  it('sums HSIC₁ over batches (matches the reference), and is 1 for identical inputs', () => {
    const batches = [0, 1, 2].map((b) => {
      const x = randn(12, 3, 30 + b);
      const y = { ...x, data: x.data.map((v, i) => v + 0.5 * Math.cos(i + b)) };
      return [x, y] as [Matrix, Matrix];
    });
    let kl = 0;
    let kk = 0;
    let ll = 0;
    for (const [x, y] of batches) {
      const k = refLinearGram(x);
      const l = refLinearGram(y);
      kl += refHsic1(k, l);
      kk += refHsic1(k, k);
      ll += refHsic1(l, l);
    }
    const got = minibatchCka(batches);
    expect(Math.abs(got - kl / Math.sqrt(kk * ll))).toBeLessThan(1e-12);
    expect(Math.abs(minibatchCka(batches.map(([x]) => [x, x])) - 1)).toBeLessThan(1e-12);
  });

  it('rejects unequal batch sizes, tiny batches and no batches', () => {
    const a = randn(8, 2, 1);
    const b = randn(9, 2, 2);
    expect(() =>
      minibatchCka([
        [a, a],
        [b, b],
      ]),
    ).toThrow(/equal size/);
    expect(() => minibatchCka([[randn(3, 2, 1), randn(3, 2, 2)]])).toThrow(/n >= 4/);
    expect(() => minibatchCka([])).toThrow(/no batches/);
  });
});

describe('errors and degenerate inputs', () => {
  it('debiased with n < 4 throws', () => {
    const x = randn(3, 2, 1);
    expect(() => cka(x, x, { debiased: true })).toThrow(/n >= 4/);
    expect(() => cka(x, x, { debiased: true, kernel: 'rbf' })).toThrow(/n >= 4/);
    expect(Number.isFinite(cka(randn(4, 2, 1), randn(4, 2, 2), { debiased: true }))).toBe(true);
  });

  it('row mismatch names both shapes', () => {
    expect(() => cka(randn(10, 3, 1), randn(11, 4, 2))).toThrow(/10x3.*11x4/);
    expect(() => cka({ rows: 2, cols: 2, data: new Float64Array(3) }, randn(2, 2, 1))).toThrow(
      /needs 4 values/,
    );
    const bad = randn(5, 2, 1);
    bad.data[3] = Number.NaN;
    expect(() => cka(bad, bad)).toThrow(/non-finite/);
  });

  it('a constant column contributes nothing; the result is finite', () => {
    const x = randn(100, 5, 3);
    const y = randn(100, 4, 4);
    const xc = { rows: 100, cols: 6, data: new Float64Array(600) };
    for (let i = 0; i < 100; i++) {
      for (let a = 0; a < 5; a++) xc.data[i * 6 + a] = get(x, i, a);
      xc.data[i * 6 + 5] = 0.1; // constant
    }
    for (const linearForm of ['feature', 'gram'] as const) {
      for (const debiased of [false, true]) {
        const v = cka(xc, y, { linearForm, debiased });
        expect(Number.isFinite(v)).toBe(true);
        expect(Math.abs(v - cka(x, y, { linearForm, debiased }))).toBeLessThan(1e-10);
      }
    }
  });

  it('a zero-variance representation gives 0 (not NaN) for every kernel/estimator', () => {
    const y = randn(30, 4, 5);
    const c = { rows: 30, cols: 3, data: new Float32Array(90).fill(0.1) };
    for (const kernel of ['linear', 'rbf'] as const) {
      for (const debiased of [false, true]) {
        expect(cka(c, y, { kernel, debiased })).toBe(0);
        expect(cka(y, c, { kernel, debiased })).toBe(0);
        expect(cka(c, c, { kernel, debiased })).toBe(0);
      }
      expect(minibatchCka([[c, y]], { kernel })).toBe(0);
    }
  });

  it('RBF with median distance 0 uses the bandwidth → 0 limit (finite)', () => {
    // 7 of 8 rows identical: > half of d² entries are 0
    const x = { rows: 8, cols: 2, data: new Float64Array(16) };
    x.data[14] = 1;
    const y = randn(8, 2, 9);
    const v = cka(x, y, { kernel: 'rbf' });
    expect(Number.isFinite(v)).toBe(true);
    expect(cka(x, x, { kernel: 'rbf' })).toBeCloseTo(1, 12);
  });
});

describe('angularCka', () => {
  it('is arccos of the clipped value', () => {
    expect(angularCka(1)).toBe(0);
    expect(angularCka(1 + 1e-15)).toBe(0);
    expect(angularCka(0)).toBeCloseTo(Math.PI / 2, 15);
    expect(angularCka(-2)).toBeCloseTo(Math.PI, 15);
    expect(angularCka(0.5)).toBeCloseTo(Math.acos(0.5), 15);
  });
});

describe('efficiency', () => {
  it('linear CKA at n = 5000, p = q = 512 uses the feature-space form (well under 10 s)', () => {
    const x = randn(5000, 512, 1);
    const y = { ...x, data: Float32Array.from(x.data, (v, i) => v + Math.sin(i)) };
    const t0 = performance.now();
    const v = cka(x, y);
    const dt = performance.now() - t0;
    expect(v).toBeGreaterThan(0.1);
    expect(v).toBeLessThan(1);
    expect(dt).toBeLessThan(10_000);
  }, 60_000);
});

// ---- optional numpy cross-check (Kornblith's reference code) -------------------------------

const python = '/usr/bin/python3';
const hasNumpy = spawnSync(python, ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

describe('numpy cross-check (fixtures/reference/cka_reference.py)', () => {
  it.skipIf(!hasNumpy)('matches Kornblith et al. reference code for linear/RBF, biased/debiased', () => {
    const x = randn(37, 6, 40, 1);
    const y0 = randn(37, 5, 41);
    const y = { ...y0, data: y0.data.map((v, i) => v + Math.tanh(get(x, Math.floor(i / 5), i % 5))) };
    const rows = (m: Matrix) =>
      Array.from({ length: m.rows }, (_, i) => Array.from(m.data.subarray(i * m.cols, (i + 1) * m.cols)));
    const script = fixturePath('reference', 'cka_reference.py');
    const res = spawnSync(python, [script], {
      input: JSON.stringify({ x: rows(x), y: rows(y), tau: 0.5 }),
      encoding: 'utf8',
    });
    expect(res.status, res.stderr).toBe(0);
    const ref = JSON.parse(res.stdout) as Record<'linear' | 'rbf', { biased: number; debiased: number }>;
    for (const kernel of ['linear', 'rbf'] as const) {
      expect(Math.abs(cka(x, y, { kernel }) - ref[kernel].biased)).toBeLessThan(1e-10);
      expect(Math.abs(cka(x, y, { kernel, debiased: true }) - ref[kernel].debiased)).toBeLessThan(1e-10);
    }
  });
});
