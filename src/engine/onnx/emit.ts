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
