/**
 * The folder lock (src/util/folder-lock.ts): one holder at a time, a holder record naming pid, host,
 * start time and command, release on completion, on a refusal (removing a folder it created) and on
 * SIGTERM, takeover of a lock left by a SIGKILLed process after the stale time, and a holder that
 * notices when its lock was lost. Child processes take the lock through dist/ (built in beforeAll).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/util/errors.js';
import { LOCK_NAME, LockedError, lockFolder, withFolderLock } from '../../src/util/folder-lock.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, ROOT } from '../helpers/study.js';

const root = scratchDir('twinscope-folder-lock-');

/** Fast timing for the tests (the defaults are 10 s stale, 2 s refresh). */
const FAST = { staleMs: 2000, updateMs: 1000 };
let n = 0;
const fresh = () => join(root, `d${n++}`);
const holderOf = (dir: string) => JSON.parse(readFileSync(join(dir, LOCK_NAME, 'holder.json'), 'utf8'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child process holding the lock of `dir` (through dist/), resolved once it holds it. */
async function holdInChild(dir: string): Promise<ChildProcess> {
  const url = pathToFileURL(join(ROOT, 'dist', 'util', 'folder-lock.js')).href;
  const script =
    `const { lockFolder } = await import(${JSON.stringify(url)});\n` +
    `await lockFolder(${JSON.stringify(dir)}, { staleMs: 2000, updateMs: 1000, command: 'test holder' });\n` +
    `process.stdout.write('locked\\n');\n` +
    'setInterval(() => {}, 1000);\n';
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await once(child.stdout as NodeJS.ReadableStream, 'data');
  return child;
}

async function kill(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}

describe('lockFolder', () => {
  it('creates the folder, records the holder, refuses a second writer naming folder and holder, releases', async () => {
    const dir = join(fresh(), 'nested');
    const lock = await lockFolder(dir, { command: 'twinscope train x.json --out d' });
    const holder = holderOf(dir);
    expect(holder).toMatchObject({
      pid: process.pid,
      hostname: hostname(),
      command: 'twinscope train x.json --out d',
    });
    expect(new Date(holder.started).toISOString()).toBe(holder.started);
    const second = lockFolder(dir);
    await expect(second).rejects.toThrow(LockedError);
    await expect(second).rejects.toThrow(
      `${dir}: in use by pid ${process.pid} on host ${hostname()} since ${holder.started} (twinscope train x.json --out d); wait for it or stop it`,
    );
    await expect(second).rejects.toBeInstanceOf(InputError);
    lock.release();
    lock.release(); // idempotent
    expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
    expect(existsSync(dir)).toBe(true);
    (await lockFolder(dir)).release();
  });

  it('keeps the lock across refreshes (writing holder.json does not look like a takeover)', async () => {
    const dir = fresh();
    const lock = await lockFolder(dir, FAST);
    await sleep(3500); // three refreshes, more than the stale time
    expect(() => lock.assertHeld()).not.toThrow();
    await expect(lockFolder(dir, FAST)).rejects.toThrow(LockedError);
    lock.release();
  });

  it('notices a lost lock (its folder removed) and says so', async () => {
    const dir = fresh();
    const lock = await lockFolder(dir, FAST);
    rmSync(join(dir, LOCK_NAME), { recursive: true });
    await sleep(1500);
    expect(() => lock.assertHeld()).toThrow(/lost its lock/);
    lock.release();
  });

  it('refuses a path that is a file, without creating anything', async () => {
    const file = join(fresh(), 'file');
    mkdirSync(join(file, '..'), { recursive: true });
    writeFileSync(file, 'x');
    await expect(lockFolder(file)).rejects.toThrow(new InputError(`${file}: exists and is not a folder`));
    await expect(lockFolder(join(file, 'sub'))).rejects.toThrow(/part of its path is a file/);
    expect(readFileSync(file, 'utf8')).toBe('x');
  });
});

describe('withFolderLock', () => {
  it('removes a folder it created when the work is refused (InputError), keeps it otherwise', async () => {
    const parent = fresh();
    const created = join(parent, 'a', 'b');
    await expect(
      withFolderLock(created, async () => {
        writeFileSync(join(created, 'partial'), '');
        throw new InputError('bad spec');
      }),
    ).rejects.toThrow('bad spec');
    expect(existsSync(parent)).toBe(false); // every folder it created, the first one down

    await expect(
      withFolderLock(created, async () => Promise.reject(new Error('work failed'))),
    ).rejects.toThrow('work failed');
    expect(existsSync(created)).toBe(true);
    expect(existsSync(join(created, LOCK_NAME))).toBe(false);

    // An existing folder is never removed.
    await expect(withFolderLock(created, async () => Promise.reject(new InputError('no')))).rejects.toThrow();
    expect(existsSync(created)).toBe(true);
    expect(await withFolderLock(created, async () => 42)).toBe(42);
    expect(existsSync(join(created, LOCK_NAME))).toBe(false);
  });
});

describe('locks held by other processes', () => {
  beforeAll(buildDist, 180_000);

  it('a lock left by a SIGKILLed process on this host is taken over once stale', async () => {
    const dir = fresh();
    const child = await holdInChild(dir);
    await expect(lockFolder(dir, FAST)).rejects.toThrow(`in use by pid ${child.pid} on host ${hostname()}`);
    await kill(child, 'SIGKILL');
    const lockDir = join(dir, LOCK_NAME);
    expect(holderOf(dir).pid).toBe(child.pid); // left behind
    const lastRefresh = statSync(lockDir).mtimeMs;
    const lock = await lockFolder(dir, FAST); // waits for the stale time, then takes over
    const at = Date.now();
    expect(at - lastRefresh).toBeGreaterThanOrEqual(FAST.staleMs);
    expect(at - lastRefresh).toBeLessThan(FAST.staleMs + 1500);
    expect(holderOf(dir).pid).toBe(process.pid);
    lock.release();
  }, 20_000);

  it('a dead holder on another host is refused until its lock is stale, then taken over', async () => {
    const dir = fresh();
    const child = await holdInChild(dir);
    await kill(child, 'SIGKILL');
    const holderFile = join(dir, LOCK_NAME, 'holder.json');
    writeFileSync(holderFile, JSON.stringify({ ...holderOf(dir), hostname: 'worker-7' }));
    const written = statSync(join(dir, LOCK_NAME)).mtimeMs;
    await expect(lockFolder(dir, FAST)).rejects.toThrow(`in use by pid ${child.pid} on host worker-7`);
    let lock: Awaited<ReturnType<typeof lockFolder>> | undefined;
    while (!lock) {
      try {
        lock = await lockFolder(dir, FAST);
      } catch (e) {
        expect(e).toBeInstanceOf(LockedError);
        expect(Date.now() - written).toBeLessThan(FAST.staleMs + 1000);
        await sleep(100);
      }
    }
    expect(Date.now() - written).toBeGreaterThanOrEqual(FAST.staleMs);
    lock.release();
  }, 20_000);

  it('a holder stopped by SIGTERM releases its lock', async () => {
    const dir = fresh();
    const child = await holdInChild(dir);
    await kill(child, 'SIGTERM');
    expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
    (await lockFolder(dir)).release();
  }, 20_000);
});
