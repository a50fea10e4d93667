import { describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import { Rng } from '../../src/rng/rng.js';
import {
  applyPerturbation,
  gaussianPerturbation,
  gradientPerturbation,
  initScaleNorm,
} from '../../src/train/perturb.js';
import { mulberry32, randomBatch } from '../helpers/reference-model.js';

const model = modelGraphSpec(
  { kind: 'mlp', hidden: [20, 10], init: { kind: 'he', biasStd: 0.05 } },
  5,
  3,
  'cross-entropy',
);
const { layout } = model;
const params = initParams(layout, { kind: 'he', biasStd: 0.05 }, Rng.fromSeed(1).stream('init'));
const rng = () => Rng.fromSeed(9).stream('perturb');

describe('perturbations (docs/methods.md §5)', () => {
  test('the init-scale norm is σ·sqrt(Σ s_k² n_k), computed by hand', () => {
    // He: s = sqrt(2 / fan_in) for weights; biases 0.05.
    const expected = Math.sqrt(
      (2 / 5) * 100 + 0.05 ** 2 * 20 + (2 / 20) * 200 + 0.05 ** 2 * 10 + (2 / 10) * 30 + 0.05 ** 2 * 3,
    );
    expect(initScaleNorm(layout, 1)).toBeCloseTo(expected, 12);
    expect(initScaleNorm(layout, 1e-3, 'weight$')).toBeCloseTo(1e-3 * Math.sqrt(40 + 20 + 6), 15);
  });

  test.each([1, 1e-2, 1e-8])('gaussian noise of σ = %s has exactly the target norm', (sigma) => {
    const p = gaussianPerturbation(layout, sigma, rng());
    expect(p.norm / p.targetNorm).toBeCloseTo(1, 6);
    expect(p.entries).toBe(layout.size);
  });

  test('σ = 0 leaves every weight bit for bit, -0 included', () => {
    const withNegZero = params.slice();
    withNegZero[3] = -0;
    const twin = applyPerturbation(withNegZero, gaussianPerturbation(layout, 0, rng()));
    expect(Buffer.from(twin.buffer).equals(Buffer.from(withNegZero.buffer))).toBe(true);
  });

  test('the mask leaves unselected tensors untouched; the noise is deterministic', () => {
    const p = gaussianPerturbation(layout, 0.1, rng(), { mask: 'weight$' });
    for (const t of layout.tensors) {
      const part = p.epsilon.subarray(t.offset, t.offset + t.size);
      if (t.role === 'bias') expect(part.every((v) => v === 0)).toBe(true);
      else expect(part.some((v) => v !== 0)).toBe(true);
    }
    expect(gaussianPerturbation(layout, 0.1, rng(), { mask: 'weight$' }).epsilon).toEqual(p.epsilon);
    expect(() => gaussianPerturbation(layout, 0.1, rng(), { mask: 'nothing' })).toThrow(
      "perturbation.mask 'nothing' selects no tensor",
    );
  });

  test('a tiny fraction perturbs exactly one entry (the single-weight case)', () => {
    const p = gaussianPerturbation(layout, 1e-4, rng(), { fraction: 1e-9 });
    expect(p.entries).toBe(1);
    expect(p.epsilon.filter((v) => v !== 0)).toHaveLength(1);
    expect(Math.abs(p.epsilon.find((v) => v !== 0) as number)).toBeCloseTo(p.targetNorm, 10);
    const tenth = gaussianPerturbation(layout, 1, rng(), { fraction: 0.1 });
    expect(tenth.entries).toBe(Math.round(0.1 * layout.size));
  });

  test('a batch perturbation points along the minibatch gradient', async () => {
    const engine = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const batch = randomBatch(model, 16, mulberry32(2));
    const { grad } = await engine.gradient(params, batch);
    await engine.dispose();
    const p = gradientPerturbation(layout, 1e-3, grad, rng());
    let dot = 0;
    let gg = 0;
    for (let i = 0; i < grad.length; i++) {
      dot += (p.epsilon[i] as number) * (grad[i] as number);
      gg += (grad[i] as number) ** 2;
    }
    expect(dot / (p.norm * Math.sqrt(gg))).toBeCloseTo(1, 6);
    expect(p.norm / initScaleNorm(layout, 1e-3)).toBeCloseTo(1, 6);
  });
});
