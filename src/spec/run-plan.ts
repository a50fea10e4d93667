/**
 * The step plan of a run: its length, checkpoint and evaluation steps, and learning rate per step.
 */
import { stepsPerEpoch as batchStepsPerEpoch } from '../data/batching.js';
import { checkpointSteps, everySteps } from './checkpoint-schedule.js';
import { SpecError } from './errors.js';
import { compileLrSchedule, type LrSchedule } from './lr-schedule.js';
import type { ResolvedRunSpec } from './resolve.js';

/** Total optimizer steps of a run: `steps`, or `epochs × stepsPerEpoch`. */
export function totalSteps(spec: Pick<ResolvedRunSpec, 'epochs' | 'steps'>, stepsPerEpoch: number): number {
  if (spec.steps !== undefined) return spec.steps;
  if (spec.epochs !== undefined) return spec.epochs * stepsPerEpoch;
  throw new SpecError('epochs: missing (give exactly one of epochs or steps)');
}

/** When a run checkpoints and evaluates, and its learning rate per step. */
export interface RunPlan {
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** Checkpoint steps, sorted, from 0 to totalSteps. */
  readonly checkpoints: number[];
  /** Evaluation steps: every `evalEvery` steps (plus the last), or the checkpoint steps. */
  readonly evals: number[];
  readonly lr: LrSchedule;
}

/** The step plan of a run whose train split has `nTrain` examples. */
export function planRun(spec: ResolvedRunSpec, nTrain: number): RunPlan {
  if (spec.batchSize !== 'full' && spec.batchSize > nTrain) {
    throw new SpecError(
      `batchSize: must be at most the ${nTrain} examples of the train split (got ${spec.batchSize})`,
    );
  }
  const perEpoch = batchStepsPerEpoch(nTrain, spec.batchSize);
  const total = totalSteps(spec, perEpoch);
  const checkpoints = checkpointSteps(spec.checkpoints, total, perEpoch);
  const evals = spec.evalEvery !== undefined ? everySteps(spec.evalEvery, total) : checkpoints;
  return {
    stepsPerEpoch: perEpoch,
    totalSteps: total,
    checkpoints,
    evals,
    lr: compileLrSchedule(spec.lrSchedule, spec.optimizer.lr),
  };
}
