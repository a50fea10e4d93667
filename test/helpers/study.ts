/** Shared pieces of the study tests: the tiny base run spec and a build of dist/ for worker processes. */
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_TMP } from './scratch.js';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..');

/** A two-moons MLP run spec that trains in well under a second: 300 train examples, 9 steps per epoch. */
export const tinyBase = {
  name: 'moons-sgd',
  seed: 0,
  data: { name: 'moons', n: 400, noise: 0.2, testFraction: 0.25, standardize: true },
  model: { kind: 'mlp', hidden: [16, 16], activation: 'relu' },
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  batchSize: 32,
  epochs: 5,
  checkpoints: { every: 10 },
};

/**
 * A linear-regression run spec (mse, bias-free linear model, full-batch GD) that trains in
 * milliseconds: 96 train / 24 test examples in 6 dimensions, spectrum decay 1, 12 steps.
 */
export const tinyLinear = {
  name: 'lin',
  seed: 0,
  dataSeed: 0,
  data: { name: 'linear-regression', n: 120, dim: 6, decay: 1 },
  model: { kind: 'linear', bias: false, init: { kind: 'normal', std: 0.5 } },
  optimizer: { kind: 'sgd', lr: 0.3 },
  batchSize: 'full',
  steps: 12,
  checkpoints: { every: 3 },
};

/**
 * `npm run build` (worker processes and the CLI binary run dist/), once for every test file that
 * asks within a few seconds of each other: a lock keeps concurrent test files (and test runs in this
 * checkout) from writing dist/ at the same time. Lock and stamp live in the checkout's .tmp/, so
 * other checkouts on the machine neither wait for nor skip this one's build.
 */
export async function buildDist(): Promise<void> {
  mkdirSync(TEST_TMP, { recursive: true });
  const lock = join(TEST_TMP, 'dist-build.lock');
  const stamp = join(TEST_TMP, 'dist-build.stamp');
  const asked = Date.now();
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      const since = statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now();
      if (Date.now() - since > 180_000) rmdirSync(lock); // left by a killed test run
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    const last = existsSync(stamp) ? Number(readFileSync(stamp, 'utf8')) : 0;
    if (last >= asked - 5000) return;
    const started = Date.now();
    execSync('npm run build', { cwd: ROOT, stdio: 'ignore' });
    writeFileSync(stamp, String(started));
  } finally {
    rmdirSync(lock);
  }
}
