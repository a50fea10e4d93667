import { describe, expect, test } from 'vitest';
import { gradients } from '../../../src/engine/ir/autodiff.js';
import { broadcastShapes, Graph, type Tensor } from '../../../src/engine/ir/graph.js';
import { OrtJob } from '../../../src/engine/ort/session.js';
import { mulberry32 } from '../../helpers/reference-model.js';

type Build = (g: Graph, a: Tensor, b: Tensor) => Tensor;

/** [name, shape of a, shape of b, op, lower bound of the inputs (for log/sqrt/div)] */
const ops: [string, number[], number[], Build, number][] = [
  ['Add (broadcast)', [3, 4], [4], (g, a, b) => g.add(a, b), -1],
  ['Sub (broadcast)', [3, 1], [3, 4], (g, a, b) => g.sub(a, b), -1],
  ['Mul (broadcast)', [2, 3, 4], [3, 1], (g, a, b) => g.mul(a, b), -1],
  ['Div', [3, 4], [3, 4], (g, a, b) => g.div(a, b), 0.5],
  ['Neg', [5], [5], (g, a, b) => g.mul(g.neg(a), b), -1],
  ['Relu', [4, 3], [4, 3], (g, a, b) => g.mul(g.relu(a), b), -1],
  ['Tanh', [4, 3], [4, 3], (g, a, b) => g.mul(g.tanh(a), b), -1],
  ['Exp', [4, 3], [4, 3], (g, a, b) => g.mul(g.exp(a), b), -1],
  ['Log', [4, 3], [4, 3], (g, a, b) => g.mul(g.log(a), b), 0.5],
  ['Sqrt', [4, 3], [4, 3], (g, a, b) => g.mul(g.sqrt(a), b), 0.5],
  ['LogSoftmax', [3, 4], [3, 4], (g, a, b) => g.mul(g.logSoftmax(a), b), -1],
  ['Gemm', [3, 4], [4, 5], (g, a, b) => g.gemm(a, b), -1],
  ['Gemm transA', [4, 3], [4, 5], (g, a, b) => g.gemm(a, b, true, false), -1],
  ['Gemm transB', [3, 4], [5, 4], (g, a, b) => g.gemm(a, b, false, true), -1],
  ['Gemm transA transB', [4, 3], [5, 4], (g, a, b) => g.gemm(a, b, true, true), -1],
  [
    'Gemm transB with bias C',
    [3, 4],
    [5, 4],
    (g, a, b) => g.gemm(a, b, false, true, g.tanh(g.reduceSum(b, [1]))),
    -1,
  ],
  ['Add bias over leading axes (Gemm with ones)', [2, 3, 4], [4], (g, a, b) => g.mul(g.add(a, b), a), -1],
  [
    'MatMul by a transposed weight (adjoint Wᵀ-free)',
    [2, 3, 4],
    [2, 5, 4],
    (g, a, b) => g.matmul(g.tanh(a), g.transpose(g.mul(b, b), [0, 2, 1])),
    -1,
  ],
  [
    'MatMul [B,in] by a transposed [R,out,in] weight',
    [3, 4],
    [2, 5, 4],
    (g, a, b) => g.matmul(g.mul(a, a), g.transpose(b, [0, 2, 1])),
    -1,
  ],
  ['ReduceSum keepdims', [3, 4], [3, 1], (g, a, b) => g.mul(g.reduceSum(g.mul(a, a), [1], true), b), -1],
  ['ReduceSum', [3, 4], [4], (g, a, b) => g.mul(g.reduceSum(g.mul(a, a), [0]), b), -1],
  ['Reshape', [3, 4], [2, 6], (g, a, b) => g.mul(g.reshape(g.mul(a, a), [2, 6]), b), -1],
  ['Expand', [3, 1], [3, 4], (g, a, b) => g.mul(g.expand(g.mul(a, a), [3, 4]), b), -1],
  ['Slice', [7], [3], (g, a, b) => g.mul(g.slice(g.mul(a, a), 2, 5), b), -1],
  ['Pad', [3], [6], (g, a, b) => g.mul(g.pad1d(g.mul(a, a), 1, 2), b), -1],
  ['Concat', [2, 3], [2, 2], (g, a, b) => g.concat([g.mul(a, a), g.mul(b, b)], 1), -1],
  ['MatMul 2-D', [3, 4], [4, 5], (g, a, b) => g.matmul(a, b), -1],
  ['MatMul [B,in] x [R,in,out] (broadcast A)', [3, 4], [2, 4, 5], (g, a, b) => g.matmul(a, b), -1],
  ['MatMul [R,B,in] x [in,out] (broadcast B)', [2, 3, 4], [4, 5], (g, a, b) => g.matmul(a, b), -1],
  ['MatMul batched', [2, 3, 4], [2, 4, 5], (g, a, b) => g.matmul(a, b), -1],
  ['MatMul size-1 batch axes', [2, 1, 3, 4], [3, 4, 2], (g, a, b) => g.matmul(a, b), -1],
  ['MatMul of products (second order)', [3, 4], [2, 4, 3], (g, a, b) => g.matmul(g.mul(a, a), g.tanh(b)), -1],
  ['Transpose', [2, 3, 4], [4, 2, 3], (g, a, b) => g.mul(g.transpose(g.mul(a, a), [2, 0, 1]), b), -1],
  ['Slice axis 1', [2, 7], [2, 3], (g, a, b) => g.mul(g.slice(g.mul(a, a), 2, 5, 1), b), -1],
  ['Pad axis 1', [2, 3], [2, 6], (g, a, b) => g.mul(g.pad(g.mul(a, a), 1, 2, 1), b), -1],
  [
    'Conv 3×3 pad 1',
    [2, 3, 5, 5],
    [4, 3, 3, 3],
    (g, a, b) => g.conv(g.mul(a, a), g.tanh(b), { pads: [1, 1, 1, 1] }),
    -1,
  ],
  [
    'Conv 3×3 stride 2 pad 1',
    [2, 2, 6, 5],
    [3, 2, 3, 3],
    (g, a, b) => g.conv(g.tanh(a), g.mul(b, b), { strides: [2, 2], pads: [1, 1, 1, 1] }),
    -1,
  ],
  [
    'Conv 1×1 stride 2',
    [2, 3, 5, 6],
    [2, 3, 1, 1],
    (g, a, b) => g.conv(g.mul(a, a), g.tanh(b), { strides: [2, 2] }),
    -1,
  ],
  [
    'Conv 2×3 dilation 2, uneven pads',
    [1, 2, 7, 6],
    [2, 2, 2, 3],
    (g, a, b) => g.conv(g.mul(a, a), g.tanh(b), { dilations: [2, 2], pads: [0, 2, 1, 0] }),
    -1,
  ],
  [
    'Conv grouped (2 groups) stride 2',
    [2, 4, 6, 6],
    [6, 2, 3, 3],
    (g, a, b) => g.conv(g.tanh(a), g.mul(b, b), { strides: [2, 2], pads: [1, 1, 1, 1], group: 2 }),
    -1,
  ],
  [
    'Conv pad larger than kernel reach',
    [1, 1, 4, 4],
    [1, 1, 2, 2],
    (g, a, b) => g.conv(g.mul(a, a), g.tanh(b), { pads: [2, 2, 2, 2] }),
    -1,
  ],
  ['ReduceMax (last axis)', [3, 4], [3], (g, a, b) => g.mul(g.reduceMax(g.mul(a, a), 1), b), -1],
  [
    'ReduceMax (middle axis, keepdims)',
    [2, 5, 3],
    [2, 1, 3],
    (g, a, b) => g.mul(g.reduceMax(g.tanh(a), 1, true), b),
    -1,
  ],
];

const size = (s: number[]) => s.reduce((x, y) => x * y, 1);

/** Scalar f(a, b) = Σ r ⊙ op(a, b) with a fixed random r, its gradient and an HVP, in float64. */
async function compile(shapeA: number[], shapeB: number[], build: Build) {
  const g = new Graph();
  const a = g.input('a', shapeA);
  const b = g.input('b', shapeB);
  const out = build(g, a, b);
  const rand = mulberry32(11);
  const r = g.constant(
    Array.from({ length: size(out.node.shape as number[]) }, () => rand() - 0.5),
    out.node.shape,
  );
  const f = g.reduceSum(g.mul(out, r));
  const [ga, gb] = gradients(f, [a, b]) as [Tensor, Tensor];
  const va = g.input('va', shapeA);
  const vb = g.input('vb', shapeB);
  const inner = g.add(g.reduceSum(g.mul(ga, va)), g.reduceSum(g.mul(gb, vb)));
  const [ha, hb] = gradients(inner, [a, b]) as [Tensor, Tensor];
  const settings = { threads: 1, floatType: 'float64' as const };
  const fJob = await OrtJob.create({ graph: g, outputs: { f } }, settings);
  const gJob = await OrtJob.create({ graph: g, outputs: { ga, gb } }, settings);
  const hJob = await OrtJob.create({ graph: g, outputs: { ha, hb } }, settings);
  const feeds = (av: Float64Array, bv: Float64Array, extra = {}) => ({
    a: { data: av, dims: shapeA },
    b: { data: bv, dims: shapeB },
    ...extra,
  });
  return {
    f: async (av: Float64Array, bv: Float64Array) =>
      ((await fJob.run(feeds(av, bv))).f as Float64Array)[0] as number,
    grad: async (av: Float64Array, bv: Float64Array) => {
      const o = await gJob.run(feeds(av, bv));
      return [o.ga as Float64Array, o.gb as Float64Array] as const;
    },
    hvp: async (av: Float64Array, bv: Float64Array, v1: Float64Array, v2: Float64Array) => {
      const o = await hJob.run(
        feeds(av, bv, { va: { data: v1, dims: shapeA }, vb: { data: v2, dims: shapeB } }),
      );
      return [o.ha as Float64Array, o.hb as Float64Array] as const;
    },
  };
}

describe('backward rules of every op (float64, ONNX Runtime)', () => {
  test.each(ops)(
    '%s: gradient = central differences, Hessian-vector product = differences of gradients',
    async (_n, sa, sb, build, lo) => {
      const job = await compile(sa, sb, build);
      const rand = mulberry32(5);
      // Keep inputs away from Relu's kink and inside the domain of Log/Sqrt/Div.
      const draw = (n: number) =>
        Float64Array.from({ length: n }, () => {
          const u = lo + (1.5 - lo) * rand();
          return lo < 0 && Math.abs(u) < 0.1 ? u + 0.2 : u;
        });
      const a = draw(size(sa));
      const b = draw(size(sb));
      const [ga, gb] = await job.grad(a, b);
      const h = 1e-6;
      for (const [x, gx] of [
        [a, ga],
        [b, gb],
      ] as const) {
        for (let i = 0; i < x.length; i++) {
          const x0 = x[i] as number;
          x[i] = x0 + h;
          const up = await job.f(a, b);
          x[i] = x0 - h;
          const down = await job.f(a, b);
          x[i] = x0;
          expect(Math.abs((up - down) / (2 * h) - (gx[i] as number))).toBeLessThan(1e-8);
        }
      }
      const va = draw(size(sa));
      const vb = draw(size(sb));
      const [ha, hb] = await job.hvp(a, b, va, vb);
      const e = 1e-5;
      const shift = (x: Float64Array, v: Float64Array, s: number) =>
        x.map((t, i) => t + s * (v[i] as number));
      const [pa, pb] = await job.grad(shift(a, va, e), shift(b, vb, e));
      const [ma, mb] = await job.grad(shift(a, va, -e), shift(b, vb, -e));
      ha.forEach((hv, i) =>
        expect(Math.abs(hv - ((pa[i] as number) - (ma[i] as number)) / (2 * e))).toBeLessThan(1e-7),
      );
      hb.forEach((hv, i) =>
        expect(Math.abs(hv - ((pb[i] as number) - (mb[i] as number)) / (2 * e))).toBeLessThan(1e-7),
      );
    },
  );
});

describe('graph construction', () => {
  test('broadcasting follows NumPy and names both shapes on failure', () => {
    expect(broadcastShapes([3, 1], [4])).toEqual([3, 4]);
    expect(broadcastShapes([], [2, 5])).toEqual([2, 5]);
    expect(() => broadcastShapes([3, 2], [4])).toThrow('shapes [3,2] and [4] do not broadcast');
  });

  test('shape errors name the shapes', () => {
    const g = new Graph();
    const a = g.input('a', [3, 4]);
    expect(() => g.gemm(a, a)).toThrow('Gemm inner dimensions differ: [3,4] x [3,4]');
    expect(() => g.reshape(a, [5])).toThrow('cannot reshape [3,4] to [5]');
    expect(() => g.input('a', [1])).toThrow("duplicate graph input 'a'");
    expect(() => g.matmul(a, g.input('w', [2, 5, 4]))).toThrow(
      'MatMul inner dimensions differ: [3,4] x [2,5,4]',
    );
    expect(() => g.matmul(g.input('p', [2, 3, 4]), g.input('q', [3, 4, 5]))).toThrow(
      'MatMul batch dimensions do not broadcast: [2,3,4] x [3,4,5]',
    );
    expect(() => g.matmul(g.input('v', [4]), a)).toThrow('MatMul needs inputs of rank >= 2');
    expect(g.matmul(a, g.input('r', [7, 4, 2])).node.shape).toEqual([7, 3, 2]);
    expect(g.transpose(g.input('t', [2, 3, 4]), [1, 2, 0]).node.shape).toEqual([3, 4, 2]);
    expect(g.transpose(a).node.shape).toEqual([4, 3]);
    expect(() => g.transpose(a, [0, 0])).toThrow('is not a permutation');
  });

  test('gradients of a non-scalar without a seed is an error; unrelated inputs get zeros', async () => {
    const g = new Graph();
    const a = g.input('a', [2]);
    const b = g.input('b', [2]);
    expect(() => gradients(a, [a])).toThrow('y must be a scalar');
    const [gb] = gradients(g.reduceSum(g.mul(a, a)), [b]) as [Tensor];
    const job = await OrtJob.create({ graph: g, outputs: { gb } }, { threads: 1, floatType: 'float64' });
    const out = await job.run({});
    expect(Array.from(out.gb as Float64Array)).toEqual([0, 0]);
  });
});
