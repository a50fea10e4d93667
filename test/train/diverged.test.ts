/**
 * Diverged runs: a non-finite loss or non-finite parameters end a run with status `diverged`, the
 * step and value recorded, the checkpoints before it kept (finite) and the store finalized
 * (`verify` passes); `twinscope train` exits 1 and a re-run does not retrain. Forked twins diverge
 * one by one: in a lock-step group the others' files are untouched by the diverged member, and a
 * twin forked after its parent diverged is recorded as diverged (reason `parent`).
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints, readMetrics } from '../../src/store/index.js';
import { forkRun, trainForkGroup, type WeightPerturbation } from '../../src/train/fork.js';
import { formatInspection, inspectRun, verifyRun } from '../../src/train/inspect.js';
import { readRunJson, trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-diverged-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const moons = {
  seed: 0,
  data: { name: 'moons', n: 400, noise: 0.2, testFraction: 0.25, standardize: true },
  model: { kind: 'mlp', hidden: [16, 16], activation: 'relu' },
  batchSize: 32,
};
/** SGD with momentum at lr 100: the batch loss is 3e18 at step 4 and NaN from step 5 on. */
const hugeLr = { ...moons, name: 'huge-lr', optimizer: { kind: 'sgd', lr: 100, momentum: 0.9 } };
const divergingJson = { ...hugeLr, steps: 40, checkpoints: { every: 2 } };
/** A stable parent (lr 0.1) to fork from: 45 steps, checkpoints every 10. */
const parentSpec = parseRunSpec({
  ...moons,
  name: 'parent',
  optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  epochs: 5,
  checkpoints: { every: 10 },
});

const finite = (a: Float32Array) => a.every(Number.isFinite);
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const gaussian = (sigma: number, seed = 1): WeightPerturbation => ({ kind: 'gaussian', sigma, seed });

describe('a run that diverges', () => {
  const dir = join(root, 'huge-lr');

  test('stops at the first non-finite loss: status diverged, step and value recorded, checkpoints before it kept', async () => {
    const run = await trainRun(parseRunSpec(divergingJson), dir);
    expect(run.status).toBe('diverged');
    expect(run.diverged).toEqual({ reason: 'loss', step: 5, value: 'NaN', lastCheckpoint: 4 });
    expect(run.final).toBeUndefined();
    // The checkpoints written before the divergence, all finite; nothing after it.
    expect(run.checkpointSteps).toEqual([0, 2, 4]);
    const cps = readCheckpoints(dir);
    expect(cps.map((c) => c.step)).toEqual([0, 2, 4]);
    for (const c of cps) expect(finite(c.params)).toBe(true);
    // The metric rows up to the divergence, the NaN loss of step 5 last.
    const steps = readMetrics(dir).filter((m) => m.kind === 'step');
    expect(steps.map((m) => m.step)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(steps.slice(0, 5).every((m) => Number.isFinite(m.trainLoss))).toBe(true);
    expect(steps[5]?.trainLoss).toBeNaN();
    expect(readRunJson(dir)).toEqual(run);
  });

  test('verify passes on its finalized files; inspect says where it diverged', () => {
    const v = verifyRun(dir);
    expect(v.problems).toEqual([]);
    expect(v.ok).toBe(true);
    expect(v.summary).toContain('diverged at step 5');
    const info = inspectRun(dir);
    expect(info.status).toBe('diverged');
    const text = formatInspection(info);
    expect(text).toContain('(diverged, twinscope');
    expect(text).toContain('diverged   at step 5 (training loss NaN; checkpoints kept to step 4)');
    expect(text).not.toContain('undefined');
  });

  test('a re-run does not retrain it', async () => {
    const before = readFileSync(join(dir, 'checkpoints.arrow'));
    const mtime = statSync(join(dir, 'run.json')).mtimeMs;
    const modes: string[] = [];
    const again = await trainRun(parseRunSpec(divergingJson), dir, { onStart: (s) => modes.push(s.mode) });
    expect(modes).toEqual(['diverged']);
    expect(again).toEqual(readRunJson(dir));
    expect(readFileSync(join(dir, 'checkpoints.arrow')).equals(before)).toBe(true);
    expect(statSync(join(dir, 'run.json')).mtimeMs).toBe(mtime);
  });

  test('twinscope train prints where it diverged and exits 1, also when run again', async () => {
    const specPath = join(root, 'huge-lr.json');
    writeFileSync(specPath, JSON.stringify(divergingJson));
    const out = join(root, 'cli-run');
    const argv = ['node', 'twinscope', 'train', specPath, '--out', out, '--no-progress'];
    const first = capture();
    expect(await main(argv, first)).toBe(1);
    expect(first.err).toContain(
      `error: ${out}: diverged at step 5 (training loss NaN; checkpoints kept to step 4); run.json status 'diverged'`,
    );
    expect(first.out).toBe('');
    const second = capture();
    expect(await main(argv, second)).toBe(1);
    expect(second.err).toContain('diverged earlier; not retrained');
    expect(second.err).toContain('diverged at step 5');
    const inspect = capture();
    expect(await main(['node', 'twinscope', 'inspect', out], inspect)).toBe(0);
    expect(inspect.out).toContain('diverged   at step 5');
    expect(await main(['node', 'twinscope', 'verify', out], capture())).toBe(0);
    // Its finalized files export like a complete run's.
    const exported = join(root, 'exported');
    expect(await main(['node', 'twinscope', 'export', out, '--to', exported], capture())).toBe(0);
  });
});

describe('forked twins that diverge', () => {
  const parentDir = join(root, 'parent');
  beforeAll(async () => {
    await trainRun(parentSpec, parentDir);
  });

  test('a perturbation that overflows float32 is a divergence at the fork step, with no checkpoint', async () => {
    const dir = join(root, 'overflow');
    const run = await forkRun(parentDir, 10, gaussian(1e40), dir);
    expect(run.status).toBe('diverged');
    expect(run.diverged).toMatchObject({ reason: 'parameters', step: 10, tensor: 'dense0.weight' });
    expect(run.diverged?.lastCheckpoint).toBeUndefined();
    expect(run.checkpointSteps).toEqual([]);
    expect(readCheckpoints(dir)).toEqual([]);
    expect(verifyRun(dir).ok).toBe(true);
  });

  test('in a lock-step group a diverged member leaves; the others train on, bit for bit as without it', async () => {
    const members = (group: string) => [
      { dir: join(root, group, 'ref') },
      { dir: join(root, group, 'zero'), perturbation: gaussian(0, 2) },
    ];
    const big = { dir: join(root, 'with', 'big'), perturbation: gaussian(1e4) };
    const huge = { dir: join(root, 'with', 'huge'), perturbation: gaussian(1e40) };
    const runs = await trainForkGroup(parentDir, 10, [...members('with'), big, huge]);
    expect(runs.map((r) => r.status)).toEqual(['complete', 'complete', 'diverged', 'diverged']);
    // σ = 1e4 trains three steps before its loss is NaN; its fork-step checkpoint is kept.
    expect(runs[2]?.diverged).toEqual({ reason: 'loss', step: 13, value: 'NaN', lastCheckpoint: 10 });
    expect(runs[3]?.diverged).toMatchObject({ reason: 'parameters', step: 10 });
    // The same twin trained alone diverges at the same step.
    const alone = await forkRun(parentDir, 10, gaussian(1e4), join(root, 'big-alone'));
    expect(alone.diverged).toEqual(runs[2]?.diverged);

    await trainForkGroup(parentDir, 10, members('without'));
    for (const name of ['ref', 'zero']) {
      const a = readCheckpoints(join(root, 'with', name));
      const b = readCheckpoints(join(root, 'without', name));
      expect(a.map((c) => c.step)).toEqual([10, 20, 30, 40, 45]);
      expect(a.every((c, i) => bytes(c.params).equals(bytes(b[i]?.params as Float32Array)))).toBe(true);
    }
    for (const m of ['ref', 'zero', 'big', 'huge']) expect(verifyRun(join(root, 'with', m)).ok).toBe(true);

    // Re-running the group retrains nothing: complete and diverged members have ended.
    const mtime = statSync(join(big.dir, 'run.json')).mtimeMs;
    const again = await trainForkGroup(parentDir, 10, [...members('with'), big, huge]);
    expect(again.map((r) => r.status)).toEqual(['complete', 'complete', 'diverged', 'diverged']);
    expect(statSync(join(big.dir, 'run.json')).mtimeMs).toBe(mtime);
  });

  test('a twin forked after its parent diverged is recorded as diverged (reason parent), untrained', async () => {
    // The huge-lr run kept checkpoints 0, 2, 4 and diverged at step 5.
    const parent = join(root, 'huge-lr');
    const late = await forkRun(parent, 6, gaussian(1e-3), join(root, 'late'));
    expect(late.status).toBe('diverged');
    expect(late.diverged).toEqual({ reason: 'parent', step: 5 });
    expect(late.checkpointSteps).toEqual([]);
    expect(verifyRun(join(root, 'late')).ok).toBe(true);
    const group = await trainForkGroup(parent, 6, [
      { dir: join(root, 'late-a') },
      { dir: join(root, 'late-b') },
    ]);
    expect(group.map((r) => r.diverged?.reason)).toEqual(['parent', 'parent']);
    // Forked before the divergence, a twin trains (and here diverges itself).
    const early = await forkRun(parent, 4, undefined, join(root, 'early'));
    expect(early.diverged).toMatchObject({ reason: 'loss', step: 5, lastCheckpoint: 4 });
  });
});
