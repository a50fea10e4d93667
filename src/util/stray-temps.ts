/**
 * Temporary files left behind by a killed writer. Every finalized file is written through a temp
 * file `NAME.tmp-PID` that is renamed over NAME (util/atomic-file.ts), and a run's stream files are
 * finalized the same way; a process killed between the write and the rename leaves the temp file
 * (for checkpoints.arrow, one the size of the whole store). `twinscope verify` lists them, and
 * `verify --repair` and every resume (a run, a study, a sweep re-opened under its lock) remove them.
 */
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LOCK_NAME, lockState } from './folder-lock.js';

/** The name of a temp file of util/atomic-file.ts, with the writer's pid. */
const TEMP_NAME = /\.tmp-(\d+)$/;

/** One temporary file left by a writer. */
export interface StrayTemp {
  readonly path: string;
  readonly bytes: number;
  /** The pid of the process that wrote it. */
  readonly pid: number;
}

/**
 * The temp files under `root` (any depth), not counting folders whose lock another live process
 * holds (their temp files may be in the middle of a write) nor the lock folders themselves.
 * `recurse(dir)` may stop the walk below a folder.
 */
export function findStrayTemps(root: string, recurse: (dir: string) => boolean = () => true): StrayTemp[] {
  const out: StrayTemp[] = [];
  const walk = (dir: string) => {
    const lock = lockState(dir);
    if (lock.state === 'held' && !lock.mine) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const path = join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== LOCK_NAME && recurse(path)) walk(path);
        continue;
      }
      const m = TEMP_NAME.exec(e.name);
      if (!m || !e.isFile() || Number(m[1]) === process.pid) continue;
      out.push({ path, bytes: statSync(path, { throwIfNoEntry: false })?.size ?? 0, pid: Number(m[1]) });
    }
  };
  walk(root);
  return out;
}

/** Remove the temp files {@link findStrayTemps} finds under `root`; returns what was removed. */
export function removeStrayTemps(root: string, recurse?: (dir: string) => boolean): StrayTemp[] {
  const found = findStrayTemps(root, recurse);
  for (const t of found) rmSync(t.path, { force: true });
  return found;
}
