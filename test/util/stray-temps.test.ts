/** Temporary files left by killed writers: found at any depth, skipped in folders another live process holds. */

import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { LOCK_NAME, lockState } from '../../src/util/folder-lock.js';
import { findStrayTemps, removeStrayTemps } from '../../src/util/stray-temps.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-temps-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A lock folder as another process's live lock looks (fresh mtime, holder.json). */
function fakeLock(dir: string, pid: number): void {
  mkdirSync(join(dir, LOCK_NAME), { recursive: true });
  const holder = { pid, hostname: hostname(), started: new Date().toISOString(), command: 'test' };
  writeFileSync(join(dir, LOCK_NAME, 'holder.json'), JSON.stringify(holder));
}

describe('stray temporary files', () => {
  test('found at any depth with size and pid; this process, lock folders and other names are not', () => {
    const dir = join(root, 'tree');
    mkdirSync(join(dir, 'runs', 'a'), { recursive: true });
    writeFileSync(join(dir, 'results.arrow.tmp-123'), 'abc');
    writeFileSync(join(dir, 'runs', 'a', 'checkpoints.arrow.tmp-456'), 'x'.repeat(1000));
    writeFileSync(join(dir, 'runs', 'a', `run.json.tmp-${process.pid}`), 'mine');
    writeFileSync(join(dir, 'runs', 'a', 'notes.tmp'), 'not a temp of ours');
    writeFileSync(join(dir, 'runs', 'a', 'x.tmp-12a'), 'not a pid');
    const found = findStrayTemps(dir).sort((a, b) => a.pid - b.pid);
    expect(found).toEqual([
      { path: join(dir, 'results.arrow.tmp-123'), bytes: 3, pid: 123 },
      { path: join(dir, 'runs', 'a', 'checkpoints.arrow.tmp-456'), bytes: 1000, pid: 456 },
    ]);
    expect(removeStrayTemps(dir)).toHaveLength(2);
    expect(findStrayTemps(dir)).toEqual([]);
    expect(existsSync(join(dir, 'runs', 'a', `run.json.tmp-${process.pid}`))).toBe(true);
  });

  test('a folder held by another live process is not searched (its temp files may be mid-write)', () => {
    const dir = join(root, 'held');
    mkdirSync(join(dir, 'runs', 'b'), { recursive: true });
    writeFileSync(join(dir, 'runs', 'b', 'metrics.arrow.tmp-789'), 'x');
    fakeLock(join(dir, 'runs', 'b'), process.pid + 1);
    expect(lockState(join(dir, 'runs', 'b'))).toMatchObject({ state: 'held', mine: false });
    expect(findStrayTemps(dir)).toEqual([]);
    // The same lock held by this process: searched.
    fakeLock(join(dir, 'runs', 'b'), process.pid);
    expect(lockState(join(dir, 'runs', 'b'))).toMatchObject({ state: 'held', mine: true });
    expect(findStrayTemps(dir).map((t) => t.pid)).toEqual([789]);
  });
});
