/**
 * `twinscope run`: bad study specs exit 2 naming the field; a study killed mid-way (SIGKILL of the
 * whole process group, workers included) resumes to the same results as an uninterrupted run,
 * without retraining the runs that were complete. The binary and the workers run from dist/,
 * built in beforeAll.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { type ResultRow, readResults } from '../../src/results/rows.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, ROOT, tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-cli-run-');

// 360 steps: about 10 s for the whole study with 2 workers.
const base = { ...tinyBase, epochs: 40 };
const study = {
  name: 'interrupt',
  base,
  perturbations: [
    { kind: 'gaussian', sigmas: [0, 1e-4, 1e-1], forkSteps: [0, 20] },
    { kind: 'seed', forkSteps: [0] },
    { kind: 'init' },
  ],
  measure: { distance: {}, barrier: {}, lyapunov: { window: 3 } },
  lockstep: false,
  workers: 2,
};

/** Run the twinscope binary; resolves with its exit code (or signal) and stderr. */
function twinscope(args: string[], onStart?: (pid: number) => void) {
  const child = spawn(process.execPath, ['bin/twinscope.js', ...args], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.resume();
  onStart?.(child.pid as number);
  return new Promise<{ code: number | null; signal: string | null; stderr: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, stderr })),
  );
}

/** Run directories (those with a run.json) under `dir`. */
function runDirs(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const sub = join(dir, e.name);
    if (existsSync(join(sub, 'run.json'))) out.push(sub);
    else out.push(...runDirs(sub));
  }
  return out;
}

const isComplete = (dir: string) => {
  try {
    return JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).status === 'complete';
  } catch {
    return false; // being written
  }
};

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

function sortRows(rows: readonly ResultRow[]): ResultRow[] {
  const key = (r: ResultRow) =>
    JSON.stringify([r.runB ?? '', r.metric, r.step, r.layer ?? '', r.split ?? '', JSON.stringify(r.options)]);
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

describe('twinscope run', () => {
  test('a bad study file exits 2 naming the field', async () => {
    const path = join(root, 'bad.json');
    writeFileSync(
      path,
      JSON.stringify({ ...study, perturbations: [{ kind: 'gaussian', sigmas: [0, -1], forkSteps: [0] }] }),
    );
    const io = capture();
    const out = join(root, 'bad-out');
    expect(await main(['node', 'twinscope', 'run', path, '--out', out], io)).toBe(EXIT_USAGE);
    expect(io.err).toContain(`${path}: perturbations[0].sigmas[1]`);
    expect(io.err.trim().split('\n')).toHaveLength(1);
    expect(existsSync(out)).toBe(false);

    const io2 = capture();
    const missing = join(root, 'missing.json');
    expect(await main(['node', 'twinscope', 'run', missing, '--out', out], io2)).toBe(EXIT_USAGE);
    expect(io2.err).toContain(`${missing}: file not found`);

    const io3 = capture();
    const inline = join(root, 'bad-base.json');
    writeFileSync(inline, JSON.stringify({ ...study, base: { ...base, optimizer: { kind: 'sgd', lr: 0 } } }));
    expect(await main(['node', 'twinscope', 'run', inline, '--out', out], io3)).toBe(EXIT_USAGE);
    expect(io3.err).toContain('base.optimizer.lr');

    const io4 = capture();
    writeFileSync(path, JSON.stringify(study));
    expect(await main(['node', 'twinscope', 'run', path, '--out', out, '--workers', '0'], io4)).toBe(
      EXIT_USAGE,
    );
    expect(io4.err).toContain('--workers');
  });

  describe('interrupted and resumed', () => {
    beforeAll(buildDist, 120_000);

    test('SIGKILL mid-study, re-run: complete runs are kept, results equal an uninterrupted run', async () => {
      const spec = join(root, 'study.json');
      writeFileSync(spec, JSON.stringify(study));
      const dir = join(root, 'killed');
      const results = join(dir, 'results.arrow');

      // 1. Start, wait for a complete fork run (the parent is then complete too), kill everything.
      let pid = 0;
      const killed = twinscope(['run', spec, '--out', dir, '--no-progress'], (p) => {
        pid = p;
      });
      let done = false;
      void killed.then(() => {
        done = true;
      });
      const forkDone = () =>
        runDirs(join(dir, 'runs', 's0')).some((d) => /\/t\d+\//.test(d) && isComplete(d));
      while (!done && !(forkDone() && !existsSync(results))) await new Promise((r) => setTimeout(r, 20));
      expect(done).toBe(false); // the study must still be running when the fork run completes
      process.kill(-pid, 'SIGKILL');
      const first = await killed;
      expect(first.signal).toBe('SIGKILL');
      expect(existsSync(results)).toBe(false);

      const complete = runDirs(dir).filter(isComplete);
      expect(complete.some((d) => d.endsWith(join('s0', 'parent')))).toBe(true);
      expect(complete.some((d) => /\/t\d+\//.test(d))).toBe(true);
      // 11 runs in all (parent, init baseline, 5 at t = 0, 4 at t = 20): some were left to do.
      expect(complete.length).toBeLessThan(11);
      const before = new Map(
        complete.map((d) => {
          const f = join(d, 'checkpoints.arrow');
          return [f, { mtime: statSync(f).mtimeMs, sha: sha256(f) }];
        }),
      );

      // 2. Resume to completion.
      const resumed = await twinscope(['run', spec, '--out', dir, '--no-progress']);
      expect(resumed.stderr).not.toContain('failed');
      expect(resumed.code).toBe(EXIT_OK);
      const m = /grid: (\d+) jobs, (\d+) run-steps to train/.exec(resumed.stderr);
      expect(m).not.toBeNull();
      // 3880 run-steps from scratch; the complete runs are not counted again.
      expect(Number(m?.[2])).toBeLessThan(3880);
      for (const [f, was] of before) {
        expect({ f, mtime: statSync(f).mtimeMs, sha: sha256(f) }).toEqual({ f, ...was });
      }

      // 3. The same study, uninterrupted, into a fresh directory.
      const fresh = join(root, 'fresh');
      const clean = await twinscope(['run', spec, '--out', fresh, '--no-progress']);
      expect(clean.code).toBe(EXIT_OK);
      expect(clean.stderr).toContain('grid: 19 jobs, 3880 run-steps to train, 2 worker(s)');

      const a = sortRows(readResults(results));
      const b = sortRows(readResults(join(fresh, 'results.arrow')));
      expect(a.length).toBeGreaterThan(1000);
      expect(a.length).toBe(b.length);
      expect(
        a.map((r) => [r.runA, r.runB, r.metric, r.step, r.layer, r.split, JSON.stringify(r.options)]),
      ).toEqual(
        b.map((r) => [r.runA, r.runB, r.metric, r.step, r.layer, r.split, JSON.stringify(r.options)]),
      );
      // Values bit for bit (Object.is: NaN equals NaN, 0 and -0 differ).
      const differ = a.filter((r, i) => !Object.is(r.value, (b[i] as ResultRow).value));
      expect(differ).toEqual([]);
    }, 120_000);
  });
});
