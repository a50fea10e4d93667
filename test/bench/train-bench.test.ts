import { describe, expect, it } from 'vitest';
import { mlpSpec, modelName, randomBatch, randomParams } from '../../src/bench/inputs.js';
import {
  LOCKSTEP_BENCH_CASE,
  LOCKSTEP_BENCH_RUNS,
  runLockstepBenchmark,
} from '../../src/bench/lockstep-bench.js';
import { pythonCandidates } from '../../src/bench/python.js';
import {
  NET_BENCH_CASES,
  netBenchModel,
  netStepFlops,
  runTrainBenchmark,
  TRAIN_BENCH_CASES,
  trainStepFlops,
} from '../../src/bench/train-bench.js';
import { formatTrainBench } from '../../src/bench/train-bench-format.js';
import type { Net } from '../../src/model/net.js';
import { median } from '../../src/util/stats.js';

describe('train benchmark helpers', () => {
  it('counts 6 · batch · Σ in·out FLOPs per step', () => {
    // 784·256 + 256·256 + 256·10 = 268800
    // The first layer's input gradient (784 × 256 per example) is never computed.
    expect(trainStepFlops([784, 256, 256, 10], 128)).toBe(6 * 128 * 268_800 - 2 * 128 * 784 * 256);
    expect(trainStepFlops([2, 64, 64, 2], 32)).toBe(6 * 32 * (128 + 4096 + 128) - 2 * 32 * 2 * 64);
  });

  it('counts conv FLOPs as 2·B·O·C·k²·H′·W′ forward and twice that backward, but no input gradient for the first conv', () => {
    const [cnn, resnet] = NET_BENCH_CASES;
    expect(cnn?.model).toBe('cnn-16-32-d64-bn');
    expect(resnet?.model).toBe('resnet8-bn');
    const cnnNet = netBenchModel(cnn!).net as Net;
    // conv0 1→16 on 28×28 (forward and weight gradient only), conv1 16→32 on 14×14, dense 1568→64, 64→10.
    const conv0 = 2 * 128 * 16 * 1 * 9 * 28 * 28;
    const conv1 = 2 * 128 * 32 * 16 * 9 * 14 * 14;
    const dense = 2 * 128 * (32 * 7 * 7 * 64 + 64 * 10);
    expect(netStepFlops(cnnNet, 128)).toBe(2 * conv0 + 3 * conv1 + 3 * dense);
    expect(netStepFlops(cnnNet, 128)).toBe(828_997_632);
    // ResNet-8: the stem, three blocks of two 3×3 convs, two 1×1 stride-2 shortcuts, the dense head.
    const resnetNet = netBenchModel(resnet!).net as Net;
    const conv = (o: number, c: number, k: number, hw: number) => 2 * o * c * k * k * hw * hw;
    const perExample =
      2 * conv(16, 1, 3, 28) +
      3 * (2 * conv(16, 16, 3, 28)) +
      3 * (conv(32, 16, 3, 14) + conv(32, 32, 3, 14) + conv(32, 16, 1, 14)) +
      3 * (conv(64, 32, 3, 7) + conv(64, 64, 3, 7) + conv(64, 32, 1, 7)) +
      3 * 2 * 64 * 10;
    expect(netStepFlops(resnetNet, 2)).toBe(2 * perExample);
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
    await expect(runTrainBenchmark({ models: ['vit' as never] })).rejects.toThrow(/unknown model 'vit'/);
    await expect(runTrainBenchmark({ lockstepRuns: [0] })).rejects.toThrow(
      /lockstepRuns entry must be a positive integer, got 0/,
    );
    await expect(runLockstepBenchmark({ runs: [2.5] })).rejects.toThrow(
      /runs entry must be a positive integer/,
    );
  });

  it('draws the same inputs from the same seed', () => {
    const spec = mlpSpec([2, 8, 3]);
    expect(randomParams(spec, 1)).toEqual(randomParams(spec, 1));
    expect(randomParams(spec, 1)).not.toEqual(randomParams(spec, 2));
    const batch = randomBatch(spec, 5, 1);
    expect(batch).toEqual(randomBatch(spec, 5, 1));
    expect(batch.x).toHaveLength(5 * 2);
    // One-hot targets: one 1 per row of 3.
    for (let r = 0; r < 5; r++)
      expect(Array.from(batch.y.subarray(3 * r, 3 * r + 3)).sort()).toEqual([0, 0, 1]);
  });

  it('takes the median of an odd and an even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('looks for Debian python when python3 on PATH lacks torch, unless TWINSCOPE_PYTHON is set', () => {
    expect(pythonCandidates({})).toEqual(['python3', '/usr/bin/python3']);
    expect(pythonCandidates({ TWINSCOPE_PYTHON: '/opt/py/bin/python' })).toEqual(['/opt/py/bin/python']);
  });
});

describe('conv-net cases', () => {
  it('times the CNN on ORT and, when torch is importable, in PyTorch, with GFLOP/s and the ratio', async () => {
    const result = await runTrainBenchmark({
      engines: ['ort', 'torch'],
      models: ['cnn'],
      steps: 1,
      warmupSteps: 0,
      lockstepRuns: [],
    });
    expect(result.failures).toEqual([]);
    const flops = netStepFlops(netBenchModel(NET_BENCH_CASES[0]!).net as Net, 128);
    const ort = result.cases.find((c) => c.engine === 'ort');
    expect(ort).toMatchObject({ model: 'cnn-16-32-d64-bn', batch: 128, threads: 1 });
    expect(ort!.gflops).toBeCloseTo(flops / (ort!.msPerStep * 1e6), 9);
    expect(result.timing.timedSteps['ort cnn-16-32-d64-bn@128']).toBe(1);
    expect(result.ratios.map((r) => r.model)).toEqual(['cnn-16-32-d64-bn']);
    const torch = result.cases.find((c) => c.engine === 'torch');
    if (torch) {
      expect(torch).toMatchObject({ model: 'cnn-16-32-d64-bn', batch: 128, threads: 1 });
      expect(torch.gflops).toBeCloseTo(flops / (torch.msPerStep * 1e6), 6);
      expect(result.ratios[0]!.ortSpeedupVsTorch).toBeCloseTo(torch.msPerStep / ort!.msPerStep, 9);
    } else {
      expect(result.notes.torch).toMatch(/^skipped: python3-torch not importable/);
      expect(result.ratios[0]!.ortSpeedupVsTorch).toBeNull();
    }
  }, 120_000);
});

describe('lock-step benchmark', () => {
  it('compares separate and lock-step run-steps/s for MLP 2-64-64-2 at batch 32', async () => {
    expect(LOCKSTEP_BENCH_RUNS).toEqual([1, 8, 32]);
    expect(modelName(LOCKSTEP_BENCH_CASE.widths)).toBe('mlp-2-64-64-2');
    const result = await runLockstepBenchmark({ runs: [1, 4], steps: 3, warmupSteps: 1 });
    expect(result).toMatchObject({
      model: 'mlp-2-64-64-2',
      batch: 32,
      engine: 'ort',
      threads: 1,
      optimizer: 'sgd',
    });
    expect(result.cases.map((c) => c.runs)).toEqual([1, 4]);
    for (const c of result.cases) {
      expect(c.timedSteps).toEqual({ separate: 3, lockstep: 3 });
      for (const v of [c.separateMsPerStep, c.lockstepMsPerStep, c.separateRunStepsPerSecond, c.speedup]) {
        expect(Number.isFinite(v) && v > 0).toBe(true);
      }
      // Run-steps/s is R over the median seconds per step; the speedup is the ratio of the two rates.
      expect(c.separateRunStepsPerSecond).toBeCloseTo((1000 * c.runs) / c.separateMsPerStep, 6);
      expect(c.lockstepRunStepsPerSecond).toBeCloseTo((1000 * c.runs) / c.lockstepMsPerStep, 6);
      expect(c.speedup).toBeCloseTo(c.lockstepRunStepsPerSecond / c.separateRunStepsPerSecond, 9);
    }
    const text = formatTrainBench({
      gemmPeakGflops: null,
      cases: [],
      ratios: [],
      backends: {},
      notes: {},
      failures: [],
      flopsFormula: '',
      timing: { warmupSteps: 1, steps: 3, minSeconds: 1, statistic: 'median', timedSteps: {} },
      machine: {} as never,
      lockstep: result,
    });
    expect(text).toContain('lock-step twins, mlp-2-64-64-2 batch 32');
    expect(text.split('\n').filter((l) => /^\s*[14]\s+\d/.test(l))).toHaveLength(2);
  });
});
