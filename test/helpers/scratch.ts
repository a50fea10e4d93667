/**
 * Scratch space for tests, kept in this checkout and removed after use.
 *
 * vitest's globalSetup (test/global-setup.ts) makes one folder per test run, `.tmp/test-<pid>` in the
 * checkout (gitignored), points `TWINSCOPE_TEST_SCRATCH` and `TMPDIR` at it (so `os.tmpdir()` in
 * tests and in the processes they start lands there too), and removes it when the run ends.
 * `scratchDir` makes a fresh folder in it; test/setup.ts removes every folder a test file made when
 * that file is done, passed or failed.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/** The environment variable that names this run's scratch root. */
export const SCRATCH_ENV = 'TWINSCOPE_TEST_SCRATCH';

/** The checkout's folder for test state: run scratch roots and the dist/ build lock and stamp. */
export const TEST_TMP = join(import.meta.dirname, '..', '..', '.tmp');

/** The folders `scratchDir` made in this test file, removed by `removeScratchDirs`. */
const made = new Set<string>();

/** A fresh, empty folder named `<prefix>XXXXXX` in this run's scratch root. */
export function scratchDir(prefix: string): string {
  const dir = mkdtempSync(join(scratchRoot(), prefix));
  made.add(dir);
  return dir;
}

/** Remove every folder `scratchDir` made (test/setup.ts runs this after each test file). */
export function removeScratchDirs(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  made.clear();
}

/** This run's scratch root; without the globalSetup (another vitest config), one per process. */
function scratchRoot(): string {
  const root = process.env[SCRATCH_ENV] ?? join(TEST_TMP, `test-${process.pid}`);
  mkdirSync(root, { recursive: true });
  return root;
}
