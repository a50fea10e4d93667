/**
 * One writer per output folder: an exclusive lock on DIR, held while a command writes into it.
 *
 * The lock is proper-lockfile's: the folder `DIR/.twinscope.lock`, created with mkdir (atomic, also
 * on NFS), whose modification time its holder refreshes every {@link UPDATE_MS}. A lock not refreshed
 * for {@link STALE_MS} is stale (its holder was killed or its machine lost) and the next writer
 * takes it over. The holder records who it is in `DIR/.twinscope.lock/holder.json` (pid, host, start
 * time, command), so a refused writer can say who holds the folder. Any process that follows this
 * rule on a shared file system (a distributed worker writing a run directory, say) excludes and is
 * excluded by twinscope's own commands; see docs/reliability.md, "Folder locks".
 *
 * Locks of different folders are independent, so nested ones do not deadlock: a study holds DIR
 * while its workers each hold DIR/runs/<name>. Taking a lock never waits for a live holder: a second
 * writer is refused at once with a {@link LockedError} (bad input, exit 2).
 */
import fs, {
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, join } from 'node:path';
import { lockSync } from 'proper-lockfile';
import { InputError } from './errors.js';

/** The lock folder inside a locked folder. */
export const LOCK_NAME = '.twinscope.lock';
/** The holder's record inside the lock folder. */
const HOLDER_FILE = 'holder.json';
/** A lock whose folder was not refreshed for this long (ms) is stale and taken over. */
const STALE_MS = 10_000;
/** How often (ms) a holder refreshes its lock. */
const UPDATE_MS = 2_000;
/** Longest command line kept in holder.json. */
const COMMAND_CHARS = 200;

/** Who holds a folder lock (`DIR/.twinscope.lock/holder.json`). */
export interface LockHolder {
  readonly pid: number;
  readonly hostname: string;
  /** When the lock was taken (ISO 8601, UTC). */
  readonly started: string;
  /** The holder's command line (`twinscope run pipelines/x.json --out studies/x`). */
  readonly command: string;
}

/** Another process holds the folder: bad input (exit 2), naming the folder and the holder. */
export class LockedError extends InputError {
  override name = 'LockedError';

  constructor(
    readonly dir: string,
    readonly holder: LockHolder | undefined,
  ) {
    super(
      holder
        ? `${dir}: in use by pid ${holder.pid} on host ${holder.hostname} since ${holder.started} (${holder.command}); wait for it or stop it`
        : `${dir}: in use by another process (its lock ${join(dir, LOCK_NAME)} does not say which); wait for it or stop it`,
    );
  }
}

/** The lock was lost while held (its folder removed, or taken over after a long stall): the work failed. */
class LockLostError extends Error {
  override name = 'LockLostError';
}

/** Options of {@link lockFolder}. */
export interface FolderLockOptions {
  /** Recorded as the holder's command (default: this process's command line). */
  readonly command?: string;
  /** Stale time in ms (default {@link STALE_MS}; at least 2000). */
  readonly staleMs?: number;
  /** Refresh interval in ms (default {@link UPDATE_MS}; at least 1000, at most staleMs / 2). */
  readonly updateMs?: number;
}

/** A held folder lock. */
export interface FolderLock {
  readonly dir: string;
  /** Throw unless the lock is still held (it can be lost only if its folder was removed or taken over). */
  assertHeld(): void;
  /**
   * Release the lock (idempotent). Given the error that ended the work: when it is an
   * {@link InputError} (the command was refused) and this lock created the folder, the folder is
   * removed, so a refused command leaves nothing behind.
   */
  release(failure?: unknown): void;
}

/** proper-lockfile removes its lock folder with rmdir; ours holds holder.json, so remove it whole. */
const lockFs = { ...fs, rmdirSync: (path: string) => rmSync(path, { recursive: true, force: true }) };

function defaultCommand(): string {
  const [, script, ...args] = process.argv;
  const name = script ? basename(script).replace(/\.[cm]?js$/, '') : 'node';
  return [name, ...args].join(' ');
}

function readHolder(lockDir: string): LockHolder | undefined {
  try {
    const h = JSON.parse(readFileSync(join(lockDir, HOLDER_FILE), 'utf8')) as Partial<LockHolder>;
    if (typeof h.pid !== 'number' || typeof h.hostname !== 'string') return undefined;
    return {
      pid: h.pid,
      hostname: h.hostname,
      started: String(h.started ?? '?'),
      command: String(h.command ?? '?'),
    };
  } catch {
    return undefined;
  }
}

/**
 * Write holder.json into the lock folder without changing the folder's modification time:
 * proper-lockfile compares it with the last time it set, to notice a lock taken over by another.
 */
function writeHolder(lockDir: string, holder: LockHolder): void {
  const before = statSync(lockDir);
  const tmp = join(lockDir, `${HOLDER_FILE}.tmp`);
  writeFileSync(tmp, `${JSON.stringify(holder)}\n`);
  renameSync(tmp, join(lockDir, HOLDER_FILE));
  utimesSync(lockDir, before.atime, before.mtime);
}

/** Whether `holder` ran on this machine and its process is gone (its lock will go stale). */
function deadOnThisHost(holder: LockHolder): boolean {
  if (holder.hostname !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Who holds the lock of a folder, as a reader sees it without taking it. */
export type LockState =
  | { readonly state: 'free' }
  | { readonly state: 'held' | 'stale'; readonly holder: LockHolder | undefined; readonly mine: boolean };

/**
 * The lock state of `dir`: `free` (no lock), `held` (refreshed within the stale time) or `stale`
 * (left by a killed holder), with the holder when holder.json is readable and whether it is this
 * process. Never takes, refreshes or removes anything.
 */
export function lockState(dir: string): LockState {
  const lockDir = join(dir, LOCK_NAME);
  const stat = statSync(lockDir, { throwIfNoEntry: false });
  if (!stat) return { state: 'free' };
  const holder = readHolder(lockDir);
  const mine = holder?.pid === process.pid && holder.hostname === hostname();
  return { state: Date.now() - stat.mtimeMs > STALE_MS ? 'stale' : 'held', holder, mine };
}

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EROFS') return 'read-only file system';
  if (code === 'ENOSPC') return 'no space left on device';
  return (e as Error).message;
}

/** Create `dir` (and missing parents); returns the first folder created, undefined if it existed. */
function createFolder(dir: string): string | undefined {
  try {
    return mkdirSync(dir, { recursive: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new InputError(`${dir}: exists and is not a folder`);
    if (code === 'ENOTDIR') throw new InputError(`${dir}: cannot be a folder (part of its path is a file)`);
    throw new Error(`${dir}: cannot create the folder (${reason(e)})`);
  }
}

/**
 * Create `dir` if needed and take its lock. A live holder: {@link LockedError} at once. A holder on
 * this machine whose process is gone: wait until its lock is stale (at most the stale time) and
 * take it over. Release with {@link FolderLock.release} in a `finally`; on process exit, SIGINT and
 * SIGTERM proper-lockfile releases it.
 */
export async function lockFolder(dir: string, options: FolderLockOptions = {}): Promise<FolderLock> {
  const staleMs = options.staleMs ?? STALE_MS;
  const updateMs = options.updateMs ?? UPDATE_MS;
  const lockDir = join(dir, LOCK_NAME);
  const created = createFolder(dir);
  let lost: Error | undefined;
  let unlock: () => void;
  for (let attempt = 0; ; attempt++) {
    try {
      unlock = lockSync(dir, {
        lockfilePath: lockDir,
        stale: staleMs,
        update: updateMs,
        realpath: false,
        fs: lockFs,
        onCompromised: (e) => {
          lost = e;
        },
      });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') {
        if (created) rmSync(created, { recursive: true, force: true });
        throw new Error(`${dir}: cannot lock the folder (${reason(e)})`);
      }
      const holder = readHolder(lockDir);
      if (attempt > 0 || !holder || !deadOnThisHost(holder)) throw new LockedError(dir, holder);
      let age = 0;
      try {
        age = Date.now() - statSync(lockDir).mtimeMs;
      } catch {}
      await new Promise((r) => setTimeout(r, Math.max(0, staleMs - age) + 50));
    }
  }
  writeHolder(lockDir, {
    pid: process.pid,
    hostname: hostname(),
    started: new Date().toISOString(),
    command: (options.command ?? defaultCommand()).slice(0, COMMAND_CHARS),
  });
  let released = false;
  return {
    dir,
    assertHeld: () => {
      if (lost)
        throw new LockLostError(
          `${dir}: lost its lock while writing (${lost.message}); run twinscope verify`,
        );
      if (released) throw new LockLostError(`${dir}: its lock was already released`);
    },
    release: (failure?: unknown) => {
      if (released) return;
      released = true;
      try {
        if (created && failure instanceof InputError) rmSync(created, { recursive: true, force: true });
      } finally {
        try {
          unlock();
        } catch {
          // Already released by a takeover (lost): nothing of ours to remove.
        }
      }
    },
  };
}

/**
 * Run `work` holding the lock of `dir` (created if needed); released when `work` settles. A refused
 * command ({@link InputError}) removes the folder if this call created it.
 */
export async function withFolderLock<T>(
  dir: string,
  work: (lock: FolderLock) => Promise<T>,
  options: FolderLockOptions = {},
): Promise<T> {
  const lock = await lockFolder(dir, options);
  let failure: unknown;
  try {
    const out = await work(lock);
    lock.assertHeld();
    return out;
  } catch (e) {
    failure = e;
    throw e;
  } finally {
    lock.release(failure);
  }
}
