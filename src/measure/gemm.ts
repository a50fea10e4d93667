/**
 * Synchronous dense matrix products on onnxruntime's CPU GEMM (MLAS), for the measurement kernels
 * (weight matching, activation matching, CKA; issue 16).
 *
 * The measurement functions are synchronous (`weightMatching`, `cka`, … are called inline by the
 * study code), while onnxruntime-node's public `InferenceSession.run` returns a promise. That promise
 * only wraps a synchronous native call (`binding.InferenceSession.run`, deferred by one
 * `setImmediate`), so this module calls the native binding directly: one tiny ONNX `Gemm` graph per
 * shape, transpose flags, float type and thread count, compiled on first use and cached (least
 * recently used released past {@link SESSION_CAPACITY}). No copies beyond the float-type conversion:
 * the operands (views included) are fed as they are, the product comes back as a fresh array.
 * The binding is an internal module of onnxruntime-node (`dist/binding.js`, checked with
 * 1.30.0): test/measure/gemm.test.ts pins its behaviour, and {@link gemm} throws a clear error
 * if it is missing. Like the plain-JS loops it replaces, a product blocks the calling thread.
 *
 * float64 products run on MLAS's DGEMM (≈55–65 GFLOP/s at one thread on the project VM, against
 * ≈120 for float32 and ≈2–3 for the plain-JS loops they replace); which float type each kernel
 * uses and why is in docs/methods.md.
 */
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import { Graph } from '../engine/ir/graph.js';
import { emitOnnx, type FloatType } from '../engine/onnx/emit.js';

/** Shape of C = op(A) · op(B): op(A) is m × k, op(B) is k × n, all row-major. */
export interface GemmShape {
  readonly m: number;
  readonly k: number;
  readonly n: number;
  /** A is stored k × m (row-major) and used transposed. Default false. */
  readonly transA?: boolean;
  /** B is stored n × k (row-major) and used transposed. Default false. */
  readonly transB?: boolean;
}

/** Options of {@link gemm}. */
export interface GemmOptions {
  /** Float type of the product: operands are converted to it, the result is in it. Default 'float64'. */
  readonly floatType?: FloatType;
  /** onnxruntime intra-op threads. Default {@link gemmThreads}. */
  readonly threads?: number;
}

/** Sessions kept open (one per shape, transpose flags, float type and thread count). */
const SESSION_CAPACITY = 16;

let defaultThreads = 1;

/** Intra-op threads of products that do not name their own (default 1). */
export function gemmThreads(): number {
  return defaultThreads;
}

/** Set the intra-op threads of products that do not name their own. */
export function setGemmThreads(threads: number): void {
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`gemm threads must be a positive integer, got ${threads}`);
  }
  defaultThreads = threads;
}

/** C = op(A) · op(B) in float64 (m × n, row-major). */
export function gemm(
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  shape: GemmShape,
  options?: GemmOptions & { floatType?: 'float64' },
): Float64Array;
/** C = op(A) · op(B) in float32 (m × n, row-major). */
export function gemm(
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  shape: GemmShape,
  options: GemmOptions & { floatType: 'float32' },
): Float32Array;
export function gemm(
  a: Float32Array | Float64Array,
  b: Float32Array | Float64Array,
  shape: GemmShape,
  options: GemmOptions = {},
): Float32Array | Float64Array {
  const { m, k, n } = shape;
  const transA = shape.transA ?? false;
  const transB = shape.transB ?? false;
  for (const [name, v] of [
    ['m', m],
    ['k', k],
    ['n', n],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`gemm: ${name} must be a positive integer, got ${v}`);
  }
  if (a.length !== m * k) throw new Error(`gemm: A has ${a.length} values, expected ${m} × ${k}`);
  if (b.length !== k * n) throw new Error(`gemm: B has ${b.length} values, expected ${k} × ${n}`);
  const floatType = options.floatType ?? 'float64';
  const threads = options.threads ?? defaultThreads;
  if (!Number.isInteger(threads) || threads < 1) {
    throw new Error(`gemm: threads must be a positive integer, got ${threads}`);
  }
  const dimsA = transA ? [k, m] : [m, k];
  const dimsB = transB ? [n, k] : [k, n];
  const key = `${floatType}:${dimsA.join('x')}${transA ? 'T' : ''}:${dimsB.join('x')}${transB ? 'T' : ''}:${threads}`;
  const session = sessions.get(key, () => modelBytes(dimsA, dimsB, transA, transB, floatType), threads);
  const out = session.run(
    {
      a: new ort.Tensor(floatType, convert(a, floatType), dimsA),
      b: new ort.Tensor(floatType, convert(b, floatType), dimsB),
    },
    { c: null },
    {},
  ).c;
  const data = out?.data;
  if (!(data instanceof (floatType === 'float64' ? Float64Array : Float32Array)) || data.length !== m * n) {
    throw new Error(`gemm: onnxruntime returned no ${floatType} product of ${m} × ${n}`);
  }
  return data as Float32Array | Float64Array;
}

function convert(v: Float32Array | Float64Array, floatType: FloatType): Float32Array | Float64Array {
  if (floatType === 'float64') return v instanceof Float64Array ? v : new Float64Array(v);
  return v instanceof Float32Array ? v : new Float32Array(v);
}

/** The part of onnxruntime-node's native session this module uses (`dist/binding.d.ts`). */
interface NativeSession {
  loadModel(buffer: ArrayBuffer, byteOffset: number, byteLength: number, options: object): void;
  run(
    feeds: Record<string, ort.Tensor>,
    fetches: Record<string, null>,
    options: object,
  ): Record<string, ort.Tensor | undefined>;
  dispose(): void;
}

interface NativeBinding {
  readonly binding: { readonly InferenceSession: new () => NativeSession };
  readonly initOrt: () => void;
}

let native: NativeBinding | null = null;

function loadBinding(): NativeBinding {
  if (native) return native;
  let mod: Partial<NativeBinding>;
  try {
    mod = createRequire(import.meta.url)('onnxruntime-node/dist/binding.js') as Partial<NativeBinding>;
  } catch (e) {
    throw new Error(`gemm: cannot load onnxruntime-node's native binding: ${(e as Error).message}`);
  }
  if (typeof mod.binding?.InferenceSession !== 'function' || typeof mod.initOrt !== 'function') {
    throw new Error(
      `gemm: onnxruntime-node ${ort.env.versions?.node ?? '?'} has no binding.InferenceSession / initOrt`,
    );
  }
  mod.initOrt();
  native = mod as NativeBinding;
  return native;
}

/** Native sessions by key, least recently used released past the capacity. */
class SessionCache {
  private readonly entries = new Map<string, NativeSession>();

  get(key: string, model: () => Uint8Array, threads: number): NativeSession {
    let s = this.entries.get(key);
    if (s) {
      this.entries.delete(key);
      this.entries.set(key, s);
      return s;
    }
    const { binding } = loadBinding();
    const bytes = model();
    s = new binding.InferenceSession();
    s.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    this.entries.set(key, s);
    for (const [old, o] of this.entries) {
      if (this.entries.size <= SESSION_CAPACITY) break;
      this.entries.delete(old);
      o.dispose();
    }
    return s;
  }
}

const sessions = new SessionCache();

function modelBytes(
  dimsA: number[],
  dimsB: number[],
  transA: boolean,
  transB: boolean,
  floatType: FloatType,
): Uint8Array {
  const g = new Graph();
  const a = g.input('a', dimsA);
  const b = g.input('b', dimsB);
  return emitOnnx(g, { c: g.gemm(a, b, transA, transB) }, { floatType });
}

/** Largest scratch buffer kept between calls (bytes); larger requests get a fresh array. */
const SCRATCH_LIMIT = 64 * 2 ** 20;

const scratchBuffers = new Map<string, ArrayBuffer>();

/**
 * A float64 work array of `length` values, zero-filled, reused between calls under the same
 * `name` (up to 64 MiB each; larger requests get a fresh array). Fresh multi-megabyte arrays cost
 * more to fault in on first touch than a GEMM on the project VM (≈7 ms per MiB measured under
 * load), so kernels that run again and again at one size (CKA per layer and checkpoint) keep their
 * centred copies here. The array is valid until the next call with the same name; only synchronous
 * code that does not hand it out may use it.
 */
export function scratchFloat64(name: string, length: number): Float64Array {
  const bytes = length * 8;
  if (bytes > SCRATCH_LIMIT) return new Float64Array(length);
  let buf = scratchBuffers.get(name);
  if (!buf || buf.byteLength < bytes) {
    buf = new ArrayBuffer(bytes);
    scratchBuffers.set(name, buf);
    return new Float64Array(buf, 0, length);
  }
  const view = new Float64Array(buf, 0, length);
  view.fill(0);
  return view;
}
