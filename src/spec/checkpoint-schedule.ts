/**
 * Which optimizer steps get a checkpoint. A checkpoint at step s holds the weights after s updates
 * (step 0 is the initialization); a run of T steps always checkpoints 0 and T.
 */
import { SpecError } from './errors.js';

/**
 * A checkpoint schedule as written in a run spec:
 * - `{ every: n }`: steps 0, n, 2n, … up to the last step.
 * - `{ steps: [...] }`: exactly these steps (each an integer in [0, total steps]).
 * - `{ log: count }`: about `count` log-spaced steps between 1 and the last step (see {@link logSteps}).
 * - `{ schedule: 'mao' }`: the epoch-based schedule of Mao et al. 2024 (see {@link maoSteps}).
 */
export type CheckpointSchedule =
  | { every: number }
  | { steps: number[] }
  | { log: number }
  | { schedule: 'mao' };

/**
 * The checkpoint steps of a run of `totalSteps` steps with `stepsPerEpoch` steps per epoch: sorted,
 * unique, always starting with 0 and ending with `totalSteps`. Throws a {@link SpecError} naming
 * `checkpoints.steps[i]` for an explicit step outside [0, totalSteps].
 */
export function checkpointSteps(
  schedule: CheckpointSchedule,
  totalSteps: number,
  stepsPerEpoch: number,
): number[] {
  checkPositiveInt('totalSteps', totalSteps);
  checkPositiveInt('stepsPerEpoch', stepsPerEpoch);
  let steps: number[];
  if ('every' in schedule) {
    checkPositiveInt('checkpoints.every', schedule.every);
    steps = [];
    for (let s = 0; s <= totalSteps; s += schedule.every) steps.push(s);
  } else if ('steps' in schedule) {
    const problems: string[] = [];
    schedule.steps.forEach((s, i) => {
      if (!Number.isInteger(s) || s < 0 || s > totalSteps) {
        problems.push(`checkpoints.steps[${i}]: must be an integer step in [0, ${totalSteps}] (got ${s})`);
      }
    });
    if (problems.length > 0) throw new SpecError(problems);
    steps = [...schedule.steps];
  } else if ('log' in schedule) {
    steps = logSteps(schedule.log, totalSteps);
  } else {
    steps = maoSteps(totalSteps, stepsPerEpoch);
  }
  return uniqueSorted([0, ...steps, totalSteps]);
}

/**
 * `count` log-spaced steps from 1 to `totalSteps`: round(totalSteps^(i / (count − 1))) for
 * i = 0 … count − 1 (just `totalSteps` when count is 1), deduplicated, plus step 0. Early
 * points collide when count is large relative to log(totalSteps), so there may be fewer than
 * count + 1 steps.
 */
export function logSteps(count: number, totalSteps: number): number[] {
  checkPositiveInt('checkpoints.log', count);
  checkPositiveInt('totalSteps', totalSteps);
  const steps = [0, totalSteps];
  for (let i = 0; i < count - 1; i++) steps.push(Math.round(totalSteps ** (i / (count - 1))));
  return uniqueSorted(steps);
}

/**
 * The checkpoint schedule of Mao et al. 2024 ("The training process of many deep networks explores
 * the same low-dimensional manifold"), in epochs, converted to steps with S = `stepsPerEpoch`:
 * - epochs 0–4: four per epoch, at epoch e + 0, 0.25, 0.5, 0.75, i.e. steps round(S·(e + k/4))
 *   (Math.round, halves up) for k = 0…3;
 * - epochs 5–25: every epoch, steps S·e;
 * - epochs 29, 33, …, 65: every 4th epoch after 25;
 * - epochs 80, 95, 110, …: every 15th epoch after 65;
 * cut at `totalSteps`, plus steps 0 and `totalSteps`, deduplicated (with small S the quarter-epoch
 * points collide). With S = 10 and 100 epochs: 0, 3, 5, 8, 10, 13, …, 48, 50, 60, …, 250, 290, 330,
 * …, 650, 800, 950, 1000.
 */
export function maoSteps(totalSteps: number, stepsPerEpoch: number): number[] {
  checkPositiveInt('totalSteps', totalSteps);
  checkPositiveInt('stepsPerEpoch', stepsPerEpoch);
  const S = stepsPerEpoch;
  const epochs: number[] = [];
  for (let e = 0; e < 5; e++) for (let k = 0; k < 4; k++) epochs.push(e + k / 4);
  for (let e = 5; e <= 25; e++) epochs.push(e);
  for (let e = 29; e <= 65; e += 4) epochs.push(e);
  for (let e = 80; e * S <= totalSteps; e += 15) epochs.push(e);
  const steps = epochs.map((e) => Math.round(e * S)).filter((s) => s <= totalSteps);
  return uniqueSorted([0, ...steps, totalSteps]);
}

/** Steps 0, n, 2n, … and `totalSteps` (e.g. evaluation steps for `evalEvery`). */
export function everySteps(every: number, totalSteps: number): number[] {
  return checkpointSteps({ every }, totalSteps, 1);
}

function uniqueSorted(steps: number[]): number[] {
  return [...new Set(steps)].sort((a, b) => a - b);
}

function checkPositiveInt(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new SpecError(`${field}: must be a positive integer (got ${value})`);
  }
}
