/**
 * Reading and writing ONNX protobuf messages with `onnx-proto`: decoding a model with a clear error,
 * int64 fields (protobufjs `Long`s) as numbers, and float tensors to and from Float32Arrays.
 */
import onnxProto from 'onnx-proto';
import { InputError } from '../util/errors.js';

const { onnx } = onnxProto;

/** The ONNX protobuf namespace (message classes and enums). */
export const proto = onnx;

export type GraphProto = onnxProto.onnx.IGraphProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** An imported or exported ONNX model is refused: bad input (the CLI exits with 2). */
export class OnnxModelError extends InputError {
  override name = 'OnnxModelError';
}

/** An int64 protobuf field (a number or a protobufjs Long) as a number. */
export function toNumber(v: number | { toNumber(): number } | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'number' ? v : v.toNumber();
}

/** Decode serialized ONNX model bytes; `source` names the file in errors. */
export function decodeModel(bytes: Uint8Array, source: string): onnxProto.onnx.ModelProto {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new OnnxModelError(`${source}: not an ONNX model (${(e as Error).message})`);
  }
  if (!model.graph) throw new OnnxModelError(`${source}: not an ONNX model (no graph)`);
  return model;
}

/** Serialize a model. */
export function encodeModel(model: onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(model).finish();
}

/** The element types a weight may have (converted to float32 on import). */
const FLOAT_TYPES: ReadonlySet<number> = new Set([
  onnx.TensorProto.DataType.FLOAT,
  onnx.TensorProto.DataType.DOUBLE,
]);

/** Whether a tensor holds float32 or float64 values. */
export function isFloatTensor(t: TensorProto): boolean {
  return FLOAT_TYPES.has(t.dataType ?? 0);
}

/** Whether a tensor's data lives in an external file (refused: twinscope reads self-contained models). */
export function isExternal(t: TensorProto): boolean {
  return t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (t.externalData?.length ?? 0) > 0;
}

/** A tensor's dims as numbers. */
export function dimsOf(t: TensorProto): number[] {
  return (t.dims ?? []).map((d) => toNumber(d as number));
}

/**
 * The values of a float32 or float64 tensor as float32 (float64 rounded), from `rawData` (little
 * endian) or the typed fields. Throws for other element types or a size that does not match dims.
 */
export function floatValues(t: TensorProto, where: string): Float32Array {
  const count = dimsOf(t).reduce((a, b) => a * b, 1);
  const type = t.dataType ?? 0;
  let out: Float32Array;
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const copy = new Uint8Array(raw); // an aligned copy (a decoded Buffer slice is a view)
    if (type === onnx.TensorProto.DataType.FLOAT) out = new Float32Array(copy.buffer, 0, copy.length / 4);
    else if (type === onnx.TensorProto.DataType.DOUBLE) {
      out = Float32Array.from(new Float64Array(copy.buffer, 0, copy.length / 8));
    } else throw new OnnxModelError(`${where}: element type ${type} is not float32 or float64`);
  } else if (type === onnx.TensorProto.DataType.FLOAT) out = Float32Array.from(t.floatData ?? []);
  else if (type === onnx.TensorProto.DataType.DOUBLE) out = Float32Array.from(t.doubleData ?? []);
  else throw new OnnxModelError(`${where}: element type ${type} is not float32 or float64`);
  if (out.length !== count) {
    throw new OnnxModelError(
      `${where}: holds ${out.length} values, but its dims [${dimsOf(t)}] make ${count}`,
    );
  }
  return out;
}

/** A float32 tensor message holding `data` (copied) as raw little-endian bytes. */
export function floatTensor(name: string, dims: readonly number[], data: Float32Array): TensorProto {
  const copy = Float32Array.from(data);
  return {
    name,
    dims: [...dims],
    dataType: onnx.TensorProto.DataType.FLOAT,
    rawData: new Uint8Array(copy.buffer, copy.byteOffset, copy.byteLength),
  };
}

/** The declared shape of a graph input: a number per fixed axis, a string per symbolic axis, null when unknown. */
export function declaredShape(v: ValueInfoProto): (number | string | null)[] | undefined {
  const dims = v.type?.tensorType?.shape?.dim;
  if (!dims) return undefined;
  return dims.map((d) => {
    if (d.dimValue !== null && d.dimValue !== undefined && toNumber(d.dimValue as number) > 0) {
      return toNumber(d.dimValue as number);
    }
    return d.dimParam ? d.dimParam : null;
  });
}
