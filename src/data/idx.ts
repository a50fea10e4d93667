/**
 * The IDX file format of MNIST and Fashion-MNIST: a big-endian header (two zero bytes, a type byte,
 * the number of dimensions, then each dimension as a uint32) followed by the data, big-endian.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataError } from './check.js';

/** Element type of an IDX array. */
export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** IDX element types by their type byte. */
const TYPES = {
  0x08: { name: 'uint8', bytes: 1 },
  0x09: { name: 'int8', bytes: 1 },
  0x0b: { name: 'int16', bytes: 2 },
  0x0c: { name: 'int32', bytes: 4 },
  0x0d: { name: 'float32', bytes: 4 },
  0x0e: { name: 'float64', bytes: 8 },
} as const satisfies Record<number, { readonly name: IdxType; readonly bytes: number }>;

/** A parsed IDX array: its shape and elements in row-major order. */
export interface IdxArray {
  readonly type: IdxType;
  readonly shape: readonly number[];
  readonly data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** Parse an IDX buffer; `file` names the source in errors (corrupt or truncated header or data). */
export function parseIdx(buf: Uint8Array, file: string): IdxArray {
  const fail = (why: string): never => {
    throw new DataError(`IDX file '${file}': ${why}`);
  };
  if (buf.length < 4) fail(`truncated header (${buf.length} bytes, need at least 4)`);
  if (buf[0] !== 0 || buf[1] !== 0) fail('bad magic number (the first two bytes must be 0)');
  const t = TYPES[buf[2] as keyof typeof TYPES];
  if (!t) return fail(`unknown element type 0x${(buf[2] as number).toString(16)}`);
  const ndim = buf[3] as number;
  const headerBytes = 4 + 4 * ndim;
  if (buf.length < headerBytes)
    fail(`truncated header (${buf.length} bytes, ${ndim} dimensions need ${headerBytes})`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const shape = Array.from({ length: ndim }, (_, i) => view.getUint32(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const want = headerBytes + count * t.bytes;
  if (buf.length !== want) {
    fail(
      `${buf.length < want ? 'truncated' : 'trailing bytes in'} data: shape [${shape.join(', ')}] of ${t.name} needs ${want} bytes, file has ${buf.length}`,
    );
  }
  return {
    type: t.name,
    shape,
    data: decode(t.name, buf.subarray(headerBytes, want), view, headerBytes, count),
  };
}

/** `count` big-endian elements of `type`: `bytes` is the data, `view` the whole file and `at` the data's
 * offset in it (plain loops: TypedArray.from with a map function is far slower on image-sized arrays). */
function decode(
  type: IdxType,
  bytes: Uint8Array,
  view: DataView,
  at: number,
  count: number,
): IdxArray['data'] {
  switch (type) {
    case 'uint8':
      return bytes.slice();
    case 'int8':
      return new Int8Array(bytes.slice().buffer);
    case 'int16': {
      const out = new Int16Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt16(at + 2 * i);
      return out;
    }
    case 'int32': {
      const out = new Int32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(at + 4 * i);
      return out;
    }
    case 'float32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(at + 4 * i);
      return out;
    }
    case 'float64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(at + 8 * i);
      return out;
    }
  }
}

/** Read and parse an IDX file, gunzipping it first when it starts with the gzip magic (1f 8b). */
export function readIdxFile(path: string): IdxArray {
  let buf: Uint8Array = readFileSync(path);
  if (buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf);
    } catch (e) {
      throw new DataError(`IDX file '${path}': corrupt gzip data (${(e as Error).message})`);
    }
  }
  return parseIdx(buf, path);
}
