import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints } from '../../src/store/index.js';
import { forkRun } from '../../src/train/fork.js';
import { verifyRun } from '../../src/train/inspect.js';
import { initScaleNorm } from '../../src/train/perturb.js';
import { readRunJson, trainRun } from '../../src/train/run.js';

const root = mkdtempSync(join(tmpdir(), 'twinscope-fork-'));
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

  test('a batch twin differs from the parent; forking at a step without a checkpoint is an error', async () => {
    const twin = join(root, 'batch');
    const run = await forkRun(parentDir, 100, { kind: 'batch', sigma: 1e-3, seed: 2 }, twin);
    expect((run.lineage.perturbation as { norm: number }).norm).toBeGreaterThan(0);
    await expect(
      forkRun(parentDir, 150, { kind: 'gaussian', sigma: 1, seed: 1 }, join(root, 'x')),
    ).rejects.toThrow('has no checkpoint at step 150');
  });
});
