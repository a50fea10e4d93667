/**
 * The lock of a run directory through the library API (openRun takes it, so trainRun and every run
 * a study trains hold it): two trainRun calls on one directory at once, one is refused and the run
 * verifies; a spec refused before training leaves no folder; a folder that holds another run is bad
 * input.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { SpecError } from '../../src/spec/errors.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { verifyDir } from '../../src/study/verify-dir.js';
import { verifyRun } from '../../src/train/inspect.js';
import { readRunJson, trainRun, writeRunJson } from '../../src/train/run.js';
import { InputError } from '../../src/util/errors.js';
import { LOCK_NAME, LockedError, lockFolder } from '../../src/util/folder-lock.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-run-lock-');

// Long enough (a second or more) that the second call reaches the lock while the first trains.
const spec = parseRunSpec({
  ...tinyBase,
  name: 'locked',
  epochs: undefined,
  steps: 900,
  checkpoints: { every: 300 },
});

describe('run directory lock', () => {
  test('two trainRun calls on one directory at once: one trains, the other is refused', async () => {
    const dir = join(root, 'twice');
    const results = await Promise.allSettled([trainRun(spec, dir), trainRun(spec, dir)]);
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused).toHaveLength(1);
    const reason = (refused[0] as PromiseRejectedResult).reason;
    expect(reason).toBeInstanceOf(LockedError);
    expect(reason.message).toMatch(new RegExp(`^${dir}: in use by pid ${process.pid} on host .+ since `));
    const done = results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ status: string }>;
    expect(done.value.status).toBe('complete');
    expect(verifyRun(dir)).toMatchObject({ ok: true, problems: [] });
    expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
    // Released: a third call finds the run complete.
    expect((await trainRun(spec, dir)).status).toBe('complete');
  }, 60_000);

  test('resuming a run removes the temporary files a killed writer left in it', async () => {
    const dir = join(root, 'temps');
    await trainRun(spec, dir);
    // As a kill during the finalize leaves it: run.json still running, a whole checkpoints.arrow.tmp-PID.
    const { files: _files, final: _final, ...running } = readRunJson(dir);
    writeRunJson(dir, { ...running, status: 'running' });
    const temp = join(dir, 'checkpoints.arrow.tmp-999999');
    writeFileSync(temp, readFileSync(join(dir, 'checkpoints.arrow')));
    expect(verifyDir(dir).problems).toEqual([
      "run.json: run is not complete (status 'running'); run train again to resume it",
      expect.stringMatching(
        /^checkpoints\.arrow\.tmp-999999: temporary file \(\d+ bytes\) left by process 999999/,
      ),
    ]);
    expect((await trainRun(spec, dir)).status).toBe('complete');
    expect(existsSync(temp)).toBe(false);
    expect(verifyDir(dir).ok).toBe(true);
  }, 60_000);

  test('a run directory held by another writer is refused before anything is written', async () => {
    const dir = join(root, 'held');
    const lock = await lockFolder(dir, { command: 'distributed worker 7' });
    try {
      await expect(trainRun(spec, dir)).rejects.toThrow(
        /in use by pid \d+ on host .+ \(distributed worker 7\)/,
      );
      expect(readdirSync(dir)).toEqual([LOCK_NAME]);
    } finally {
      lock.release();
    }
  });

  test('a batch larger than the train split is a SpecError, and no folder is created', async () => {
    const dir = join(root, 'big-batch', 'run');
    const big = parseRunSpec({ ...tinyBase, batchSize: 301 }); // 300 train examples
    const err = await trainRun(big, dir).catch((e) => e);
    expect(err).toBeInstanceOf(SpecError);
    expect(err.message).toBe('batchSize: must be at most the 300 examples of the train split (got 301)');
    expect(existsSync(join(root, 'big-batch'))).toBe(false);
  });

  test('a folder holding another run is bad input', async () => {
    const dir = join(root, 'twice');
    const other = parseRunSpec({ ...tinyBase, seed: 9, steps: 20, epochs: undefined });
    const err = await trainRun(other, dir).catch((e) => e);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/holds a different run/);
    expect(verifyRun(dir).ok).toBe(true);
  });
});
