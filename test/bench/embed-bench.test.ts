import { describe, expect, it } from 'vitest';
import { runEmbedBenchmark, syntheticTrajectories } from '../../src/bench/embed-bench.js';

describe('bench embed', () => {
  it('quick run: JSON-serialisable result with agreeing fast and reference distances', async () => {
    const messages: string[] = [];
    const result = await runEmbedBenchmark({ quick: true, block: 8, log: (s) => messages.push(s) });
    const json = JSON.parse(JSON.stringify(result)) as typeof result;
    expect(json.sizes).toEqual({ m: 24, n: 100, classes: 10, runs: 4 });
    expect(json.reference.checkpoints).toBe(24);
    expect(json.distance.ms).toBeGreaterThan(0);
    expect(json.reference.ms).toBeGreaterThan(0);
    expect(json.reference.scaledMs).toBeCloseTo(json.reference.ms, 9); // same size: no scaling
    expect(json.speedup).toBeGreaterThan(0);
    // float64 graph against float64 JS: rounding only (relative error is largest on the smallest d)
    expect(json.agreementAbsolute).toBeLessThan(1e-13);
    expect(json.agreement).toBeLessThan(1e-7);
    expect(json.inpca.components).toBe(3);
    expect(json.inpca.eigenvalues).toHaveLength(3);
    expect(json.inpca.explainedStress[2]).toBeGreaterThan(json.inpca.explainedStress[0]!);
    expect(json.inpca.explainedStress[2]).toBeLessThanOrEqual(1);
    expect(json.totalMs).toBeCloseTo(json.distance.ms + json.inpca.ms, 9);
    expect(json.peakRssBytes).toBeGreaterThan(0);
    expect(json.machine.logicalCpus).toBeGreaterThan(0);
    expect(messages.length).toBeGreaterThan(2);
  }, 60_000);

  it('compareKernel times the earlier blocks kernel on the same inputs', async () => {
    const result = await runEmbedBenchmark({ m: 20, n: 70, classes: 5, block: 6, compareKernel: 'blocks' });
    expect(result.kernel).toBe('chunks');
    expect(result.baseline?.kernel).toBe('blocks');
    expect(result.baseline!.ms).toBeGreaterThan(0);
    expect(result.baseline!.ratio).toBeCloseTo(result.baseline!.ms / result.distance.ms, 9);
    expect(result.baseline!.agreementAbsolute).toBeLessThan(1e-13);
    const plain = await runEmbedBenchmark({ m: 8, n: 20, classes: 3, kernel: 'blocks' });
    expect(plain.kernel).toBe('blocks');
    expect(plain.baseline).toBeNull();
    expect(plain.agreementAbsolute).toBeLessThan(1e-13);
  });

  it('float32 graph and a reference subsample smaller than m', async () => {
    const result = await runEmbedBenchmark({
      m: 20,
      n: 50,
      classes: 4,
      referenceCheckpoints: 6,
      floatType: 'float32',
    });
    expect(result.reference.checkpoints).toBe(6);
    expect(result.reference.scaledMs).toBeCloseTo((result.reference.ms * 190) / 15, 9);
    expect(result.agreement).toBeLessThan(1e-4);
    expect(result.floatType).toBe('float32');
  });

  it('synthetic trajectories are normalised, deterministic and move away from their start', () => {
    const a = syntheticTrajectories(8, 30, 5, 2);
    const b = syntheticTrajectories(8, 30, 5, 2);
    expect(a).toHaveLength(8);
    expect(a[3]).toEqual(b[3]);
    for (let i = 0; i < 30; i++) {
      const s = a[5]!.subarray(i * 5, i * 5 + 5).reduce((x, y) => x + y, 0);
      expect(Math.abs(s - 1)).toBeLessThan(1e-6);
    }
    expect(a[0]).not.toEqual(a[3]);
    expect(a[0]).toEqual(a[4]); // every run starts from the same base
    expect(() => syntheticTrajectories(8, 30, 5, 2)).not.toThrow();
  });
});
