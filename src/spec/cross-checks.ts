/**
 * Cross-field checks of a run spec: problems that no single field's schema sees (epochs or steps,
 * one checkpoint schedule, checkpoint steps within the run, nesterov's requirements, a learning-rate
 * expression that compiles). They run on the raw input so that they are reported alongside schema
 * problems.
 */
import { SpecError } from './errors.js';
import { isRecord } from './issues.js';
import { compileLrSchedule } from './lr-schedule.js';

/** The keys of a checkpoint schedule, of which a run spec gives exactly one. */
const CHECKPOINT_KEYS = ['every', 'steps', 'log', 'schedule'] as const;

/** Every cross-field problem of a raw run spec object, one line each. */
export function crossCheck(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const has = (obj: Record<string, unknown>, key: string) => obj[key] !== undefined;

  if (has(raw, 'epochs') && has(raw, 'steps')) {
    problems.push('epochs, steps: give exactly one of epochs or steps, not both');
  } else if (!has(raw, 'epochs') && !has(raw, 'steps')) {
    problems.push('epochs: missing (give exactly one of epochs or steps)');
  }

  const checkpoints = raw.checkpoints;
  if (isRecord(checkpoints)) {
    const given = CHECKPOINT_KEYS.filter((k) => has(checkpoints, k));
    if (given.length !== 1) {
      problems.push(
        `checkpoints: expected exactly one of every, steps, log or schedule (got ${given.length === 0 ? 'none' : given.join(' and ')})`,
      );
    }
    const steps = checkpoints.steps;
    if (Array.isArray(steps) && typeof raw.steps === 'number' && !has(raw, 'epochs')) {
      const total = raw.steps;
      steps.forEach((s, i) => {
        if (typeof s === 'number' && s > total) {
          problems.push(`checkpoints.steps[${i}]: step ${s} is beyond the last step (steps = ${total})`);
        }
      });
    }
  }

  const opt = raw.optimizer;
  let lr = 1;
  if (isRecord(opt)) {
    if (typeof opt.lr === 'number' && opt.lr > 0) lr = opt.lr;
    if (opt.kind === 'sgd' && opt.nesterov === true) {
      const momentum = typeof opt.momentum === 'number' ? opt.momentum : 0;
      const dampening = typeof opt.dampening === 'number' ? opt.dampening : 0;
      if (momentum <= 0 || dampening !== 0) {
        problems.push(
          `optimizer.nesterov: requires momentum > 0 and dampening 0 (got momentum ${momentum}, dampening ${dampening})`,
        );
      }
    }
  }

  const sharpness = raw.sharpness;
  if (isRecord(sharpness)) {
    const topK = typeof sharpness.topK === 'number' ? sharpness.topK : 1;
    if (sharpness.method === 'power' && topK > 1) {
      problems.push(
        `sharpness.topK: power iteration finds one eigenvalue (got topK ${topK}); use method 'lanczos' for more`,
      );
    }
    if (sharpness.method !== 'power' && typeof sharpness.steps === 'number' && sharpness.steps < topK) {
      problems.push(`sharpness.steps: Lanczos needs at least topK = ${topK} steps (got ${sharpness.steps})`);
    }
  }

  if (typeof raw.lrSchedule === 'string') {
    try {
      compileLrSchedule(raw.lrSchedule, lr);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      problems.push(...err.problems);
    }
  }
  return problems;
}
