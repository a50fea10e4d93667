import { describe, expect, test } from 'vitest';
import { runLockstepBenchmark } from '../../src/bench/lockstep-bench.js';

describe('lock-step benchmark of the CNN', () => {
  test('times R separate steps and one lock-step call of the CNN with BatchNorm for each R', async () => {
    const r = await runLockstepBenchmark({ model: 'cnn', runs: [2], steps: 2, warmupSteps: 1 });
    expect(r.model).toBe('cnn-16-32-64-bn');
    expect(r.batch).toBe(64);
    expect(r.cases).toHaveLength(1);
    const c = r.cases[0] as (typeof r.cases)[number];
    expect(c.runs).toBe(2);
    expect(c.timedSteps).toEqual({ separate: 2, lockstep: 2 });
    expect(c.separateMsPerStep).toBeGreaterThan(0);
    expect(c.speedup).toBeCloseTo(c.separateMsPerStep / c.lockstepMsPerStep, 10);
  }, 120_000);
});
