/**
 * Runs on disk: a run killed with SIGKILL at an arbitrary moment and resumed ends bit-identical to an
 * uninterrupted run; a finished run is not retrained; verify and inspect read the directory.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints, readMetrics } from '../../src/store/index.js';
import { inspectRun, verifyRun } from '../../src/train/inspect.js';
import { trainRun } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/twinscope.js');

const specJson = {
  name: 'kill-test',
  seed: 3,
  data: { name: 'moons', n: 1000, noise: 0.2, testFraction: 0.2, standardize: true },
  model: { kind: 'mlp', hidden: [32, 32], activation: 'tanh' },
  optimizer: { kind: 'adam', lr: 0.005 },
  batchSize: 16,
  steps: 20000,
  checkpoints: { every: 1000 },
};

beforeAll(() => {
  // The child processes run the built CLI.
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'ignore' });
}, 120_000);

function startTrain(specPath: string, out: string): ChildProcess {
  return spawn(process.execPath, [bin, 'train', specPath, '--out', out, '--no-progress'], {
    stdio: 'ignore',
  });
}

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

const lastParams = (dir: string) => {
  const cps = readCheckpoints(dir);
  const last = cps[cps.length - 1];
  if (!last) throw new Error('no checkpoints');
  return {
    step: last.step,
    bytes: Buffer.from(last.params.buffer, last.params.byteOffset, last.params.byteLength),
  };
};

describe('twinscope train', () => {
  test('SIGKILL mid-run, then resume: final weights are bit-identical to an uninterrupted run', async () => {
    const dir = scratchDir('twinscope-run-');
    const specPath = join(dir, 'spec.json');
    writeFileSync(specPath, JSON.stringify(specJson));
    const reference = join(dir, 'reference');
    await trainRun(parseRunSpec(specJson), reference);

    const killed = join(dir, 'killed');
    for (const waitForBytes of [1, 150_000]) {
      // Kill once right after the first checkpoint lands and once later, mid-way.
      const child = startTrain(specPath, killed);
      const file = join(killed, 'checkpoints.arrow');
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline && !(existsSync(file) && statSync(file).size >= waitForBytes)) {
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill('SIGKILL');
      await exitOf(child);
    }
    const status = JSON.parse(readFileSync(join(killed, 'run.json'), 'utf8')).status;
    expect(status).toBe('running');
    const resumed = startTrain(specPath, killed);
    expect(await exitOf(resumed)).toBe(0);

    const a = lastParams(reference);
    const b = lastParams(killed);
    expect(b.step).toBe(20000);
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect(verifyRun(killed).ok).toBe(true);
    // One metrics row per step, as in the reference, whatever moment the kills hit.
    const stepsOf = (d: string) =>
      readMetrics(d)
        .filter((r) => r.kind === 'step')
        .map((r) => r.step);
    expect(stepsOf(killed)).toEqual(stepsOf(reference));
    expect(stepsOf(killed)).toHaveLength(20000);
    // Every step has exactly one metrics row after the resume, as in the reference.
    const info = inspectRun(killed);
    expect(info.checkpointSteps).toHaveLength(21);
    expect(info.final?.testAcc).toBeGreaterThan(0.9);
  }, 120_000);

  test('a classifier trained with squared error on one-hot targets reports its accuracy', async () => {
    const dir = scratchDir('twinscope-mse-acc-');
    await trainRun(parseRunSpec({ ...specJson, loss: 'mse', steps: 300, checkpoints: { every: 300 } }), dir);
    const evals = readMetrics(dir).filter((r) => r.kind === 'eval');
    const last = evals.at(-1);
    // Accuracy was recorded as 0 for mse classifiers before (correct predictions were counted for
    // cross-entropy only); the moons are learnt to well above chance in 300 Adam steps.
    expect(last?.testAcc).toBeGreaterThan(0.8);
    expect(last?.trainAcc).toBeGreaterThan(0.8);
  });

  test('a finished run is not retrained and its files are left untouched', async () => {
    const dir = scratchDir('twinscope-done-');
    const spec = parseRunSpec({ ...specJson, steps: 200, checkpoints: { every: 100 } });
    await trainRun(spec, dir);
    const before = statSync(join(dir, 'checkpoints.arrow')).mtimeMs;
    let mode = '';
    await trainRun(spec, dir, { onStart: (s) => (mode = s.mode) });
    expect(mode).toBe('complete');
    expect(statSync(join(dir, 'checkpoints.arrow')).mtimeMs).toBe(before);
    await expect(trainRun(parseRunSpec({ ...specJson, seed: 4, steps: 200 }), dir)).rejects.toThrow(
      'holds a different run',
    );
  });
});
