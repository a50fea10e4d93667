/**
 * A conv net's run on disk: killed with SIGKILL after its first checkpoint and resumed, it ends
 * bit-identical to an uninterrupted run, BatchNorm's running statistics included (they live in the
 * checkpointed parameter vector).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints } from '../../src/store/index.js';
import { verifyRun } from '../../src/train/inspect.js';
import { trainRun } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';

const root = join(import.meta.dirname, '../..');
const bin = join(root, 'bin/twinscope.js');

const specJson = {
  name: 'kill-cnn',
  seed: 1,
  data: { name: 'mnist', nTrain: 600, nTest: 200 },
  model: { kind: 'cnn', channels: [4, 8], dense: [16], norm: 'batch' },
  optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
  batchSize: 20,
  steps: 120,
  checkpoints: { every: 20 },
};

beforeAll(() => {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'ignore' });
}, 120_000);

const exitOf = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

const lastParams = (dir: string) => {
  const last = readCheckpoints(dir).at(-1) as { step: number; params: Float32Array };
  return {
    step: last.step,
    bytes: Buffer.from(last.params.buffer, last.params.byteOffset, last.params.byteLength),
  };
};

describe('twinscope train, conv net with BatchNorm', () => {
  test('SIGKILL after the first checkpoint, then resume: final weights and running statistics are bit-identical', async () => {
    const dir = scratchDir('twinscope-run-net-');
    const specPath = join(dir, 'spec.json');
    writeFileSync(specPath, JSON.stringify(specJson));
    const reference = join(dir, 'reference');
    await trainRun(parseRunSpec(specJson), reference);

    const killed = join(dir, 'killed');
    const start = () =>
      spawn(process.execPath, [bin, 'train', specPath, '--out', killed, '--no-progress'], {
        stdio: 'ignore',
      });
    const child = start();
    const file = join(killed, 'checkpoints.arrow');
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !(existsSync(file) && readCheckpoints(killed).length >= 2)) {
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    await exitOf(child);
    expect(statSync(file).size).toBeGreaterThan(0);
    // Killed mid-run, not after it ended.
    expect(JSON.parse(readFileSync(join(killed, 'run.json'), 'utf8')).status).toBe('running');
    expect(await exitOf(start())).toBe(0);

    const a = lastParams(reference);
    const b = lastParams(killed);
    expect(b.step).toBe(120);
    expect(b.bytes.equals(a.bytes)).toBe(true);
    expect(verifyRun(killed).ok).toBe(true);
  }, 180_000);
});
