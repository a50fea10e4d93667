/**
 * Folder locks through the CLI: two `twinscope train` processes into one folder at once (exactly one
 * succeeds, the other exits 2 naming the folder and the holder, and the run verifies), and every
 * command that writes a folder (run: study and sweep; export; embed) exits 2 without writing
 * anything while another process holds that folder.
 */
import { spawn } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { trainRun } from '../../src/train/run.js';
import { LOCK_NAME, lockFolder } from '../../src/util/folder-lock.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, ROOT, tinyBase, tinyLinear } from '../helpers/study.js';

const root = scratchDir('twinscope-cli-locks-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);
const reEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Start the twinscope binary: its pid, and its exit code and output once it ends. */
function twinscope(args: string[]) {
  const child = spawn(process.execPath, ['bin/twinscope.js', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const pid = child.pid as number;
  const done = new Promise<{ pid: number; code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => resolve({ pid, code, stdout, stderr })),
  );
  return { pid, done };
}

describe('two writers, one folder', () => {
  beforeAll(buildDist, 180_000);

  test('two `twinscope train` into one folder at once: one trains, the other exits 2 naming the holder', async () => {
    // Both start at once and reach the lock within a second or two of each other (they start the
    // same way, on the same cores); the run trains for several seconds more than that, so whichever
    // takes the lock still holds it when the other arrives.
    const spec = join(root, 'long.json');
    writeFileSync(
      spec,
      JSON.stringify({
        ...tinyBase,
        name: 'long',
        epochs: undefined,
        steps: 12000,
        checkpoints: { every: 3000 },
      }),
    );
    const out = join(root, 'twice');
    const args = ['train', spec, '--out', out, '--no-progress'];
    const results = await Promise.all([twinscope(args).done, twinscope(args).done]);
    expect(results.map((r) => r.code).sort()).toEqual([0, 2]);
    const winner = results.find((r) => r.code === 0)!;
    const loser = results.find((r) => r.code === 2)!;
    expect(winner.stdout).toContain(`${out}: 12000 steps`);
    expect(loser.stderr.trim()).toMatch(
      new RegExp(
        `^error: ${reEscape(out)}: in use by pid ${winner.pid} on host ${reEscape(hostname())} since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z ` +
          `\\(twinscope train ${reEscape(spec)} --out ${reEscape(out)} --no-progress\\); wait for it or stop it$`,
      ),
    );
    expect(loser.stdout).toBe('');
    const io = capture();
    expect(await cli(io, 'verify', out)).toBe(EXIT_OK);
    expect(io.out).toContain(`${out}: ok`);
    expect(readdirSync(out)).not.toContain(LOCK_NAME);
  }, 120_000);
});

describe('every writing command is refused while its folder is held', () => {
  const run = join(root, 'run');
  beforeAll(() => trainRun(parseRunSpec(tinyLinear), run), 60_000);

  /** `twinscope ARGS` while another writer holds `dir`: exit 2, the holder named, nothing written. */
  async function refusedWhileHeld(dir: string, args: string[]) {
    const lock = await lockFolder(dir, { command: 'twinscope run other.json --out elsewhere' });
    try {
      const before = readdirSync(dir).sort();
      const io = capture();
      expect(await cli(io, ...args), io.err).toBe(EXIT_USAGE);
      expect(io.err).toMatch(
        new RegExp(
          `^error: ${reEscape(dir)}: in use by pid ${process.pid} on host ${reEscape(hostname())} since \\S+Z ` +
            '\\(twinscope run other\\.json --out elsewhere\\); wait for it or stop it\n$',
        ),
      );
      expect(io.out).toBe('');
      expect(readdirSync(dir).sort()).toEqual(before);
    } finally {
      lock.release();
    }
  }

  test('run (a study)', async () => {
    const spec = join(root, 'study.json');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'held',
        base: { ...tinyBase, epochs: 1 },
        perturbations: [{ kind: 'gaussian', sigmas: [0], forkSteps: [0] }],
        measure: { distance: {} },
        workers: 1,
      }),
    );
    await refusedWhileHeld(join(root, 'study'), ['run', spec, '--out', join(root, 'study'), '--no-progress']);
  });

  test('run (a sweep)', async () => {
    const spec = join(root, 'sweep.json');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'held',
        sweep: { base: { ...tinyBase, epochs: 1 }, grid: { seed: [0, 1] } },
        embed: { method: 'pca', components: 2 },
        workers: 1,
      }),
    );
    await refusedWhileHeld(join(root, 'sweep'), ['run', spec, '--out', join(root, 'sweep'), '--no-progress']);
  });

  test('export (into the run directory, or --to a folder)', async () => {
    await refusedWhileHeld(run, ['export', run]);
    await refusedWhileHeld(join(root, 'parquet'), ['export', run, '--to', join(root, 'parquet')]);
  });

  test('embed --out', async () => {
    await refusedWhileHeld(join(root, 'embed'), [
      'embed',
      run,
      '--method',
      'pca',
      '--out',
      join(root, 'embed'),
    ]);
  });
});
