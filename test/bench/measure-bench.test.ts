import { describe, expect, it } from 'vitest';
import { jsEvaluate, type MeasureBenchResult } from '../../src/bench/measure-bench.js';
import { EXIT_OK } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { capture } from '../helpers/cli-io.js';

describe('bench measure', () => {
  it('runs --quick --json in-process and reports agreeing results', async () => {
    const io = capture();
    const code = await main(['node', 'twinscope', 'bench', 'measure', '--quick', '--json'], io);
    expect(code, io.err).toBe(EXIT_OK);
    const result = JSON.parse(io.out) as MeasureBenchResult;
    expect(result.machine.logicalCpus).toBeGreaterThan(0);
    expect(result.threads).toBe(1);
    expect(result.cases.map((c) => c.name)).toEqual([
      'barrier',
      'cka-linear dense0',
      'cka-debiased dense0',
      'cka-linear dense1',
      'cka-debiased dense1',
      'activation-matching',
      'weight-matching',
    ]);
    for (const c of result.cases) {
      expect(c.ms, c.name).toBeGreaterThan(0);
      expect(c.reference.ms, c.name).toBeGreaterThan(0);
      expect(typeof c.reference.name).toBe('string');
      expect(c.speedup, c.name).toBeGreaterThan(0);
      expect(Number.isFinite(c.agreement), c.name).toBe(true);
    }
    const of = (name: string) => result.cases.find((c) => c.name === name)!;
    // float32 ORT against float64 JS
    expect(of('barrier').agreement).toBeLessThan(1e-4);
    for (const name of [
      'cka-linear dense0',
      'cka-debiased dense0',
      'cka-linear dense1',
      'cka-debiased dense1',
    ]) {
      expect(of(name).agreement, name).toBeLessThan(1e-6);
    }
    // The GEMM kernels against the previous plain-JS ones, in the same run (issue 16).
    for (const name of [
      'cka-linear dense0',
      'cka-debiased dense0',
      'cka-linear dense1',
      'cka-debiased dense1',
    ]) {
      expect(of(name).baselineAgreement as number, name).toBeLessThan(1e-12);
      expect(of(name).speedupVsBaseline as number, name).toBeGreaterThan(0);
    }
    const gram = of('cka-linear dense0').gram as { agreement: number; jsMs: number };
    expect(gram.agreement).toBeLessThan(1e-12);
    expect(gram.jsMs).toBeGreaterThan(0);
    expect(of('activation-matching').agreement).toBe(0); // the same permutations
    const wm = of('weight-matching');
    expect(wm.baselineAgreement).toBe(0); // the same permutations as the previous implementation
    expect((wm.baseline as { sweeps: number }).sweeps).toBe(wm.sweeps);
    expect(wm.agreement).toBe(0); // the permuted copy is recovered exactly
    expect(wm.sweeps as number).toBeGreaterThanOrEqual(1);
    expect(wm.msPerSweep as number).toBeGreaterThan(0);
  }, 60_000);

  it('jsEvaluate: zero weights give loss log(classes) and error of label 0 never winning', () => {
    const spec = modelGraphSpec({ kind: 'mlp', hidden: [3] }, 2, 4, 'cross-entropy');
    const params = new Float32Array(spec.layout.size);
    const x = new Float32Array([1, 2, -1, 0.5]);
    const y = new Float32Array([0, 1, 0, 0, 1, 0, 0, 0]);
    const r = jsEvaluate(spec, params, x, y, 2);
    expect(r.loss).toBeCloseTo(Math.log(4), 12);
    expect(r.error).toBe(0.5); // all logits tie: argmax 0, matching only the second example
  });
});
