import { describe, expect, it } from 'vitest';
import { pythonCandidates } from '../../src/bench/python.js';
import {
  modelName,
  runTrainBenchmark,
  TRAIN_BENCH_CASES,
  trainStepFlops,
} from '../../src/bench/train-bench.js';

describe('train benchmark helpers', () => {
  it('counts 6 · batch · Σ in·out FLOPs per step', () => {
    // 784·256 + 256·256 + 256·10 = 268800
    // The first layer's input gradient (784 × 256 per example) is never computed.
    expect(trainStepFlops([784, 256, 256, 10], 128)).toBe(6 * 128 * 268_800 - 2 * 128 * 784 * 256);
    expect(trainStepFlops([2, 64, 64, 2], 32)).toBe(6 * 32 * (128 + 4096 + 128) - 2 * 32 * 2 * 64);
  });

  it('names and lists the benchmarked MLPs', () => {
    expect(TRAIN_BENCH_CASES.map((c) => `${modelName(c.widths)}@${c.batch}`)).toEqual([
      'mlp-784-256-256-10@128',
      'mlp-2-64-64-2@32',
    ]);
  });

  it('rejects bad options before doing any work', async () => {
    await expect(runTrainBenchmark({ threads: 0 })).rejects.toThrow(/threads must be a positive integer/);
    await expect(runTrainBenchmark({ steps: 1.5 })).rejects.toThrow(/steps must be a positive integer/);
    await expect(runTrainBenchmark({ engines: ['jax' as never] })).rejects.toThrow(/unknown engine 'jax'/);
  });

  it('looks for Debian python when python3 on PATH lacks torch, unless TWINSCOPE_PYTHON is set', () => {
    expect(pythonCandidates({})).toEqual(['python3', '/usr/bin/python3']);
    expect(pythonCandidates({ TWINSCOPE_PYTHON: '/opt/py/bin/python' })).toEqual(['/opt/py/bin/python']);
  });
});
