/**
 * Correct counts of classifiers trained with squared error on one-hot targets: both engines count
 * argmax hits for every model with two or more outputs, equal to a float64 forward pass counted by
 * hand; single-output models count none, and the measurements report accuracy only where the data
 * has classes.
 */
import { describe, expect, test } from 'vitest';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import { createTfjsEngine } from '../../src/engine/tfjs/engine.js';
import { interpolationCurve } from '../../src/measure/barrier.js';
import { engineEvaluator } from '../../src/measure/sensitivity.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { mulberry32, referenceForward, uniformArray } from '../helpers/reference-model.js';

const n = 200;
const classes = 4;
const model = modelGraphSpec({ kind: 'mlp', hidden: [16], activation: 'relu' }, 6, classes, 'mse');
const rand = mulberry32(11);
const params = uniformArray(rand, model.layout.size, -0.8, 0.8);
const x = uniformArray(rand, n * model.inputDim);
const y = new Float32Array(n * classes);
for (let i = 0; i < n; i++) y[i * classes + Math.floor(rand() * classes)] = 1;

function argmax(v: ArrayLike<number>, row: number, k: number): number {
  let best = 0;
  for (let j = 1; j < k; j++) if ((v[row * k + j] as number) > (v[row * k + best] as number)) best = j;
  return best;
}

/** Argmax hits of the float64 reference forward pass. */
function referenceCorrect(p: Float32Array): number {
  const { output } = referenceForward(model, p, x, n);
  let hits = 0;
  for (let i = 0; i < n; i++) if (argmax(output, i, classes) === argmax(y, i, classes)) hits++;
  return hits;
}

describe('correct counts of an mse classifier', () => {
  test('ORT evaluate, ORT evaluateMany and tfjs evaluate count the argmax hits', async () => {
    const expected = referenceCorrect(params);
    // Not a degenerate count: some rows right, some wrong.
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(n);
    const ort = await createOrtEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    const tfjs = await createTfjsEngine(model, { optimizer: { kind: 'sgd', lr: 0.1 } });
    try {
      expect((await ort.evaluate(params, x, y, n)).correct).toBe(expected);
      expect((await tfjs.evaluate(params, x, y, n)).correct).toBe(expected);
      const other = uniformArray(mulberry32(12), model.layout.size, -0.8, 0.8);
      const many = await ort.evaluateMany([params, other], x, y, n);
      expect(many.map((r) => r.correct)).toEqual([expected, referenceCorrect(other)]);

      // Measurements: accuracy when the data says classification, NaN when it says regression or
      // (no task given) for an mse model.
      const asClasses = await engineEvaluator(ort, { x, y, n, task: 'classification' })(params);
      expect(asClasses.accuracy).toBe(expected / n);
      expect(Number.isNaN((await engineEvaluator(ort, { x, y, n })(params)).accuracy)).toBe(true);
      const curve = await interpolationCurve(ort, params, other, { x, y, n, task: 'classification' }, [0, 1]);
      expect(curve.error).toEqual([1 - expected / n, 1 - referenceCorrect(other) / n]);
      const regression = await interpolationCurve(ort, params, other, { x, y, n, task: 'regression' }, [0]);
      expect(Number.isNaN(regression.error[0])).toBe(true);
    } finally {
      await Promise.all([ort.dispose(), tfjs.dispose()]);
    }
  });

  test('a single-output model counts no hits', async () => {
    const chain = modelGraphSpec({ kind: 'deep-linear-chain', depth: 3 }, 5, 1, 'mse');
    const r = mulberry32(3);
    const p = uniformArray(r, chain.layout.size);
    const xs = uniformArray(r, 10 * 5);
    const ys = uniformArray(r, 10);
    const ort = await createOrtEngine(chain, { optimizer: { kind: 'sgd', lr: 0.1 } });
    try {
      expect((await ort.evaluate(p, xs, ys, 10)).correct).toBe(0);
      const e = await engineEvaluator(ort, { x: xs, y: ys, n: 10, task: 'classification' })(p);
      expect(Number.isNaN(e.accuracy)).toBe(true);
    } finally {
      await ort.dispose();
    }
  });
});
