/**
 * `twinscope sharpness DIR[@STEP]`: the JSON it prints (the numbers the run measured along training
 * at that step with the same options), the last checkpoint by default, and exit code 2 for bad input.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { trainingProbe } from '../../src/measure/diagnostics.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readSharpness } from '../../src/train/diagnostics.js';
import { trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-cli-sharpness-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);
const adamDir = join(root, 'adam');
const sgdDir = join(root, 'sgd');

const spec = (optimizer: object, name: string) =>
  parseRunSpec({
    name,
    seed: 2,
    data: { name: 'moons', n: 200, noise: 0.2, testFraction: 0.2, standardize: true },
    model: { kind: 'mlp', hidden: [6] },
    optimizer,
    batchSize: 40,
    steps: 20,
    checkpoints: { every: 10 },
    sharpness: { every: 10, examples: 64, topK: 2, probes: 5 },
  });

beforeAll(async () => {
  await trainRun(spec({ kind: 'adam', lr: 0.01 }, 'adam'), adamDir, { probe: trainingProbe });
  await trainRun(spec({ kind: 'sgd', lr: 0.2 }, 'sgd'), sgdDir, { probe: trainingProbe });
}, 60_000);

async function json(...args: string[]) {
  const io = capture();
  expect(await cli(io, 'sharpness', ...args, '--json'), io.err).toBe(EXIT_OK);
  return JSON.parse(io.out);
}

describe('twinscope sharpness', () => {
  test('DIR@STEP --json prints what the run measured at that step with the same options', async () => {
    const out = await json(`${adamDir}@10`, '--examples', '64', '--top', '2', '--probes', '5');
    const tracked = readSharpness(adamDir).find((r) => r.step === 10);
    expect(out).toEqual({
      run: adamDir,
      step: 10,
      epoch: 10 / 4,
      examples: 64,
      method: 'lanczos',
      eigenvalues: tracked?.eigenvalues,
      residuals: tracked?.residuals,
      converged: true,
      trace: tracked?.trace,
      lr: 0.01,
      threshold: tracked?.threshold,
      thresholdOf: 'preconditioned',
      preconditioned: tracked?.preconditioned,
    });
    expect(out.eigenvalues[0]).toBeGreaterThan(out.eigenvalues[1]);
    expect(out.trace).toMatchObject({ probes: 5, stderr: expect.any(Number) });
  });

  test('without @STEP: the last checkpoint, over the whole train split; SGD has no preconditioned sharpness', async () => {
    const out = await json(sgdDir, '--probes', '3');
    expect(out).toMatchObject({ step: 20, examples: 160, thresholdOf: 'sharpness', preconditioned: null });
    expect(out.eigenvalues).toHaveLength(1);
    expect(out.threshold).toBe(2 / 0.2);
    expect(out.trace.probes).toBe(3);
    const text = capture();
    expect(await cli(text, 'sharpness', `${sgdDir}@0`, '--probes', '2', '--method', 'power')).toBe(EXIT_OK);
    expect(text.out).toMatch(/at step 0 \(epoch 0\), 160 training examples, power\neigenvalues {5}\d/);
  });

  test('bad input exits 2 with one line naming the problem', async () => {
    const refused = async (args: string[], message: RegExp) => {
      const io = capture();
      expect(await cli(io, 'sharpness', ...args), io.err).toBe(EXIT_USAGE);
      expect(io.err.trimEnd().split('\n')[0]).toMatch(message);
      expect(io.out).toBe('');
    };
    await refused([`${adamDir}@5`], /no checkpoint at step 5 \(it has 0, 10, 20\)/);
    await refused([`${adamDir}@x`], /STEP a checkpoint step \(got 'x'\)/);
    await refused([adamDir, '--top', '0'], /--top <k>.*expected a positive integer, got '0'/);
    await refused([adamDir, '--examples', '-3'], /--examples <n>/);
    await refused(
      [adamDir, '--method', 'power', '--top', '2'],
      /--top: power iteration finds one eigenvalue/,
    );
    await refused([adamDir, '--top', '4', '--steps', '3'], /--steps: Lanczos needs at least --top 4 steps/);
    await refused([join(root, 'nothing')], /not a run directory/);
  });
});
