/**
 * Lock-step twins on ONNX Runtime: R runs of one model that see the same data stream train
 * together in one ONNX graph with batched weights ({@link lockstepTrainStepGraph}), one
 * onnxruntime call per step for all R runs. Small models are bound by the per-call overhead, so this
 * multiplies run-steps per second; the arithmetic per run is the single-run step's up to the
 * summation order of the matrix products (batched MatMul instead of Gemm).
 */

import type { Batch } from '../../data/types.js';
import type { ModelGraphSpec } from '../../model/graph.js';
import { lockstepTrainStepGraph, slotNames, stepScalars } from '../model-graphs.js';
import type { FloatType } from '../onnx/emit.js';
import { type EngineOptions, type ResolvedOptimizer, resolveOptimizer, type TrainState } from '../types.js';
import { checkLength, type Feed, type FloatArray, JobCache, ORT_VERSION, OrtJob } from './session.js';

/** R runs of one model trained in lock-step: same batches, same learning rates, same step count. */
export interface LockstepEngine {
  /** Number of runs R every {@link trainStep} call takes. */
  readonly runs: number;
  /** What executes, e.g. `onnxruntime-node 1.30.0 cpu, 1 thread, lock-step R=8`. */
  readonly backend: string;
  /**
   * One optimizer step of all R runs on the same batch at `lr`. `states[r].params` and
   * `states[r].opt.slots` are replaced by fresh length-P views (disjoint `subarray`s of buffers
   * shared by the R runs; `.buffer` is not run r's alone) and `opt.step` incremented; all states
   * must be at the same step. Returns each run's loss before the update.
   */
  trainStep(states: TrainState[], batch: Batch, lr: number): Promise<Float64Array>;
  /** Release native resources. */
  dispose(): Promise<void>;
}

/** Result of one lock-step call in the jobs' float type: rows of [runs, P] buffers. */
export interface LockstepStepResult {
  /** Each run's mean loss before the update, [runs]. */
  readonly losses: FloatArray;
  /** New parameters, [runs · P] row-major (run r at r·P). */
  readonly params: FloatArray;
  /** New slots in {@link slotNames} order, each [runs · P]. */
  readonly slots: FloatArray[];
}

/**
 * The lock-step train-step job of one model for R runs in one float type, one ONNX session per
 * batch size. The float32 instance backs {@link createLockstepEngine}; a float64 instance serves
 * exact comparisons with the float64 single-run jobs.
 */
export class OrtLockstepJobs {
  private readonly cache = new JobCache<number>();
  readonly opt: ResolvedOptimizer;

  constructor(
    readonly model: ModelGraphSpec,
    optimizer: EngineOptions['optimizer'],
    readonly runs: number,
    readonly threads = 1,
    readonly floatType: FloatType = 'float32',
  ) {
    if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${runs}`);
    this.opt = resolveOptimizer(optimizer);
  }

  private job(batch: number): Promise<OrtJob> {
    return this.cache.get(batch, () =>
      OrtJob.create(lockstepTrainStepGraph(this.model, this.opt, batch, this.runs), {
        threads: this.threads,
        floatType: this.floatType,
      }),
    );
  }

  /**
   * One step of all runs. `params` and each slot are [runs · P] row-major (run r's vector at r·P);
   * `x` is [n, inputDim], `y` [n, outputDim]; `step` is the common number of updates done so far.
   */
  async trainStep(
    params: FloatArray,
    slots: readonly FloatArray[],
    step: number,
    x: FloatArray,
    y: FloatArray,
    n: number,
    lr: number,
  ): Promise<LockstepStepResult> {
    const { inputDim, outputDim, layout } = this.model;
    const total = this.runs * layout.size;
    const names = slotNames(this.opt);
    checkLength('params', params, total);
    checkLength('x', x, n * inputDim);
    checkLength('y', y, n * outputDim);
    if (slots.length !== names.length) {
      throw new Error(`expected ${names.length} optimizer slots (${names.join(', ')}), got ${slots.length}`);
    }
    const dims = [this.runs, layout.size];
    const feeds: Record<string, Feed> = {
      theta: { data: params, dims },
      x: { data: x, dims: [n, inputDim] },
      y: { data: y, dims: [n, outputDim] },
      ...stepScalars(this.opt, lr, step),
    };
    names.forEach((name, i) => {
      const slot = slots[i] as FloatArray;
      checkLength(name, slot, total);
      feeds[name] = { data: slot, dims };
    });
    const out = await (await this.job(n)).run(feeds);
    return {
      losses: out.loss as FloatArray,
      params: out.theta_new as FloatArray,
      slots: names.map((name) => out[`${name}_new`] as FloatArray),
    };
  }

  async dispose(): Promise<void> {
    await this.cache.dispose();
  }
}

/**
 * A float32 ORT engine that trains `options.runs` runs of `model` in lock-step: each
 * {@link LockstepEngine.trainStep} makes one onnxruntime call on one [R, P] buffer per tensor
 * (params and each optimizer slot) and hands each run views of the call's fresh output buffers:
 * `states[r].params` (and each slot) becomes a length-P `subarray` at r · P of an [R · P] array that
 * no other run's view overlaps and that no later call writes to. When every state still holds its
 * view at the next call, those buffers are fed back without copying; otherwise the states are
 * copied into a new buffer. States are the same {@link TrainState}s the single-run engine uses
 * (`createOrtEngine`'s `initOptimizerState` fits them).
 */
export async function createLockstepEngine(
  model: ModelGraphSpec,
  options: EngineOptions & { runs: number },
): Promise<LockstepEngine> {
  const threads = options.threads ?? 1;
  const R = options.runs;
  const jobs = new OrtLockstepJobs(model, options.optimizer, R, threads, 'float32');
  const P = model.layout.size;
  const slotCount = slotNames(jobs.opt).length;
  /**
   * The [R · P] buffers of the last call's outputs (params, then each slot). The states hold
   * disjoint views of them (run r's vector at r · P), so a state still holding its view from the
   * last step is fed as is; any other state (replaced or another engine's) is copied in.
   */
  let last: Float32Array[] | undefined;
  /** The [R · P] input of tensor k (0: params, 1 + j: slot j); the last output when all runs hold their views. */
  const packed = (k: number, parts: readonly Float32Array[]): Float32Array => {
    const prev = last?.[k];
    if (
      prev &&
      parts.every(
        (p, r) => p.buffer === prev.buffer && p.byteOffset === prev.byteOffset + r * P * 4 && p.length === P,
      )
    ) {
      return prev;
    }
    const out = new Float32Array(R * P);
    parts.forEach((p, r) => out.set(p, r * P));
    return out;
  };
  return {
    runs: R,
    backend: `onnxruntime-node ${ORT_VERSION} cpu, ${threads} thread${threads === 1 ? '' : 's'}, lock-step R=${R}`,
    async trainStep(states: TrainState[], batch: Batch, lr: number): Promise<Float64Array> {
      if (states.length !== R)
        throw new Error(`lock-step engine trains ${R} runs, got ${states.length} states`);
      const step = (states[0] as TrainState).opt.step;
      states.forEach((s, r) => {
        if (s.opt.step !== step) {
          throw new Error(
            `lock-step runs must be at the same optimizer step: run 0 is at step ${step}, run ${r} at step ${s.opt.step}`,
          );
        }
        if (s.params.length !== P) {
          throw new Error(`run ${r}: params has ${s.params.length} values, expected ${P}`);
        }
        if (s.opt.slots.length !== slotCount) {
          throw new Error(`run ${r}: expected ${slotCount} optimizer slots, got ${s.opt.slots.length}`);
        }
        s.opt.slots.forEach((slot, k) => {
          if (slot.length !== P)
            throw new Error(`run ${r}: slot ${k} has ${slot.length} values, expected ${P}`);
        });
      });
      const slotParts = (k: number) => states.map((s) => s.opt.slots[k] as Float32Array);
      const inputs = [
        packed(
          0,
          states.map((s) => s.params),
        ),
        ...Array.from({ length: slotCount }, (_, k) => packed(1 + k, slotParts(k))),
      ];
      const out = await jobs.trainStep(
        inputs[0] as Float32Array,
        inputs.slice(1),
        step,
        batch.x,
        batch.y,
        batch.size,
        lr,
      );
      // Fresh output buffers (never one that was fed: a state's view must not change under it).
      const fresh = (t: FloatArray): Float32Array =>
        inputs.some((i) => i.buffer === t.buffer) ? Float32Array.from(t) : (t as Float32Array);
      const outputs = [fresh(out.params), ...out.slots.map(fresh)];
      last = outputs;
      const [params, ...slots] = outputs as [Float32Array, ...Float32Array[]];
      states.forEach((s, r) => {
        s.params = params.subarray(r * P, (r + 1) * P);
        s.opt.slots = slots.map((slot) => slot.subarray(r * P, (r + 1) * P));
        s.opt.step += 1;
      });
      return Float64Array.from(out.losses);
    },
    dispose: () => jobs.dispose(),
  };
}
