/**
 * Reverse-mode automatic differentiation on the IR.
 *
 * Backward rules are written with ordinary, differentiable IR ops, so the result of
 * {@link gradients} can itself be differentiated: ∇⟨∇L(θ), v⟩ is the exact Hessian-vector
 * product H v.
 */
import type { ConvOptions, Graph, Node, Tensor } from './graph.js';

/** Sum `g` over the axes that were broadcast to turn `shape` into `g`'s shape. */
function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  const gs = g.node.shape;
  if (gs.length === shape.length && gs.every((d, i) => d === shape[i])) return g;
  const lead = gs.length - shape.length;
  const axes: number[] = [];
  gs.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
  // Summing away leading axes only (a bias's gradient, [batch, out] → [out]): a Gemm with a row of
  // ones, which is much faster than onnxruntime's ReduceSum over the outer axis.
  if (lead > 0 && axes.length === lead && shape.length > 0) {
    const rows = gs.slice(0, lead).reduce((a, b) => a * b, 1);
    const cols = shape.reduce((a, b) => a * b, 1);
    const ones = g.graph.constant(new Array<number>(rows).fill(1), [1, rows]);
    return g.graph.reshape(g.graph.gemm(ones, g.graph.reshape(g, [rows, cols])), shape);
  }
  const summed = axes.length ? g.graph.reduceSum(g, axes, true) : g;
  return g.graph.reshape(summed, shape);
}

/** Swap the last two axes (the matrix transpose of a batch of matrices). */
function swapLast(g: Graph, x: Tensor): Tensor {
  const rank = x.node.shape.length;
  const perm = x.node.shape.map((_, i) => i);
  perm[rank - 2] = rank - 1;
  perm[rank - 1] = rank - 2;
  return g.transpose(x, perm);
}

/** Whether `perm` swaps the last two axes and keeps the others. */
function isSwapLast(perm: readonly number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm.every((p, i) => (i < r - 2 ? p === i : p === (i === r - 2 ? r - 1 : r - 2)));
}

/** {@link swapLast}, returning the input of `x` when `x` itself swaps the last two axes. */
function swapLastFolded(g: Graph, x: Tensor): Tensor {
  if (x.node.op === 'Transpose' && isSwapLast(x.node.attrs.perm as number[])) return input(x.node, 0);
  return swapLast(g, x);
}

type Rule = (g: Graph, node: Node, out: Tensor, grad: Tensor) => (Tensor | null)[];

/** Insert s − 1 zeros between neighbours along axes 2 and 3 of [N, C, H, W]: [N, C, (H−1)s+1, (W−1)s+1]. */
function dilate(g: Graph, x: Tensor, sh: number, sw: number): Tensor {
  if (sh === 1 && sw === 1) return x;
  const [n, c, h, w] = x.node.shape as [number, number, number, number];
  let t = g.reshape(x, [n, c, h, 1, w, 1]);
  if (sh > 1) t = g.pad(t, 0, sh - 1, 3);
  if (sw > 1) t = g.pad(t, 0, sw - 1, 5);
  t = g.reshape(t, [n, c, h * sh, w * sw]);
  return g.slice(g.slice(t, 0, (h - 1) * sh + 1, 2), 0, (w - 1) * sw + 1, 3);
}

/** Reverse the two spatial axes of a [A, B, kh, kw] kernel (a product with a constant permutation). */
function flipKernel(g: Graph, w: Tensor): Tensor {
  const [a, b, kh, kw] = w.node.shape as [number, number, number, number];
  const k = kh * kw;
  if (k === 1) return w;
  const perm = new Array<number>(k * k).fill(0);
  for (let i = 0; i < k; i++) perm[i * k + (k - 1 - i)] = 1;
  return g.reshape(g.matmul(g.reshape(w, [a * b, k]), g.constant(perm, [k, k])), [a, b, kh, kw]);
}

/** Conv with possibly negative pads: pad by the positive parts, then crop the output to `outLen`. */
function convCropped(
  g: Graph,
  x: Tensor,
  w: Tensor,
  options: Omit<ConvOptions, 'pads'>,
  begin: readonly [number, number],
  end: readonly [number, number],
  outLen: readonly [number, number],
): Tensor {
  const pads = [
    Math.max(begin[0], 0),
    Math.max(begin[1], 0),
    Math.max(end[0], 0),
    Math.max(end[1], 0),
  ] as const;
  let y = g.conv(x, w, { ...options, pads });
  for (const axis of [0, 1] as const) {
    const start = pads[axis] - begin[axis];
    if (start !== 0 || y.node.shape[axis + 2] !== outLen[axis])
      y = g.slice(y, start, start + outLen[axis], axis + 2);
  }
  return y;
}

/**
 * Adjoints of a 2-D convolution Y = conv(X, W) (stride s, dilation d, pads, groups G), written as
 * convolutions so that they differentiate again:
 * - dX = conv(dilate(dY, s), flip(Wᵀ)) with dilation d, stride 1 and pads (k − 1)d − p_begin in front;
 * - dW = conv(Xᵀ, dYᵀ) with the roles of stride and dilation swapped, batch and channel axes
 *   exchanged (per group), cropped to the kernel size.
 */
function convAdjoints(g: Graph, n: Node, d: Tensor): [Tensor, Tensor] {
  const x = input(n, 0);
  const w = input(n, 1);
  const [N, C, H, W] = x.node.shape as [number, number, number, number];
  const [O, Cg, kh, kw] = w.node.shape as [number, number, number, number];
  const [, , Ho, Wo] = d.node.shape as [number, number, number, number];
  const G = n.attrs.group as number;
  const [sh, sw] = n.attrs.strides as [number, number];
  const [dh, dw] = n.attrs.dilations as [number, number];
  const [pt, pl, pb, pr] = n.attrs.pads as [number, number, number, number];
  const Og = O / G;
  // dX: per group, the kernel transposed to [Cg, Og] and flipped.
  let wt =
    G === 1
      ? g.transpose(w, [1, 0, 2, 3])
      : g.reshape(g.transpose(g.reshape(w, [G, Og, Cg, kh, kw]), [0, 2, 1, 3, 4]), [C, Og, kh, kw]);
  wt = flipKernel(g, wt);
  const dd = dilate(g, d, sh, sw);
  const begin = [(kh - 1) * dh - pt, (kw - 1) * dw - pl] as const;
  const end = [
    H - dd.node.shape[2]! - begin[0] + (kh - 1) * dh,
    W - dd.node.shape[3]! - begin[1] + (kw - 1) * dw,
  ] as const;
  const dx = convCropped(g, dd, wt, { dilations: [dh, dw], group: G }, begin, end, [H, W]);
  // dW: X as [Cg, G·N, H, W] (channels within a group become the batch), dY as [O, N, Ho, Wo].
  const xt =
    G === 1
      ? g.transpose(x, [1, 0, 2, 3])
      : g.reshape(g.transpose(g.reshape(x, [N, G, Cg, H, W]), [2, 1, 0, 3, 4]), [Cg, G * N, H, W]);
  const dt =
    G === 1
      ? g.transpose(d, [1, 0, 2, 3])
      : g.reshape(g.transpose(g.reshape(d, [N, G, Og, Ho, Wo]), [1, 2, 0, 3, 4]), [O, N, Ho, Wo]);
  let dwT = g.conv(xt, dt, { strides: [dh, dw], dilations: [sh, sw], pads: [pt, pl, pb, pr], group: G });
  if (dwT.node.shape[2] !== kh) dwT = g.slice(dwT, 0, kh, 2);
  if (dwT.node.shape[3] !== kw) dwT = g.slice(dwT, 0, kw, 3);
  return [dx, g.transpose(dwT, [1, 0, 2, 3])];
}

const input = (node: Node, i: number): Tensor => node.inputs[i] as Tensor;
const shapeOf = (node: Node, i: number): readonly number[] => input(node, i).node.shape;

const noGradient: Rule = (_g, node) => node.inputs.map(() => null);

/** Backward rules by ONNX op type: the adjoint of each input given the adjoint of the output. */
const rules: Record<string, Rule> = {
  Input: noGradient,
  Const: noGradient,
  Greater: noGradient,
  Equal: noGradient,
  ArgMax: noGradient,
  Cast: noGradient,
  Add: (_g, n, _o, d) => [unbroadcast(d, shapeOf(n, 0)), unbroadcast(d, shapeOf(n, 1))],
  Sub: (g, n, _o, d) => [unbroadcast(d, shapeOf(n, 0)), unbroadcast(g.neg(d), shapeOf(n, 1))],
  Mul: (g, n, _o, d) => [
    unbroadcast(g.mul(d, input(n, 1)), shapeOf(n, 0)),
    unbroadcast(g.mul(d, input(n, 0)), shapeOf(n, 1)),
  ],
  Div: (g, n, o, d) => [
    unbroadcast(g.div(d, input(n, 1)), shapeOf(n, 0)),
    unbroadcast(g.neg(g.div(g.mul(d, o), input(n, 1))), shapeOf(n, 1)),
  ],
  Neg: (g, _n, _o, d) => [g.neg(d)],
  Relu: (g, n, _o, d) => [g.mul(d, g.toFloat(g.greater(input(n, 0), 0)))],
  Tanh: (g, _n, o, d) => [g.mul(d, g.sub(1, g.mul(o, o)))],
  Exp: (g, _n, o, d) => [g.mul(d, o)],
  Log: (g, n, _o, d) => [g.div(d, input(n, 0))],
  Sqrt: (g, _n, o, d) => [g.div(d, g.mul(o, 2))],
  // d/dx log softmax(x) = I − softmax(x) 1ᵀ: dx = d − exp(out) · Σ d (along the softmax axis).
  LogSoftmax: (g, n, o, d) => [g.sub(d, g.mul(g.exp(o), g.reduceSum(d, [n.attrs.axis as number], true)))],
  Gemm: (g, n, _o, d) => {
    const a = input(n, 0);
    const b = input(n, 1);
    const tA = n.attrs.transA === 1;
    const tB = n.attrs.transB === 1;
    // Y = op(A) op(B) (+ C). Each case writes dA, dB as Gemms so that they differentiate again;
    // dC is dY summed over the axes C was broadcast along.
    const dc = n.inputs.length > 2 ? [unbroadcast(d, shapeOf(n, 2))] : [];
    if (!tA && !tB) return [g.gemm(d, b, false, true), g.gemm(a, d, true, false), ...dc];
    if (!tA && tB) return [g.gemm(d, b, false, false), g.gemm(d, a, true, false), ...dc];
    if (tA && !tB) return [g.gemm(b, d, false, true), g.gemm(a, d, false, false), ...dc];
    return [g.gemm(b, d, true, true), g.gemm(d, a, true, true), ...dc];
  },
  ReduceSum: (g, n, _o, d) => {
    const x = input(n, 0).node;
    const axes = Array.from(input(n, 1).node.value as BigInt64Array, Number);
    const kept = x.shape.map((s, i) => (axes.includes(i) ? 1 : s));
    const dk = n.attrs.keepdims === 1 ? d : g.reshape(d, kept);
    return [g.expand(dk, x.shape), null];
  },
  Reshape: (g, n, _o, d) => [g.reshape(d, shapeOf(n, 0)), null],
  Expand: (_g, n, _o, d) => [unbroadcast(d, shapeOf(n, 0)), null],
  Slice: (g, n, _o, d) => {
    const x = input(n, 0).node;
    const int = (i: number) => Number((input(n, i).node.value as BigInt64Array)[0]);
    const axis = int(3);
    const dim = x.shape[axis] as number;
    return [g.pad(d, int(1), dim - int(2), axis), null, null, null];
  },
  Pad: (g, n, _o, d) => {
    const shape = shapeOf(n, 0);
    const pads = Array.from(input(n, 1).node.value as BigInt64Array, Number);
    let dx = d;
    shape.forEach((dim, axis) => {
      const before = pads[axis] as number;
      if (before !== 0 || pads[shape.length + axis] !== 0) dx = g.slice(dx, before, before + dim, axis);
    });
    return [dx, null];
  },
  // Y = A·B over the last two axes, batch axes broadcast: dA = dY·Bᵀ, dB = Aᵀ·dY, each summed
  // over the batch axes its input was broadcast along.
  MatMul: (g, n, _o, d) => {
    const a = input(n, 0);
    const b = input(n, 1);
    return [
      unbroadcast(g.matmul(d, swapLast(g, b)), a.node.shape),
      unbroadcast(g.matmul(swapLast(g, a), d), b.node.shape),
    ];
  },
  Conv: (g, n, _o, d) => convAdjoints(g, n, d),
  // The adjoint goes to the first maximum along the axis (ArgMax's first index, as PyTorch's max
  // pooling and tfjs route it): with ties, one element, not every tied one.
  ReduceMax: (g, n, _o, d) => {
    const x = input(n, 0);
    const [axis] = n.attrs.axes as [number];
    const k = x.node.shape[axis] as number;
    const kept = x.node.shape.map((s, i) => (i === axis ? 1 : s));
    const dk = n.attrs.keepdims === 1 ? d : g.reshape(d, kept);
    const first = g.reshape(g.argMax(x, axis), kept);
    const positions = g.reshape(
      g.ints(Array.from({ length: k }, (_, i) => i)),
      x.node.shape.map((_, i) => (i === axis ? k : 1)),
    );
    const mask = g.toFloat(g.equal(first, positions));
    return [g.mul(g.expand(dk, x.node.shape), mask)];
  },
  Transpose: (g, n, _o, d) => {
    const perm = n.attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
    // (Aᵀ·B)ᵀ = Bᵀ·A: the adjoint of a transposed weight (MatMul(h, Wᵀ)) is computed directly as
    // dYᵀ·h instead of (hᵀ·dY)ᵀ, without the extra Transpose of the product.
    if (d.node.op === 'MatMul' && isSwapLast(perm) && d.node.shape.length === perm.length) {
      const [a, b] = d.node.inputs as [Tensor, Tensor];
      return [g.matmul(swapLastFolded(g, b), swapLastFolded(g, a))];
    }
    return [g.transpose(d, inverse)];
  },
  Concat: (g, n, _o, d) => {
    const axis = n.attrs.axis as number;
    let start = 0;
    return n.inputs.map((t) => {
      const len = t.node.shape[axis] as number;
      const piece = g.slice(d, start, start + len, axis);
      start += len;
      return piece;
    });
  },
};

/**
 * Gradients of `y` with respect to each tensor in `wrt`. `y` must be a scalar unless `seed`
 * (the adjoint of y, same shape) is given. Tensors `y` does not depend on get zero gradients.
 */
export function gradients(y: Tensor, wrt: readonly Tensor[], seed?: Tensor): Tensor[] {
  const g = y.graph;
  if (!seed && y.node.shape.length !== 0) {
    throw new Error(`gradients: y must be a scalar (shape []), got [${y.node.shape}]`);
  }
  // Nodes on a path from some wrt tensor to y: forward-reachable from wrt and needed by y.
  const fromWrt = new Set<number>(wrt.map((t) => t.node.id));
  for (const node of g.nodes) {
    if (node.id > y.node.id) break;
    if (node.inputs.some((t) => fromWrt.has(t.node.id))) fromWrt.add(node.id);
  }
  const adjoint = new Map<number, Tensor>([[y.node.id, seed ?? g.constant(1)]]);
  for (let id = y.node.id; id >= 0; id--) {
    const node = g.nodes[id] as Node;
    const d = adjoint.get(id);
    if (!d || !fromWrt.has(id) || node.inputs.length === 0) continue;
    const rule = rules[node.op];
    if (!rule) throw new Error(`no gradient rule for op ${node.op}`);
    const grads = rule(g, node, { graph: g, node }, d);
    node.inputs.forEach((t, i) => {
      const gi = grads[i];
      if (!gi || !fromWrt.has(t.node.id)) return;
      const prev = adjoint.get(t.node.id);
      adjoint.set(t.node.id, prev ? g.add(prev, gi) : gi);
    });
  }
  return wrt.map((t) => adjoint.get(t.node.id) ?? g.expand(g.constant(0), t.node.shape));
}
