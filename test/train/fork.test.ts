import { join, relative } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import type { Batch } from '../../src/data/types.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { Rng } from '../../src/rng/rng.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints } from '../../src/store/index.js';
import { forkRun } from '../../src/train/fork.js';
import { verifyRun } from '../../src/train/inspect.js';
import { initScaleNorm } from '../../src/train/perturb.js';
import { readRunJson, trainRun } from '../../src/train/run.js';
import { referenceGradientFD } from '../helpers/reference-model.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-fork-');
const parentDir = join(root, 'parent');
const spec = parseRunSpec({
  name: 'parent',
  seed: 1,
  data: { name: 'moons', n: 500, noise: 0.2, testFraction: 0.2, standardize: true },
  model: { kind: 'mlp', hidden: [16, 16], activation: 'relu' },
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  batchSize: 20,
  steps: 600,
  checkpoints: { every: 100 },
});

const l2 = (a: Float32Array, b: Float32Array) =>
  Math.sqrt(a.reduce((s, v, i) => s + (v - (b[i] as number)) ** 2, 0));
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const byStep = (dir: string) => new Map(readCheckpoints(dir).map((c) => [c.step, c]));
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
};
const cosine = (a: ArrayLike<number>, b: ArrayLike<number>) => dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));

/** ε as it landed in the twin: its checkpoint at the fork step minus the parent's, in float64. */
function appliedPerturbation(twinDir: string, forkStep: number): Float64Array {
  const t = byStep(twinDir).get(forkStep)?.params as Float32Array;
  const p = byStep(parentDir).get(forkStep)?.params as Float32Array;
  return Float64Array.from(t, (v, i) => v - (p[i] as number));
}

/**
 * The minibatch gradient a `batch` perturbation of `seed` points along, computed here: the parent's
 * train split, the first batchSize indices of a permutation from the perturbation's own stream
 * (`perturb` → `batch` of Rng(seed)), gathered by hand, and the float64 finite-difference gradient
 * of the mean loss at the parent's weights (no engine involved).
 */
function expectedBatchGradient(forkStep: number, seed: number, indices?: ArrayLike<number>) {
  const { spec: parent, layout } = readRunJson(parentDir);
  const data = loadDataset(parent.data, parent.dataSeed);
  const model = modelGraphSpec(parent.model, data.inputDim, data.outputDim, parent.loss);
  const size = parent.batchSize as number;
  const idx =
    indices ??
    Rng.fromSeed(seed).stream('perturb').stream('batch').permutation(data.train.n).subarray(0, size);
  const [di, dout] = [data.inputDim, data.outputDim];
  const batch: Batch = {
    x: new Float32Array(idx.length * di),
    y: new Float32Array(idx.length * dout),
    size: idx.length,
  };
  for (const [k, i] of Array.from(idx).entries()) {
    batch.x.set(data.train.x.subarray(i * di, (i + 1) * di), k * di);
    batch.y.set(data.train.y.subarray(i * dout, (i + 1) * dout), k * dout);
  }
  const params = byStep(parentDir).get(forkStep)?.params as Float32Array;
  return { grad: referenceGradientFD(model, params, batch), layout, params, n: data.train.n, size };
}

beforeAll(async () => {
  await trainRun(spec, parentDir);
});

describe('forkRun', () => {
  test('σ = 0 twin reproduces the parent bit for bit at every checkpoint after the fork', async () => {
    const twin = join(root, 'sigma0');
    const run = await forkRun(parentDir, 200, { kind: 'gaussian', sigma: 0, seed: 5 }, twin);
    expect(run.lineage).toMatchObject({ parent: relative(twin, parentDir), forkStep: 200 });
    expect(run.checkpointSteps).toEqual([200, 300, 400, 500, 600]);
    const p = byStep(parentDir);
    for (const c of readCheckpoints(twin)) {
      const pc = p.get(c.step)?.params as Float32Array;
      expect(bytes(c.params).equals(bytes(pc))).toBe(true);
    }
    expect(verifyRun(twin).ok).toBe(true);
  });

  test('a gaussian twin starts exactly ‖ε‖ away and its distance grows', async () => {
    const twin = join(root, 'gauss');
    const sigma = 1e-4;
    await forkRun(parentDir, 200, { kind: 'gaussian', sigma, seed: 5 }, twin);
    const p = byStep(parentDir);
    const t = byStep(twin);
    const d0 = l2(t.get(200)?.params as Float32Array, p.get(200)?.params as Float32Array);
    expect(d0 / initScaleNorm(readRunJson(parentDir).layout, sigma)).toBeCloseTo(1, 3);
    const dEnd = l2(t.get(600)?.params as Float32Array, p.get(600)?.params as Float32Array);
    expect(dEnd).toBeGreaterThan(0);
  });

  test('a batch twin starts at θ + ε, ε = σ·(init norm)·ĝ with ĝ the gradient of its own extra minibatch', async () => {
    const twin = join(root, 'batch');
    const [forkStep, sigma, seed] = [100, 1e-3, 2];
    const run = await forkRun(parentDir, forkStep, { kind: 'batch', sigma, seed }, twin);
    const { grad, layout, params, n, size } = expectedBatchGradient(forkStep, seed);
    // The requested norm σ·sqrt(Σ_k s_k² n_k), summed here from the layout's init stds.
    const target = sigma * Math.sqrt(layout.tensors.reduce((s, t) => s + t.initStd ** 2 * t.size, 0));
    expect(target).toBeCloseTo(initScaleNorm(layout, sigma), 12);
    const lineage = run.lineage.perturbation as { kind: string; sigma: number; seed: number; norm: number };
    expect(lineage).toMatchObject({ kind: 'batch', sigma, seed });
    expect(Math.abs(lineage.norm / target - 1)).toBeLessThan(1e-6); // ε in float32

    const eps = appliedPerturbation(twin, forkStep);
    const gNorm = Math.sqrt(dot(grad, grad));
    const maxEps = (target * Math.max(...grad.map(Math.abs))) / gNorm;
    for (let i = 0; i < eps.length; i++) {
      const want = ((grad[i] as number) * target) / gNorm;
      // θ + ε is rounded to float32 once (≤ half an ulp of |θ|); the engine's float32 gradient agrees
      // with the float64 finite differences to ~1e-5 relative.
      const tol = 2 ** -24 * (Math.abs(params[i] as number) + Math.abs(want)) + 1e-4 * maxEps;
      expect(Math.abs((eps[i] as number) - want), `entry ${i}`).toBeLessThanOrEqual(tol);
    }
    expect(cosine(eps, grad)).toBeGreaterThan(1 - 1e-8);
    expect(Math.abs(Math.sqrt(dot(eps, eps)) / target - 1)).toBeLessThan(1e-4);

    // The check tells minibatches apart: the gradient of another batch (the next block of the same
    // permutation) points elsewhere.
    const perm = Rng.fromSeed(seed).stream('perturb').stream('batch').permutation(n);
    const other = expectedBatchGradient(forkStep, seed, perm.subarray(size, 2 * size)).grad;
    expect(cosine(eps, other)).toBeLessThan(0.99);
  });

  test('a masked, partial batch twin: ε is the gradient on a random quarter of the weights, biases untouched', async () => {
    const twin = join(root, 'batch-masked');
    const [forkStep, sigma, seed, fraction] = [500, 1e-2, 3, 0.25];
    await forkRun(parentDir, forkStep, { kind: 'batch', sigma, seed, mask: 'weight$', fraction }, twin);
    const { grad, layout, params } = expectedBatchGradient(forkStep, seed);
    const weights = layout.tensors.filter((t) => /weight$/.test(t.name));
    expect(weights.length).toBeGreaterThan(0);
    expect(weights.length).toBeLessThan(layout.tensors.length);
    // The entry subset: the entries of the masked tensors in layout order, of which the first
    // round(fraction · count) of a permutation from the perturbation's `fraction` stream are kept.
    const candidates = weights.flatMap((t) => Array.from({ length: t.size }, (_, k) => t.offset + k));
    const count = Math.round(fraction * candidates.length);
    const order = Rng.fromSeed(seed).stream('perturb').stream('fraction').permutation(candidates.length);
    const chosen = new Set(Array.from(order.subarray(0, count), (k) => candidates[k] as number));
    // The norm counts whole selected tensors even when fraction < 1 (docs/methods.md).
    const target = sigma * Math.sqrt(weights.reduce((s, t) => s + t.initStd ** 2 * t.size, 0));
    let gg = 0;
    for (const i of chosen) gg += (grad[i] as number) ** 2;
    const want = Float64Array.from(grad, (g, i) => (chosen.has(i) ? (g * target) / Math.sqrt(gg) : 0));

    const eps = appliedPerturbation(twin, forkStep);
    const maxEps = Math.max(...want.map(Math.abs));
    for (let i = 0; i < eps.length; i++) {
      if (!chosen.has(i)) {
        expect(eps[i], `entry ${i} is not perturbed`).toBe(0);
        continue;
      }
      const tol = 2 ** -24 * (Math.abs(params[i] as number) + Math.abs(want[i] as number)) + 1e-4 * maxEps;
      expect(Math.abs((eps[i] as number) - (want[i] as number)), `entry ${i}`).toBeLessThanOrEqual(tol);
    }
    expect(cosine(eps, want)).toBeGreaterThan(1 - 1e-8);
    expect(Math.abs(Math.sqrt(dot(eps, eps)) / target - 1)).toBeLessThan(1e-4);
  });

  test('forking at a step without a checkpoint is an error', async () => {
    await expect(
      forkRun(parentDir, 150, { kind: 'gaussian', sigma: 1, seed: 1 }, join(root, 'x')),
    ).rejects.toThrow('has no checkpoint at step 150');
  });
});
