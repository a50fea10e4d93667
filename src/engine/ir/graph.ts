/**
 * A small static-shape tensor graph IR that maps one-to-one onto ONNX operators.
 *
 * Every node has a known shape and element type, so reverse-mode differentiation
 * ({@link ./autodiff.ts}) can write backward rules as ordinary graph ops — which makes the
 * transform applicable twice (exact Hessian-vector products). Graphs are emitted as ONNX by
 * {@link ../onnx/emit.ts}.
 */

/** Element types the IR knows. `float` nodes take the graph's float type (float32 or float64). */
export type DType = 'float' | 'bool' | 'int64';

/** Attribute values the emitted ONNX ops need. */
export type AttrValue = number | number[] | string;

/** One operation. `op` is the ONNX op type, except for the IR-only ops `Input` and `Const`. */
export interface Node {
  readonly id: number;
  readonly op: string;
  readonly inputs: readonly Tensor[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
  readonly shape: readonly number[];
  readonly dtype: DType;
  /** Graph input name (Input nodes) or constant payload (Const nodes). */
  readonly name?: string;
  readonly value?: Float64Array | BigInt64Array;
}

/** A handle to a node's output. */
export interface Tensor {
  readonly graph: Graph;
  readonly node: Node;
}

const sizeOf = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** NumPy broadcasting of two shapes; throws with both shapes when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    }
    out.push(Math.max(da, db));
  }
  return out;
}

/** A graph under construction. Nodes are appended in topological order. */
export class Graph {
  readonly nodes: Node[] = [];
  private readonly inputNames = new Set<string>();

  private push(
    op: string,
    inputs: readonly Tensor[],
    shape: readonly number[],
    dtype: DType,
    attrs: Record<string, AttrValue> = {},
    extra: Pick<Node, 'name' | 'value'> = {},
  ): Tensor {
    for (const t of inputs) {
      if (t.graph !== this) throw new Error(`${op}: input tensor belongs to another graph`);
    }
    const node: Node = { id: this.nodes.length, op, inputs, attrs, shape: [...shape], dtype, ...extra };
    this.nodes.push(node);
    return { graph: this, node };
  }

  /** A named graph input. */
  input(name: string, shape: readonly number[], dtype: DType = 'float'): Tensor {
    if (this.inputNames.has(name)) throw new Error(`duplicate graph input '${name}'`);
    this.inputNames.add(name);
    return this.push('Input', [], shape, dtype, {}, { name });
  }

  /** A float constant (scalar by default); emitted in the graph's float type. */
  constant(value: number | readonly number[], shape: readonly number[] = []): Tensor {
    const data = Float64Array.from(typeof value === 'number' ? [value] : value);
    if (data.length !== sizeOf(shape)) {
      throw new Error(`constant of shape [${shape}] needs ${sizeOf(shape)} values, got ${data.length}`);
    }
    return this.push('Const', [], shape, 'float', {}, { value: data });
  }

  /** An int64 constant vector (shapes, axes, slice bounds). */
  ints(values: readonly number[]): Tensor {
    return this.push(
      'Const',
      [],
      [values.length],
      'int64',
      {},
      { value: BigInt64Array.from(values, BigInt) },
    );
  }

  private binary(op: string, a: Tensor, b: Tensor): Tensor {
    return this.push(op, [a, b], broadcastShapes(a.node.shape, b.node.shape), 'float');
  }
  private unary(op: string, x: Tensor): Tensor {
    return this.push(op, [x], x.node.shape, 'float');
  }
  private scalarOr(x: Tensor | number): Tensor {
    return typeof x === 'number' ? this.constant(x) : x;
  }

  add(a: Tensor, b: Tensor | number): Tensor {
    return this.binary('Add', a, this.scalarOr(b));
  }
  sub(a: Tensor | number, b: Tensor | number): Tensor {
    return this.binary('Sub', this.scalarOr(a), this.scalarOr(b));
  }
  mul(a: Tensor, b: Tensor | number): Tensor {
    return this.binary('Mul', a, this.scalarOr(b));
  }
  div(a: Tensor | number, b: Tensor | number): Tensor {
    return this.binary('Div', this.scalarOr(a), this.scalarOr(b));
  }
  neg(x: Tensor): Tensor {
    return this.unary('Neg', x);
  }
  relu(x: Tensor): Tensor {
    return this.unary('Relu', x);
  }
  tanh(x: Tensor): Tensor {
    return this.unary('Tanh', x);
  }
  exp(x: Tensor): Tensor {
    return this.unary('Exp', x);
  }
  log(x: Tensor): Tensor {
    return this.unary('Log', x);
  }
  sqrt(x: Tensor): Tensor {
    return this.unary('Sqrt', x);
  }
  /** log(softmax(x)) along the last axis (numerically stable; one ONNX op). */
  logSoftmax(x: Tensor): Tensor {
    return this.push('LogSoftmax', [x], x.node.shape, 'float', { axis: x.node.shape.length - 1 });
  }
  /**
   * op(A) · op(B) (+ C) for 2-D A, B, op = transpose when the flag is set (ONNX Gemm, alpha = beta
   * = 1). `c`, when given, must broadcast to the [m, n] result (a bias [n]).
   */
  gemm(a: Tensor, b: Tensor, transA = false, transB = false, c?: Tensor): Tensor {
    const [ar, ac] = a.node.shape;
    const [br, bc] = b.node.shape;
    if (a.node.shape.length !== 2 || b.node.shape.length !== 2) {
      throw new Error(`Gemm needs 2-D inputs, got [${a.node.shape}] and [${b.node.shape}]`);
    }
    const [m, k] = transA ? [ac, ar] : [ar, ac];
    const [k2, n] = transB ? [bc, br] : [br, bc];
    if (k !== k2) throw new Error(`Gemm inner dimensions differ: [${a.node.shape}] x [${b.node.shape}]`);
    const shape = [m as number, n as number];
    if (c) {
      const out = broadcastShapes(c.node.shape, shape);
      if (c.node.shape.length > 2 || out[0] !== shape[0] || out[1] !== shape[1]) {
        throw new Error(`Gemm: C [${c.node.shape}] does not broadcast to [${shape}]`);
      }
    }
    return this.push('Gemm', c ? [a, b, c] : [a, b], shape, 'float', {
      transA: transA ? 1 : 0,
      transB: transB ? 1 : 0,
    });
  }

  /**
   * ONNX MatMul: matrix product over the last two axes with NumPy broadcasting of the leading
   * (batch) axes, e.g. [B, in] · [R, in, out] → [R, B, out]. Both inputs need rank ≥ 2.
   */
  matmul(a: Tensor, b: Tensor): Tensor {
    const sa = a.node.shape;
    const sb = b.node.shape;
    if (sa.length < 2 || sb.length < 2) {
      throw new Error(`MatMul needs inputs of rank >= 2, got [${sa}] and [${sb}]`);
    }
    const [m, k] = sa.slice(-2) as [number, number];
    const [k2, n] = sb.slice(-2) as [number, number];
    if (k !== k2) throw new Error(`MatMul inner dimensions differ: [${sa}] x [${sb}]`);
    let batch: number[];
    try {
      batch = broadcastShapes(sa.slice(0, -2), sb.slice(0, -2));
    } catch {
      throw new Error(`MatMul batch dimensions do not broadcast: [${sa}] x [${sb}]`);
    }
    return this.push('MatMul', [a, b], [...batch, m, n], 'float');
  }

  /** Permute the axes: output axis i is input axis `perm[i]` (default: reverse all axes). */
  transpose(x: Tensor, perm?: readonly number[]): Tensor {
    const rank = x.node.shape.length;
    const p = perm ? [...perm] : x.node.shape.map((_, i) => rank - 1 - i);
    if (p.length !== rank || [...p].sort((u, v) => u - v).some((v, i) => v !== i)) {
      throw new Error(`transpose: [${p}] is not a permutation of the ${rank} axes of [${x.node.shape}]`);
    }
    return this.push(
      'Transpose',
      [x],
      p.map((i) => x.node.shape[i] as number),
      x.node.dtype,
      { perm: p },
    );
  }

  /** Sum over `axes` (all axes when omitted). */
  reduceSum(x: Tensor, axes?: readonly number[], keepdims = false): Tensor {
    const rank = x.node.shape.length;
    const ax = (axes ?? x.node.shape.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a));
    const shape = reducedShape(x.node.shape, ax, keepdims);
    return this.push('ReduceSum', [x, this.ints(ax)], shape, 'float', { keepdims: keepdims ? 1 : 0 });
  }

  /** The same values in `shape`; `x` itself when the shape is unchanged (no Reshape node). */
  reshape(x: Tensor, shape: readonly number[]): Tensor {
    if (sizeOf(shape) !== sizeOf(x.node.shape)) {
      throw new Error(`cannot reshape [${x.node.shape}] to [${shape}]`);
    }
    if (shape.length === x.node.shape.length && shape.every((d, i) => d === x.node.shape[i])) return x;
    return this.push('Reshape', [x, this.ints(shape)], shape, x.node.dtype);
  }

  /** Broadcast x to `shape`. */
  expand(x: Tensor, shape: readonly number[]): Tensor {
    const out = broadcastShapes(x.node.shape, shape);
    if (out.length !== shape.length || out.some((d, i) => d !== shape[i])) {
      throw new Error(`cannot expand [${x.node.shape}] to [${shape}]`);
    }
    return this.push('Expand', [x, this.ints(shape)], shape, x.node.dtype);
  }

  /** Elements [start, end) along `axis`. */
  slice(x: Tensor, start: number, end: number, axis = 0): Tensor {
    const shape = [...x.node.shape];
    shape[axis] = end - start;
    return this.push(
      'Slice',
      [x, this.ints([start]), this.ints([end]), this.ints([axis])],
      shape,
      x.node.dtype,
    );
  }

  concat(xs: readonly Tensor[], axis = 0): Tensor {
    const first = xs[0];
    if (!first) throw new Error('concat of nothing');
    const shape = [...first.node.shape];
    shape[axis] = xs.reduce((s, t) => s + (t.node.shape[axis] as number), 0);
    return this.push('Concat', xs, shape, first.node.dtype, { axis });
  }

  /** Zero-pad a 1-D tensor: `before` zeros, then x, then `after` zeros. */
  pad1d(x: Tensor, before: number, after: number): Tensor {
    if (x.node.shape.length !== 1) throw new Error('pad1d needs a 1-D tensor');
    return this.pad(x, before, after, 0);
  }

  /** Zero-pad along one axis: `before` zeros, then x, then `after` zeros (ONNX Pad, constant mode). */
  pad(x: Tensor, before: number, after: number, axis: number): Tensor {
    const rank = x.node.shape.length;
    if (axis < 0 || axis >= rank) throw new Error(`pad: axis ${axis} out of range for [${x.node.shape}]`);
    const pads = new Array<number>(2 * rank).fill(0);
    pads[axis] = before;
    pads[rank + axis] = after;
    const shape = [...x.node.shape];
    shape[axis] = (shape[axis] as number) + before + after;
    return this.push('Pad', [x, this.ints(pads)], shape, 'float');
  }

  /**
   * ONNX Conv (2-D, NCHW) of x [N, C, H, W] with w [O, C / group, kh, kw], no bias. `pads` are
   * [top, left, bottom, right]; output [N, O, H', W'] with H' = ⌊(H + top + bottom − d(kh − 1) − 1) / s⌋ + 1.
   */
  conv(x: Tensor, w: Tensor, options: ConvOptions = {}): Tensor {
    const [n, c, h, wd] = x.node.shape as [number, number, number, number];
    const [o, cg, kh, kw] = w.node.shape as [number, number, number, number];
    if (x.node.shape.length !== 4 || w.node.shape.length !== 4) {
      throw new Error(`Conv needs 4-D input and weight, got [${x.node.shape}] and [${w.node.shape}]`);
    }
    const group = options.group ?? 1;
    const [sh, sw] = options.strides ?? [1, 1];
    const [dh, dw] = options.dilations ?? [1, 1];
    const pads = options.pads ?? [0, 0, 0, 0];
    if (c !== cg * group || o % group !== 0) {
      throw new Error(`Conv: input [${x.node.shape}] and weight [${w.node.shape}] do not fit group ${group}`);
    }
    const out = (len: number, k: number, s: number, d: number, p0: number, p1: number) =>
      Math.floor((len + p0 + p1 - d * (k - 1) - 1) / s) + 1;
    const ho = out(h, kh, sh, dh, pads[0] as number, pads[2] as number);
    const wo = out(wd, kw, sw, dw, pads[1] as number, pads[3] as number);
    if (ho < 1 || wo < 1) throw new Error(`Conv: kernel [${kh}, ${kw}] does not fit input [${x.node.shape}]`);
    return this.push('Conv', [x, w], [n, o, ho, wo], 'float', {
      group,
      strides: [sh, sw],
      dilations: [dh, dw],
      pads: [...pads],
      kernel_shape: [kh, kw],
    });
  }

  /**
   * Maximum along one axis (ONNX ReduceMax, opset 17: axes as an attribute). Its adjoint goes to the
   * first maximum (one element even when several tie), as max pooling routes it.
   */
  reduceMax(x: Tensor, axis: number, keepdims = false): Tensor {
    const ax = axis < 0 ? axis + x.node.shape.length : axis;
    return this.push('ReduceMax', [x], reducedShape(x.node.shape, [ax], keepdims), 'float', {
      axes: [ax],
      keepdims: keepdims ? 1 : 0,
    });
  }

  greater(a: Tensor, b: Tensor | number): Tensor {
    const bb = this.scalarOr(b);
    return this.push('Greater', [a, bb], broadcastShapes(a.node.shape, bb.node.shape), 'bool');
  }
  equal(a: Tensor, b: Tensor): Tensor {
    return this.push('Equal', [a, b], broadcastShapes(a.node.shape, b.node.shape), 'bool');
  }
  /** Cast to the graph's float type. */
  toFloat(x: Tensor): Tensor {
    return this.push('Cast', [x], x.node.shape, 'float');
  }
  argMax(x: Tensor, axis: number): Tensor {
    const shape = x.node.shape.filter((_, i) => i !== axis);
    return this.push('ArgMax', [x], shape, 'int64', { axis, keepdims: 0 });
  }
}

/** Options of {@link Graph.conv} (ONNX Conv attributes). */
export interface ConvOptions {
  readonly strides?: readonly [number, number];
  readonly dilations?: readonly [number, number];
  /** [top, left, bottom, right], each ≥ 0. */
  readonly pads?: readonly [number, number, number, number];
  readonly group?: number;
}

function reducedShape(shape: readonly number[], axes: readonly number[], keepdims: boolean): number[] {
  const out: number[] = [];
  shape.forEach((d, i) => {
    if (!axes.includes(i)) out.push(d);
    else if (keepdims) out.push(1);
  });
  return out;
}
