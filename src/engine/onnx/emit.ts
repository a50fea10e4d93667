/**
 * Emit an IR graph as a serialized ONNX model (opset 17), using the `onnx-proto` message classes.
 *
 * Only the nodes the requested outputs depend on are emitted. Graph inputs keep their names;
 * outputs are renamed with Identity nodes. Float nodes take `floatType`, so the same graph serves
 * float32 training and float64 gradient checks.
 */
import onnxProto from 'onnx-proto';
import type { Graph, Node, Tensor } from '../ir/graph.js';

const { onnx } = onnxProto;
const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** The float element type of an emitted graph. */
export type FloatType = 'float32' | 'float64';

/** The ONNX opset the IR's op signatures follow (ReduceSum axes as an input). */
const OPSET = 17;

function elemType(dtype: Node['dtype'], floatType: FloatType): number {
  if (dtype === 'bool') return DataType.BOOL;
  if (dtype === 'int64') return DataType.INT64;
  return floatType === 'float64' ? DataType.DOUBLE : DataType.FLOAT;
}

function valueInfo(name: string, node: Node, floatType: FloatType): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: elemType(node.dtype, floatType),
        shape: { dim: node.shape.map((d) => ({ dimValue: d })) },
      },
    },
  };
}

function constantTensor(node: Node, floatType: FloatType): onnxProto.onnx.ITensorProto {
  const value = node.value as Float64Array | BigInt64Array;
  let raw: ArrayBufferView;
  if (node.dtype === 'int64') raw = value;
  else raw = floatType === 'float64' ? value : Float32Array.from(value as Float64Array);
  return {
    name: `t${node.id}`,
    dims: [...node.shape],
    dataType: elemType(node.dtype, floatType),
    rawData: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength),
  };
}

function attribute(name: string, value: number | number[] | string): onnxProto.onnx.IAttributeProto {
  if (typeof value === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttrType.INTS, ints: value };
  return { name, type: AttrType.INT, i: value };
}

/** Ids of the nodes the given outputs depend on, in ascending (topological) order. */
function liveNodes(graph: Graph, outputs: readonly Tensor[]): Node[] {
  const live = new Set<number>();
  const stack = outputs.map((t) => t.node);
  while (stack.length) {
    const node = stack.pop() as Node;
    if (live.has(node.id)) continue;
    live.add(node.id);
    for (const t of node.inputs) stack.push(t.node);
  }
  return graph.nodes.filter((n) => live.has(n.id));
}

const valueName = (node: Node): string => (node.op === 'Input' ? (node.name as string) : `t${node.id}`);

type GraphProto = onnxProto.onnx.IGraphProto;

/** The ONNX GraphProto computing `outputs` (name → tensor) from the graph's live inputs. */
function graphProto(
  graph: Graph,
  outputs: Readonly<Record<string, Tensor>>,
  floatType: FloatType,
  name = 'twinscope',
): GraphProto {
  const entries = Object.entries(outputs);
  const nodes = liveNodes(
    graph,
    entries.map(([, t]) => t),
  );
  const inputs: onnxProto.onnx.IValueInfoProto[] = [];
  const initializer: onnxProto.onnx.ITensorProto[] = [];
  const protoNodes: onnxProto.onnx.INodeProto[] = [];
  for (const node of nodes) {
    if (node.op === 'Input') {
      inputs.push(valueInfo(node.name as string, node, floatType));
      continue;
    }
    if (node.op === 'Const') {
      initializer.push(constantTensor(node, floatType));
      continue;
    }
    if (node.op === 'Conv' && floatType === 'float64') {
      const lowered = lowerConv(node);
      protoNodes.push(...lowered.nodes);
      initializer.push(...lowered.constants);
      continue;
    }
    const attrs = { ...node.attrs };
    if (node.op === 'Cast') attrs.to = elemType('float', floatType);
    protoNodes.push({
      name: `n${node.id}`,
      opType: node.op,
      input: node.inputs.map((t) => valueName(t.node)),
      output: [valueName(node)],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
  }
  for (const [out, t] of entries) {
    protoNodes.push({ name: `out_${out}`, opType: 'Identity', input: [valueName(t.node)], output: [out] });
  }
  return {
    name,
    node: protoNodes,
    initializer,
    input: inputs,
    output: entries.map(([out, t]) => valueInfo(out, t.node, floatType)),
  };
}

/**
 * A float64 Conv as standard ops (onnxruntime's CPU Conv kernel is float32 only): pad, one strided
 * Slice per kernel tap stacked into columns [N, G, Cg·kh·kw, H'·W'], and a MatMul with the kernel
 * [G, O/G, Cg·kh·kw]. Same definition as Conv, so float64 gradient checks exercise the same rules.
 */
function lowerConv(node: Node): {
  nodes: onnxProto.onnx.INodeProto[];
  constants: onnxProto.onnx.ITensorProto[];
} {
  const x = node.inputs[0] as Tensor;
  const w = node.inputs[1] as Tensor;
  const n = x.node.shape[0] as number;
  const [o, cg, kh, kw] = w.node.shape as [number, number, number, number];
  const [, , ho, wo] = node.shape as [number, number, number, number];
  const G = node.attrs.group as number;
  const [sh, sw] = node.attrs.strides as [number, number];
  const [dh, dw] = node.attrs.dilations as [number, number];
  const [pt, pl, pb, pr] = node.attrs.pads as [number, number, number, number];
  const base = `t${node.id}`;
  const constants: onnxProto.onnx.ITensorProto[] = [];
  const ints = (name: string, values: readonly number[]) => {
    const raw = BigInt64Array.from(values, BigInt);
    constants.push({
      name: `${base}_${name}`,
      dims: [values.length],
      dataType: DataType.INT64,
      rawData: new Uint8Array(raw.buffer),
    });
    return `${base}_${name}`;
  };
  const nodes: onnxProto.onnx.INodeProto[] = [];
  const op = (
    opType: string,
    input: string[],
    output: string,
    attrs: Record<string, number | number[]> = {},
  ) => {
    nodes.push({
      name: `${base}_${output}`,
      opType,
      input,
      output: [output],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return output;
  };
  const xp = op('Pad', [valueName(x.node), ints('pads', [0, 0, pt, pl, 0, 0, pb, pr])], `${base}_xp`);
  const taps: string[] = [];
  const axes = ints('axes', [2, 3]);
  const steps = ints('steps', [sh, sw]);
  const unsq = ints('unsq', [2]);
  for (let a = 0; a < kh; a++) {
    for (let b = 0; b < kw; b++) {
      const starts = ints(`s${a}_${b}`, [a * dh, b * dw]);
      const ends = ints(`e${a}_${b}`, [a * dh + (ho - 1) * sh + 1, b * dw + (wo - 1) * sw + 1]);
      const tap = op('Slice', [xp, starts, ends, axes, steps], `${base}_tap${a}_${b}`);
      taps.push(op('Unsqueeze', [tap, unsq], `${base}_u${a}_${b}`));
    }
  }
  const stacked = taps.length === 1 ? (taps[0] as string) : op('Concat', taps, `${base}_cols5`, { axis: 2 });
  const cols = op('Reshape', [stacked, ints('colsShape', [n, G, cg * kh * kw, ho * wo])], `${base}_cols`);
  const kernel = op('Reshape', [valueName(w.node), ints('wShape', [G, o / G, cg * kh * kw])], `${base}_w`);
  const prod = op('MatMul', [kernel, cols], `${base}_prod`);
  op('Reshape', [prod, ints('outShape', [n, o, ho, wo])], valueName(node));
  return { nodes, constants };
}

function encodeModel(graph: GraphProto): Uint8Array {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'twinscope',
    opsetImport: [{ domain: '', version: OPSET }],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}

/** Serialize the part of `graph` that computes `outputs` (name → tensor) as an ONNX model. */
export function emitOnnx(
  graph: Graph,
  outputs: Readonly<Record<string, Tensor>>,
  options: { floatType?: FloatType; name?: string } = {},
): Uint8Array {
  return encodeModel(graphProto(graph, outputs, options.floatType ?? 'float32', options.name));
}

/** How a one-step graph becomes the body of a multi-step ONNX Loop. */
export interface LoopPlan {
  /** Inputs carried from one iteration to the next; the step graph outputs `<name>_new` for each. */
  readonly carried: readonly string[];
  /** Inputs that change every step; the loop model takes `<name>_all` with a leading step axis. */
  readonly perStep: readonly string[];
  /** A scalar output of each step, stacked into a [steps] output of the same name. */
  readonly scanned: string;
}

/**
 * Wrap a one-step graph in an ONNX Loop that runs it `steps` times in one call (the per-call
 * overhead of onnxruntime then dominates less for tiny models). The model takes `steps` (int64
 * scalar), `<carried>` initial values and `<perStep>_all` stacks, and returns `<carried>_new` after
 * the last step and `<scanned>` stacked over the steps.
 */
export function emitLoop(
  graph: Graph,
  outputs: Readonly<Record<string, Tensor>>,
  plan: LoopPlan,
  floatType: FloatType = 'float32',
): Uint8Array {
  const body = graphProto(graph, outputs, floatType, 'step');
  const declared = new Map((body.input ?? []).map((v) => [v.name as string, v]));
  const scalar = (name: string, elem: number): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: { tensorType: { elemType: elem, shape: { dim: [] } } },
  });
  const stacked = (v: onnxProto.onnx.IValueInfoProto, name: string): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: v.type?.tensorType?.elemType ?? null,
        shape: { dim: [{ dimParam: 'steps' }, ...(v.type?.tensorType?.shape?.dim ?? [])] },
      },
    },
  });
  const info = (name: string) => {
    const v = declared.get(name);
    if (!v) throw new Error(`loop: the step graph has no input '${name}'`);
    return v;
  };
  const perStepInfos = plan.perStep.filter((n) => declared.has(n)).map(info);
  // Body: (iter, cond, carried…) -> (cond, carried_next…, scanned), gathering per-step inputs by iter.
  body.input = [scalar('iter', DataType.INT64), scalar('cond_in', DataType.BOOL), ...plan.carried.map(info)];
  body.node = [
    ...perStepInfos.map((v) => ({
      name: `gather_${v.name}`,
      opType: 'Gather',
      input: [`${v.name}_all`, 'iter'],
      output: [v.name as string],
      attribute: [attribute('axis', 0)],
    })),
    ...(body.node ?? []).map((n) => ({
      ...n,
      output: (n.output ?? []).map((o) =>
        o === plan.scanned || plan.carried.includes(o.replace(/_new$/, '')) ? `${o}__next` : o,
      ),
    })),
    { name: 'cond_pass', opType: 'Identity', input: ['cond_in'], output: ['cond_out'] },
  ];
  const outputInfo = new Map((body.output ?? []).map((v) => [v.name as string, v]));
  const bodyOut = (name: string) => ({ ...(outputInfo.get(name) as object), name: `${name}__next` });
  body.output = [
    scalar('cond_out', DataType.BOOL),
    ...plan.carried.map((c) => bodyOut(`${c}_new`)),
    bodyOut(plan.scanned),
  ];
  const outer: GraphProto = {
    name: 'loop',
    input: [
      scalar('steps', DataType.INT64),
      ...plan.carried.map((c) => ({ ...info(c), name: `${c}_0` })),
      ...perStepInfos.map((v) => stacked(v, `${v.name}_all`)),
    ],
    initializer: [{ name: 'cond_0', dims: [], dataType: DataType.BOOL, rawData: Uint8Array.of(1) }],
    node: [
      {
        name: 'loop',
        opType: 'Loop',
        input: ['steps', 'cond_0', ...plan.carried.map((c) => `${c}_0`)],
        output: [...plan.carried.map((c) => `${c}_new`), plan.scanned],
        attribute: [{ name: 'body', type: AttrType.GRAPH, g: body }],
      },
    ],
    output: [
      ...plan.carried.map((c) => ({ ...(outputInfo.get(`${c}_new`) as object), name: `${c}_new` })),
      stacked(outputInfo.get(plan.scanned) as onnxProto.onnx.IValueInfoProto, plan.scanned),
    ],
  };
  return encodeModel(outer);
}
