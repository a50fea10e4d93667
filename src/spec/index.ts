export * from './checkpoint-schedule.js';
export * from './errors.js';
export * from './lr-schedule.js';
export * from './run-spec.js';
