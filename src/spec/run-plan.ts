/**
 * The step plan of a run: its length, checkpoint and evaluation steps, and learning rate per step.
 */
import { stepsPerEpoch as batchStepsPerEpoch } from '../data/batching.js';
import { checkpointSteps, everySteps } from './checkpoint-schedule.js';
import { SpecError } from './errors.js';
import { compileLrSchedule, type LrSchedule } from './lr-schedule.js';
import type { MeasureEvery, ResolvedRunSpec } from './resolve.js';

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
  /**
   * Evaluation steps: every `evalEvery` steps (plus the last), or the checkpoint steps; with
   * `diagnostics` or `sharpness`, also their steps (each measured step has its evaluation row).
   */
  readonly evals: number[];
  /** Steps at which `diagnostics` are measured (docs/methods.md §12.1); empty without them. */
  readonly diagnostics: number[];
  /** Steps at which `sharpness` is measured (docs/methods.md §12.2); empty without it. */
  readonly sharpness: number[];
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
  const base = spec.evalEvery !== undefined ? everySteps(spec.evalEvery, total) : checkpoints;
  const measured = (m: { every: MeasureEvery } | undefined) =>
    m ? everySteps(m.every === 'epoch' ? perEpoch : m.every, total) : [];
  const diagnostics = measured(spec.diagnostics);
  const sharpness = measured(spec.sharpness);
  const evals =
    diagnostics.length + sharpness.length === 0
      ? base
      : [...new Set([...base, ...diagnostics, ...sharpness])].sort((a, b) => a - b);
  return {
    stepsPerEpoch: perEpoch,
    totalSteps: total,
    checkpoints,
    evals,
    diagnostics,
    sharpness,
    lr: compileLrSchedule(spec.lrSchedule, spec.optimizer.lr),
  };
}
