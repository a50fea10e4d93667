/** One ONNX Runtime session per compiled job graph, with typed feeds and fetches. */
import ort from 'onnxruntime-node';
import type { JobGraph } from '../model-graphs.js';
import { emitOnnx, type FloatType } from '../onnx/emit.js';

/** A flat float buffer in the graph's float type. */
export type FloatArray = Float32Array | Float64Array;

/** A feed value: a flat buffer with its shape, a float scalar, or an int64 scalar (bigint). */
export type Feed = number | bigint | { data: FloatArray; dims: readonly number[] };

/** Session settings shared by all jobs of an engine. */
export interface SessionSettings {
  readonly threads: number;
  readonly floatType: FloatType;
}

/** onnxruntime-node's version string, for reports and benchmarks. */
export const ORT_VERSION: string = ort.env.versions?.node ?? ort.env.versions?.common ?? 'unknown';

/** A compiled job: feeds by input name, outputs by name. */
export class OrtJob {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly settings: SessionSettings,
  ) {}

  /** Emit `job` as ONNX and open a sequential session with `threads` intra-op threads. */
  static create(job: JobGraph, settings: SessionSettings): Promise<OrtJob> {
    return OrtJob.fromModel(emitOnnx(job.graph, job.outputs, { floatType: settings.floatType }), settings);
  }

  /** Open a session on serialized ONNX model bytes. */
  static async fromModel(bytes: Uint8Array, settings: SessionSettings): Promise<OrtJob> {
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: settings.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
    return new OrtJob(session, settings);
  }

  /** Names the graph takes (unused declared inputs are dropped at emission). */
  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  /** Run the job. Feeds the graph does not take are ignored. */
  async run(feeds: Readonly<Record<string, Feed>>): Promise<Record<string, FloatArray>> {
    const type = this.settings.floatType;
    const tensors: Record<string, ort.Tensor> = {};
    for (const name of this.session.inputNames) {
      const feed = feeds[name];
      if (feed === undefined) throw new Error(`missing feed '${name}'`);
      if (typeof feed === 'bigint') {
        tensors[name] = new ort.Tensor('int64', BigInt64Array.of(feed), []);
      } else if (typeof feed === 'number') {
        tensors[name] = new ort.Tensor(
          type,
          type === 'float64' ? Float64Array.of(feed) : Float32Array.of(feed),
          [],
        );
      } else {
        const data = toType(feed.data, type);
        tensors[name] = new ort.Tensor(type, data, [...feed.dims]);
      }
    }
    const out = await this.session.run(tensors);
    const result: Record<string, FloatArray> = {};
    for (const [name, t] of Object.entries(out)) result[name] = t.data as FloatArray;
    return result;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

function toType(data: FloatArray, type: FloatType): FloatArray {
  if (type === 'float32') return data instanceof Float32Array ? data : Float32Array.from(data);
  return data instanceof Float64Array ? data : Float64Array.from(data);
}

/**
 * Compiled jobs by key (job kind, batch size), each compiled once on first use and shared by later
 * calls; a compile that fails is forgotten, so the next call tries again.
 */
export class JobCache<K> {
  private readonly jobs = new Map<K, Promise<OrtJob>>();

  /** The job under `key`, compiled by `compile` when it is not cached yet. */
  get(key: K, compile: () => Promise<OrtJob>): Promise<OrtJob> {
    let job = this.jobs.get(key);
    if (!job) {
      job = compile();
      job.catch(() => this.jobs.delete(key));
      this.jobs.set(key, job);
    }
    return job;
  }

  /** Dispose every session (compiles that failed are skipped) and empty the cache. */
  async dispose(): Promise<void> {
    const settled = await Promise.allSettled(this.jobs.values());
    this.jobs.clear();
    await Promise.all(settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value.dispose()] : [])));
  }
}

/**
 * Compiled jobs by key, at most `capacity` of them: compiling one more evicts the least recently used
 * job, whose session is released once no {@link use} of it is running. Sessions keep their
 * activations in an arena between runs, so this bounds what idle sessions hold. A compile that fails
 * is forgotten.
 */
export class BoundedJobCache<K> {
  private readonly entries = new Map<K, { job: Promise<OrtJob>; uses: number; evicted: boolean }>();

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new Error(`capacity must be a positive integer, got ${capacity}`);
    }
  }

  /** Run `fn` with the job under `key` (compiled by `compile` when it is not cached). */
  async use<T>(key: K, compile: () => Promise<OrtJob>, fn: (job: OrtJob) => Promise<T>): Promise<T> {
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key); // re-inserted below as the most recently used
    } else {
      const created = { job: compile(), uses: 0, evicted: false };
      created.job.catch(() => {
        if (this.entries.get(key) === created) this.entries.delete(key);
      });
      entry = created;
    }
    this.entries.set(key, entry);
    for (const [old, e] of this.entries) {
      if (this.entries.size <= this.capacity) break;
      this.entries.delete(old);
      e.evicted = true;
      if (e.uses === 0) void release(e.job);
    }
    entry.uses++;
    try {
      return await fn(await entry.job);
    } finally {
      entry.uses--;
      if (entry.evicted && entry.uses === 0) await release(entry.job);
    }
  }

  /** Number of cached jobs. */
  get size(): number {
    return this.entries.size;
  }

  /** Dispose every session (compiles that failed are skipped) and empty the cache. */
  async dispose(): Promise<void> {
    const jobs = [...this.entries.values()].map((e) => e.job);
    this.entries.clear();
    await Promise.all(jobs.map(release));
  }
}

async function release(job: Promise<OrtJob>): Promise<void> {
  try {
    await (await job).dispose();
  } catch {
    // a compile that failed has nothing to release
  }
}

/** Throw unless a feed has the expected number of values. */
export function checkLength(name: string, data: FloatArray, expected: number): void {
  if (data.length !== expected) {
    throw new Error(`${name} has ${data.length} values, expected ${expected}`);
  }
}
