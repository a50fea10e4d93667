/**
 * Import a foreign ONNX model as an architecture plus a flat weight vector.
 *
 * The graph is rewritten once: every weight (src/onnx/weights.ts) becomes a graph input, and the
 * outputs of the activation nodes become extra graph outputs ("hidden outputs", named after the
 * node's scope: `/block1/relu2/Relu` → `block1.relu2`). The rewritten model ({@link
 * ImportedArchitecture.bytes}) is what one onnxruntime session per architecture runs
 * (src/onnx/session.ts), for any weight vector: interpolations, merges, aligned copies.
 *
 * Refused early, before any session is opened ({@link OnnxModelError}, exit code 2): bytes that are
 * not an ONNX model, external data files, a graph with no data input or several, a data input that
 * is not float32, dynamic axes other than the leading batch axis, and a graph with no weights.
 */
import { readFileSync } from 'node:fs';
import type { ParameterLayout } from '../model/layout.js';
import {
  declaredShape,
  decodeModel,
  encodeModel,
  type GraphProto,
  type NodeProto,
  OnnxModelError,
  proto,
  toNumber,
  type ValueInfoProto,
} from './proto.js';
import { findWeights, flattenWeights, layoutOfWeights, liftWeights } from './weights.js';

/** Ops whose outputs are hidden outputs by default (element-wise activations). */
export const ACTIVATIONS: ReadonlySet<string> = new Set([
  'Relu',
  'LeakyRelu',
  'PRelu',
  'Elu',
  'Selu',
  'Celu',
  'Gelu',
  'Sigmoid',
  'HardSigmoid',
  'HardSwish',
  'Tanh',
  'Softplus',
  'Softsign',
  'Mish',
]);

/** One named intermediate value the rewritten graph also outputs. */
export interface HiddenOutput {
  /** Name for reports and CKA rows (`block1.relu2`, `dense0`). */
  readonly name: string;
  /** The value's name in the graph (the extra graph output). */
  readonly value: string;
  /** The op that produces it. */
  readonly op: string;
}

/** An imported architecture: the rewritten graph and what its inputs and outputs mean. */
export interface ImportedArchitecture {
  /** The rewritten model: weights are inputs, hidden outputs are outputs. */
  readonly bytes: Uint8Array;
  /** The weights' names, shapes and flat offsets (first-use order). */
  readonly layout: ParameterLayout;
  /** The graph input of each layout slot, in layout order. */
  readonly weightValues: readonly string[];
  /** The data input's name. */
  readonly input: string;
  /** The shape of one example (the data input's dims after the batch axis), e.g. [1, 28, 28]. */
  readonly inputShape: readonly number[];
  /** The batch size the graph is fixed to, or null when the batch axis is dynamic. */
  readonly batch: number | null;
  /** The model output (the first graph output), taken as logits. */
  readonly output: string;
  readonly hidden: readonly HiddenOutput[];
  /** The rewritten graph's structure (ops, attributes, wiring, weight shapes), for same-architecture checks. */
  readonly signature: readonly string[];
}

/** An imported model: an architecture and one point in its weight space. */
export interface ImportedModel {
  /** Where it came from (file path or run directory), for messages and result rows. */
  readonly source: string;
  readonly architecture: ImportedArchitecture;
  /** Flat weights in the layout's order. */
  readonly weights: Float32Array;
  /** Producer and opset of the file, for reports. */
  readonly producer: string;
  readonly opset: number;
}

/** Options of {@link importOnnx}. */
export interface ImportOptions {
  /**
   * Graph values to output as hidden outputs (their value names; the hidden output takes the same
   * name). Default: the outputs of every activation node.
   */
  readonly hidden?: readonly string[];
}

/** Read and import an ONNX file (see {@link importOnnx}). */
export function importOnnxFile(path: string, options: ImportOptions = {}): ImportedModel {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OnnxModelError(`${path}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return importOnnx(bytes, path, options);
}

/** Import serialized ONNX model bytes; `source` names the model in errors and results. */
export function importOnnx(bytes: Uint8Array, source: string, options: ImportOptions = {}): ImportedModel {
  const model = decodeModel(bytes, source);
  const graph = model.graph as GraphProto;
  const weights = findWeights(graph, source);
  if (weights.length === 0)
    throw new OnnxModelError(
      `${source}: the graph has no weights (no float initializers or Constant tensors)`,
    );
  const fixed = new Set([
    ...(graph.initializer ?? []).map((t) => t.name ?? ''),
    ...weights.map((w) => w.value),
  ]);
  const dataInputs = (graph.input ?? []).filter((v) => !fixed.has(v.name ?? ''));
  if (dataInputs.length !== 1) {
    throw new OnnxModelError(
      `${source}: expected one data input, the graph has ${dataInputs.length} (${dataInputs.map((v) => v.name).join(', ') || 'none'})`,
    );
  }
  const input = dataInputs[0] as ValueInfoProto;
  const { inputShape, batch } = checkDataInput(input, source);
  const outputs = graph.output ?? [];
  if (outputs.length === 0) throw new OnnxModelError(`${source}: the graph has no outputs`);
  const output = outputs[0]?.name ?? '';
  liftWeights(graph, weights);
  const hidden = hiddenOutputs(graph, options.hidden, output, source);
  const outputNames = new Set(outputs.map((o) => o.name));
  for (const h of hidden) {
    if (!outputNames.has(h.value))
      graph.output = [
        ...(graph.output ?? []),
        { name: h.value, type: { tensorType: { elemType: proto.TensorProto.DataType.FLOAT } } },
      ];
  }
  const layout = layoutOfWeights(weights);
  const opsetEntry = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '');
  const architecture: ImportedArchitecture = {
    bytes: encodeModel(model),
    layout,
    weightValues: weights.map((w) => w.value),
    input: input.name ?? '',
    inputShape,
    batch,
    output,
    hidden,
    signature: graphSignature(
      graph,
      weights.map((w) => w.value),
      input.name ?? '',
    ),
  };
  return {
    source,
    architecture,
    weights: flattenWeights(weights),
    producer: `${model.producerName ?? ''} ${model.producerVersion ?? ''}`.trim(),
    opset: toNumber(opsetEntry?.version as number),
  };
}

function checkDataInput(
  input: ValueInfoProto,
  source: string,
): { inputShape: number[]; batch: number | null } {
  const name = input.name ?? '';
  const elem = input.type?.tensorType?.elemType;
  if (elem !== proto.TensorProto.DataType.FLOAT) {
    throw new OnnxModelError(
      `${source}: data input '${name}' must be a float32 tensor (element type ${elem ?? 'unknown'})`,
    );
  }
  const shape = declaredShape(input);
  if (!shape || shape.length === 0) {
    throw new OnnxModelError(
      `${source}: data input '${name}' has no declared shape; a [batch, …] shape is needed`,
    );
  }
  const rest = shape.slice(1);
  const bad = rest.findIndex((d) => typeof d !== 'number');
  if (bad >= 0) {
    throw new OnnxModelError(
      `${source}: data input '${name}' has a dynamic axis ${bad + 1} ('${rest[bad] ?? '?'}') that cannot be fixed: only the leading batch axis may be dynamic (shape [${shape.map((d) => d ?? '?').join(', ')}]); export with a fixed example shape`,
    );
  }
  const b = shape[0];
  return { inputShape: rest as number[], batch: typeof b === 'number' ? b : null };
}

/** The scope of a node (`/block1/relu2/Relu` → `block1.relu2`), or undefined for an unscoped name. */
function scopeOf(nodeName: string): string | undefined {
  const parts = nodeName.split('/').filter(Boolean);
  return parts.length > 1 ? parts.slice(0, -1).join('.') : undefined;
}

function hiddenOutputs(
  graph: GraphProto,
  values: readonly string[] | undefined,
  logits: string,
  source: string,
): HiddenOutput[] {
  const producers = new Map<string, string>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producers.set(o, n.opType ?? '');
  if (values) {
    return values.map((v) => {
      const op = producers.get(v);
      if (op === undefined) throw new OnnxModelError(`${source}: no node computes the value '${v}'`);
      return { name: v, value: v, op };
    });
  }
  const out: HiddenOutput[] = [];
  const taken = new Set<string>();
  let k = 0;
  for (const n of graph.node ?? []) {
    const value = n.output?.[0];
    if (!ACTIVATIONS.has(n.opType ?? '') || !value || value === logits) continue;
    const base = scopeOf(n.name ?? '') ?? `${(n.opType ?? '').toLowerCase()}${k}`;
    k++;
    let name = base;
    for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
    taken.add(name);
    out.push({ name, value, op: n.opType ?? '' });
  }
  return out;
}

/** An attribute's value in a form to compare (a subgraph or tensor by its kind and dims only). */
function attributeValue(a: NonNullable<NodeProto['attribute']>[number]): unknown {
  if (a.ints?.length) return a.ints.map((x) => toNumber(x as number));
  if (a.floats?.length) return a.floats;
  if (a.s?.length) return new TextDecoder().decode(a.s);
  if (a.t) return `tensor${JSON.stringify(a.t.dims)}`;
  if (a.g) return 'graph';
  return a.f || toNumber(a.i as number);
}

/** Ops, attributes and wiring of the (lifted) graph with value names replaced by positions. */
function graphSignature(graph: GraphProto, weightValues: readonly string[], input: string): string[] {
  const token = new Map<string, string>([[input, 'x']]);
  weightValues.forEach((v, k) => token.set(v, `w${k}`));
  (graph.node ?? []).forEach((n, i) => {
    (n.output ?? []).forEach((o, j) => token.set(o, `n${i}.${j}`));
  });
  return (graph.node ?? []).map((n) => {
    const attrs = (n.attribute ?? []).map((a) => `${a.name}=${JSON.stringify(attributeValue(a))}`);
    const inputs = (n.input ?? []).map((v) => token.get(v) ?? (v === '' ? '' : `c:${v}`));
    return `${n.domain ?? ''}${n.opType}(${inputs.join(',')})[${attrs.join(';')}]`;
  });
}

/**
 * Throw an {@link OnnxModelError} unless `b` has `a`'s architecture: the same weights (names and
 * shapes, in order), the same data input shape and the same graph. The message names the first
 * difference.
 */
export function checkSameArchitecture(a: ImportedModel, b: ImportedModel): void {
  const la = a.architecture.layout.tensors;
  const lb = b.architecture.layout.tensors;
  for (let k = 0; k < Math.max(la.length, lb.length); k++) {
    const ta = la[k];
    const tb = lb[k];
    const show = (t: typeof ta) => (t ? `'${t.name}' [${t.shape.join(', ')}]` : 'no weight');
    if (!ta || !tb || ta.name !== tb.name || ta.shape.join() !== tb.shape.join()) {
      throw new OnnxModelError(
        `${a.source} and ${b.source} have different weights: weight ${k} is ${show(ta)} in A and ${show(tb)} in B (A has ${la.length} weight tensors, B ${lb.length})`,
      );
    }
  }
  if (a.architecture.inputShape.join() !== b.architecture.inputShape.join()) {
    throw new OnnxModelError(
      `${a.source} and ${b.source} take inputs of different shapes: [${a.architecture.inputShape}] and [${b.architecture.inputShape}]`,
    );
  }
  const sa = a.architecture.signature;
  const sb = b.architecture.signature;
  const i = sa.findIndex((line, k) => line !== sb[k]);
  if (i >= 0 || sa.length !== sb.length) {
    const k = i >= 0 ? i : Math.min(sa.length, sb.length);
    throw new OnnxModelError(
      `${a.source} and ${b.source} have the same weights but different graphs: node ${k} is ${sa[k] ?? 'missing'} in A and ${sb[k] ?? 'missing'} in B`,
    );
  }
}
