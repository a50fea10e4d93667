/**
 * vitest globalSetup: one scratch folder per test run, `.tmp/test-<pid>` in this checkout, removed at
 * the end of the run (see test/helpers/scratch.ts). Scratch folders of runs that were killed (their
 * process is gone) are removed first.
 */
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SCRATCH_ENV, TEST_TMP } from './helpers/scratch.js';

export default function setup(): () => void {
  mkdirSync(TEST_TMP, { recursive: true });
  for (const name of readdirSync(TEST_TMP)) {
    const pid = /^test-(\d+)$/.exec(name)?.[1];
    if (pid !== undefined && !alive(Number(pid)))
      rmSync(join(TEST_TMP, name), { recursive: true, force: true });
  }
  const root = join(TEST_TMP, `test-${process.pid}`);
  mkdirSync(root, { recursive: true });
  // Inherited by the test workers and every process they start.
  const tmpdir = process.env.TMPDIR;
  process.env[SCRATCH_ENV] = root;
  process.env.TMPDIR = root;
  // onnxruntime-node 1.30's telemetry writes mat-debug-<pid>.log and .ses into the temp folder of
  // every process that opens a session.
  process.env.ORT_DISABLE_TELEMETRY = '1';
  return () => {
    if (tmpdir === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = tmpdir;
    rmSync(root, { recursive: true, force: true, maxRetries: 3 });
  };
}

/** Whether process `pid` exists (EPERM: it does, under another user). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
