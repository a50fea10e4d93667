export * from './checkpoint-schedule.js';
export * from './errors.js';
export { formatIssue, type Issue } from './issues.js';
export * from './lr-schedule.js';
export {
  type EngineKind,
  type ResolvedModelSpec,
  type ResolvedOptimizerSpec,
  type ResolvedRunSpec,
  resolveModel,
  resolveOptimizerSpec,
} from './resolve.js';
export * from './run-plan.js';
export * from './run-spec.js';
export * from './schemas.js';
export * from './spec-file.js';
