/**
 * Run specs: the JSON file that says what one run trains, parsed and validated with every default
 * filled, the step plan it implies, and its checkpoint and learning-rate schedules. The zod schemas,
 * problem messages and cross-field checks stay inside this folder.
 */
export {
  type CheckpointSchedule,
  checkpointSteps,
  everySteps,
  logSteps,
  maoSteps,
} from './checkpoint-schedule.js';
export { SpecError } from './errors.js';
export { compileLrSchedule, type LrSchedule } from './lr-schedule.js';
export type {
  DiagnosticsSpec,
  EngineKind,
  MeasureEvery,
  ResolvedModelSpec,
  ResolvedOptimizerSpec,
  ResolvedRunSpec,
  SharpnessSpec,
} from './resolve.js';
export { planRun, type RunPlan, totalSteps } from './run-plan.js';
export { loadRunSpec, parseRunSpec } from './run-spec.js';
