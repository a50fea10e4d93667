/**
 * Reverse-mode automatic differentiation on the IR.
 *
 * Backward rules are written with ordinary, differentiable IR ops, so the result of
 * {@link gradients} can itself be differentiated: ∇⟨∇L(θ), v⟩ is the exact Hessian-vector
 * product H v.
 */
import type { Graph, Node, Tensor } from './graph.js';

/** Sum `g` over the axes that were broadcast to turn `shape` into `g`'s shape. */
function unbroadcast(g: Tensor, shape: readonly number[]): Tensor {
  const gs = g.node.shape;
  if (gs.length === shape.length && gs.every((d, i) => d === shape[i])) return g;
  const lead = gs.length - shape.length;
  const axes: number[] = [];
  gs.forEach((d, i) => {
    if (i < lead || (shape[i - lead] === 1 && d !== 1)) axes.push(i);
  });
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

type Rule = (g: Graph, node: Node, out: Tensor, grad: Tensor) => (Tensor | null)[];

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
    // Y = op(A) op(B). Each case writes dA, dB as Gemms so that they differentiate again.
    if (!tA && !tB) return [g.gemm(d, b, false, true), g.gemm(a, d, true, false)];
    if (!tA && tB) return [g.gemm(d, b, false, false), g.gemm(d, a, true, false)];
    if (tA && !tB) return [g.gemm(b, d, false, true), g.gemm(a, d, false, false)];
    return [g.gemm(b, d, true, true), g.gemm(d, a, true, true)];
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
  Transpose: (g, n, _o, d) => {
    const perm = n.attrs.perm as number[];
    const inverse = perm.map((_, i) => perm.indexOf(i));
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
