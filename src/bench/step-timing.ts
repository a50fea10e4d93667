/**
 * What the step and lock-step benchmarks share: the settings of the timed SGD step and the loop
 * that times it.
 */
import type { EngineOptions } from '../engine/types.js';

/** Learning rate of the timed SGD steps. */
export const BENCH_LR = 0.01;

/** Fewest steps timed when the count is set by a minimum duration. */
const MIN_TIMED_STEPS = 10;

/** Most steps timed when the count is set by a minimum duration. */
const MAX_TIMED_STEPS = 100_000;

/** Engine options of the timed step: plain SGD at {@link BENCH_LR} on `threads` intra-op threads. */
export function benchEngineOptions(threads: number): EngineOptions {
  return { optimizer: { kind: 'sgd', lr: BENCH_LR }, threads };
}

/**
 * `warmupSteps` untimed calls of `step`, then individually timed calls (ms): exactly `steps`, or
 * as many as fit in `minSeconds` (at least {@link MIN_TIMED_STEPS}, at most {@link MAX_TIMED_STEPS}).
 */
export async function timeLoop(
  step: () => Promise<unknown>,
  steps: number | undefined,
  minSeconds: number,
  warmupSteps: number,
): Promise<number[]> {
  for (let i = 0; i < warmupSteps; i++) await step();
  const times: number[] = [];
  const started = process.hrtime.bigint();
  for (;;) {
    const t0 = process.hrtime.bigint();
    await step();
    const t1 = process.hrtime.bigint();
    times.push(Number(t1 - t0) / 1e6);
    if (steps !== undefined) {
      if (times.length >= steps) break;
    } else if (
      (times.length >= MIN_TIMED_STEPS && Number(t1 - started) / 1e9 >= minSeconds) ||
      times.length >= MAX_TIMED_STEPS
    ) {
      break;
    }
  }
  return times;
}
