/**
 * The run spec's `diagnostics` and `sharpness` (docs/methods.md §12): defaults, problems naming the
 * field, and the steps the plan measures at (plus an evaluation at each).
 */
import { describe, expect, test } from 'vitest';
import { planRun } from '../../src/spec/run-plan.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';

const base = {
  name: 'x',
  seed: 0,
  data: { name: 'moons', n: 100 },
  model: { kind: 'mlp', hidden: [4] },
  optimizer: { kind: 'sgd', lr: 0.1 },
  batchSize: 20,
  epochs: 3,
  checkpoints: { every: 5 },
};

describe('diagnostics and sharpness in a run spec', () => {
  test('absent unless given; given, their defaults are filled in', () => {
    const plain = parseRunSpec(base);
    expect(plain).not.toHaveProperty('diagnostics');
    expect(plain).not.toHaveProperty('sharpness');
    const spec = parseRunSpec({ ...base, diagnostics: { every: 'epoch' }, sharpness: { every: 2 } });
    expect(spec.diagnostics).toEqual({ every: 'epoch' });
    expect(spec.sharpness).toEqual({ every: 2, topK: 1, method: 'lanczos', steps: 50, tol: 1e-4, probes: 0 });
    const power = parseRunSpec({ ...base, sharpness: { every: 2, method: 'power', examples: 30 } });
    expect(power.sharpness).toEqual({
      every: 2,
      examples: 30,
      topK: 1,
      method: 'power',
      steps: 100,
      tol: 1e-3,
      probes: 0,
    });
  });

  test('problems name the field', () => {
    const problems = (extra: object) => {
      try {
        parseRunSpec({ ...base, ...extra });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    };
    expect(problems({ diagnostics: { every: 0 } })).toMatch(/diagnostics\.every: /);
    expect(problems({ diagnostics: { every: 'step' } })).toMatch(/diagnostics\.every: /);
    expect(problems({ diagnostics: { every: 1, examples: 0 } })).toMatch(
      /diagnostics\.examples: must be > 0/,
    );
    expect(problems({ diagnostics: { every: 1, topK: 2 } })).toMatch(/diagnostics: unknown field 'topK'/);
    expect(problems({ sharpness: { every: 1, method: 'power', topK: 2 } })).toMatch(
      /sharpness\.topK: power iteration finds one eigenvalue/,
    );
    expect(problems({ sharpness: { every: 1, topK: 3, steps: 2 } })).toMatch(
      /sharpness\.steps: Lanczos needs at least topK = 3 steps/,
    );
    expect(problems({ sharpness: { every: 1, method: 'arnoldi' } })).toMatch(
      /sharpness\.method: expected one of/,
    );
    expect(problems({ sharpness: { every: 1, probes: -1 } })).toMatch(/sharpness\.probes: must be >= 0/);
  });

  test('the plan measures at every k steps or epoch boundary and the last step, with an evaluation at each', () => {
    // 80 train examples, batches of 20: 4 steps per epoch, 12 steps.
    const plain = planRun(parseRunSpec(base), 80);
    expect(plain.diagnostics).toEqual([]);
    expect(plain.sharpness).toEqual([]);
    expect(plain.evals).toEqual([0, 5, 10, 12]);
    const plan = planRun(
      parseRunSpec({ ...base, diagnostics: { every: 'epoch' }, sharpness: { every: 7 } }),
      80,
    );
    expect(plan.diagnostics).toEqual([0, 4, 8, 12]);
    expect(plan.sharpness).toEqual([0, 7, 12]);
    expect(plan.checkpoints).toEqual([0, 5, 10, 12]);
    expect(plan.evals).toEqual([0, 4, 5, 7, 8, 10, 12]);
  });
});
