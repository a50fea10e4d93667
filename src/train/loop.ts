/**
 * The training loop: deterministic minibatches, learning-rate schedule, optimizer steps through an
 * {@link Engine}. Step s (0-based, counting optimizer updates) uses epoch ⌊s / stepsPerEpoch⌋ and the
 * batch of that epoch's permutation given by the data seed, so a run's data order is a function of
 * (data seed, step) only: twins and resumed runs see exactly the same batches.
 */
import { type BatchSize, batchHash, batchIndices, gatherBatch, stepsPerEpoch } from '../data/batching.js';
import type { Batch, Split } from '../data/types.js';
import type { Engine, TrainState } from '../engine/types.js';
import type { LrSchedule } from '../spec/lr-schedule.js';

/** What the loop reports after each step. */
export interface StepRecord {
  /** The step that was taken (its update makes `state.opt.step` equal step + 1). */
  readonly step: number;
  readonly epoch: number;
  readonly lr: number;
  /** Training loss of the batch before the update. */
  readonly loss: number;
  /** Hash of the batch's example indices (see batchHash). */
  readonly batchHash: string;
}

/** What {@link trainUntil} trains with: the engine, the data and its batching, the learning rate. */
export interface TrainLoopOptions {
  readonly engine: Engine;
  readonly train: Split;
  readonly batchSize: BatchSize;
  readonly dataSeed: number;
  readonly lr: LrSchedule;
  /**
   * Steps per engine call (an ONNX Loop when the engine has trainSteps). Results are bit-identical
   * for any value; larger values amortize per-call overhead for tiny models. Default 1.
   */
  readonly stepsPerCall?: number;
  /** Called after every step, in order. */
  readonly onStep?: (record: StepRecord) => void | Promise<void>;
  /** Steps after which the loop must return control before continuing (checkpoints). */
  readonly stopAt?: (stepsDone: number) => boolean;
  /** Checked after each `onStep`: true ends the loop early (a run that diverged). */
  readonly stop?: () => boolean;
}

/** The batch, epoch and hash of global step `step`. */
export function batchForStep(train: Split, batchSize: BatchSize, dataSeed: number, step: number) {
  const perEpoch = stepsPerEpoch(train.n, batchSize);
  const epoch = Math.floor(step / perEpoch);
  const indices = batchIndices(train.n, batchSize, dataSeed, epoch, step % perEpoch);
  return { batch: gatherBatch(train, indices), epoch, hash: batchHash(indices) };
}

/**
 * Advance `state` from its current step (`state.opt.step`) to `until` steps done, or until `stop`
 * says so. Calls `onStep` after each step; chunks multi-step calls so that no chunk crosses a
 * `stopAt` step.
 */
export async function trainUntil(state: TrainState, until: number, options: TrainLoopOptions): Promise<void> {
  const { engine, train, batchSize, dataSeed } = options;
  const perCall = Math.max(1, Math.floor(options.stepsPerCall ?? 1));
  while (state.opt.step < until) {
    const first = state.opt.step;
    let count = 1;
    while (count < perCall && first + count < until && !options.stopAt?.(first + count)) count++;
    const items = Array.from({ length: count }, (_, k) => {
      const { batch, epoch, hash } = batchForStep(train, batchSize, dataSeed, first + k);
      return { batch, epoch, hash, lr: options.lr(first + k, epoch) };
    });
    let losses: ArrayLike<number>;
    if (count > 1 && engine.trainSteps) {
      losses = await engine.trainSteps(
        state,
        items.map((i) => i.batch as Batch),
        items.map((i) => i.lr),
      );
    } else {
      const out: number[] = [];
      for (const item of items) out.push(await engine.trainStep(state, item.batch, item.lr));
      losses = out;
    }
    for (const [k, item] of items.entries()) {
      await options.onStep?.({
        step: first + k,
        epoch: item.epoch,
        lr: item.lr,
        loss: losses[k] as number,
        batchHash: item.hash,
      });
      if (options.stop?.()) return;
    }
  }
}
