#!/usr/bin/env node
// lock-timing: the numbers of docs/reliability.md, "Folder locks", measured with the default timing
// (stale 10 s, refresh 2 s) of src/util/folder-lock.ts, from dist/ (run `npm run build` first).
//
//   node bench/lock-timing.mjs [--kills 5]
//
// Prints: the mean time to take and release a lock; for each of --kills child processes that take
// a lock and are killed with SIGKILL at a different phase of their refresh, how long after the kill
// a new writer holds the lock (it waits for the stale time by itself); and how long a holder takes
// to notice that its lock folder was removed. About 1 minute with 5 kills; everything it creates
// lives in one temporary folder, removed at the end.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const moduleUrl = new URL('../dist/util/folder-lock.js', import.meta.url).href;
const { LOCK_NAME, lockFolder } = await import(moduleUrl);
const at = process.argv.indexOf('--kills');
const kills = at > 0 ? Number(process.argv[at + 1]) : 5;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const root = mkdtempSync(join(tmpdir(), 'twinscope-lock-timing-'));
try {
  const n = 200;
  let t = performance.now();
  for (let i = 0; i < n; i++) (await lockFolder(join(root, 'cost'))).release();
  console.log(`take + release: ${((performance.now() - t) / n).toFixed(2)} ms (mean of ${n})`);

  for (let k = 0; k < kills; k++) {
    const dir = join(root, `killed-${k}`);
    const script = `const { lockFolder } = await import(${JSON.stringify(moduleUrl)});
await lockFolder(${JSON.stringify(dir)}); process.stdout.write('locked\\n'); setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await once(child.stdout, 'data');
    await sleep(1000 + (2000 * k) / kills); // kill at a different phase of the 2 s refresh
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    const killed = Date.now();
    const sinceRefresh = killed - statSync(join(dir, LOCK_NAME)).mtimeMs;
    const lock = await lockFolder(dir);
    const after = (Date.now() - killed) / 1000;
    lock.release();
    console.log(
      `SIGKILL ${k + 1}: taken over ${after.toFixed(2)} s after the kill (last refresh ${(sinceRefresh / 1000).toFixed(2)} s before it)`,
    );
  }

  const dir = join(root, 'lost');
  const lock = await lockFolder(dir);
  rmSync(join(dir, LOCK_NAME), { recursive: true });
  t = Date.now();
  for (;;) {
    try {
      lock.assertHeld();
    } catch {
      break;
    }
    await sleep(20);
  }
  console.log(`lost lock noticed ${((Date.now() - t) / 1000).toFixed(2)} s after its folder was removed`);
  lock.release();
} finally {
  rmSync(root, { recursive: true, force: true });
}
