/**
 * CLI surface of the report and the run-directory commands: `twinscope report` (exit codes, printed
 * path), `twinscope run` ending with the report path, `--json` of inspect and verify, the Examples
 * block of each command's help and the exit codes in `twinscope --help`.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, ROOT, tinyBase } from '../helpers/study.js';
import { writeStudyFixture } from '../report/study-fixture.js';

const root = scratchDir('twinscope-cli-report-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);
const lastLine = (text: string) => text.trimEnd().split('\n').at(-1);

const tinyRun = { ...tinyBase, name: 'tiny', epochs: 1, checkpoints: { every: 5 } };

describe('twinscope report', () => {
  test('writes the report and prints its path as the last line', async () => {
    const dir = join(root, 'study');
    writeStudyFixture(dir, { failed: true });
    const io = capture();
    expect(await cli(io, 'report', dir)).toBe(EXIT_OK);
    const html = join(dir, 'report', 'index.html');
    expect(lastLine(io.out)).toBe(`report   ${html}`);
    expect(existsSync(html)).toBe(true);
    for (const ext of ['svg', 'png'])
      expect(existsSync(join(dir, 'report', 'plots', `l2-vs-step.${ext}`))).toBe(true);
  });

  test('a directory that is not a study exits 2', async () => {
    const io = capture();
    expect(await cli(io, 'report', join(root, 'nope'))).toBe(EXIT_USAGE);
    expect(io.err).toContain('no study.json');
    expect(io.out).toBe('');
  });
});

describe('help', () => {
  test('twinscope --help documents the exit codes and lists report', async () => {
    const io = capture();
    expect(await cli(io, '--help')).toBe(EXIT_OK);
    expect(io.out).toContain('Exit codes:');
    for (const code of ['0  success', '1  the work failed', '2  bad input']) expect(io.out).toContain(code);
    expect(io.out).toMatch(/^\s+report /m);
  });

  test.each(['run', 'report', 'verify', 'inspect', 'export', 'train'])(
    '%s --help has examples',
    async (cmd) => {
      const io = capture();
      expect(await cli(io, cmd, '--help')).toBe(EXIT_OK);
      expect(io.out).toMatch(/Examples?:\n {2}twinscope /);
    },
  );
});

describe('inspect and verify --json', () => {
  const run = join(root, 'run');
  beforeAll(async () => {
    const spec = join(root, 'tiny.json');
    writeFileSync(spec, JSON.stringify(tinyRun));
    const io = capture();
    expect(await cli(io, 'train', spec, '--out', run, '--no-progress'), io.err).toBe(EXIT_OK);
  }, 60_000);

  test('inspect --json: parseable, with the summary fields', async () => {
    const io = capture();
    expect(await cli(io, 'inspect', run, '--json')).toBe(EXIT_OK);
    const info = JSON.parse(io.out);
    expect(info).toMatchObject({ dir: run, name: 'tiny', status: 'complete' });
    expect(info.totalSteps).toBeGreaterThan(0);
    expect(info.checkpointSteps.at(-1)).toBe(info.totalSteps);
    expect(typeof info.final.testAcc).toBe('number');
    expect(info.files['run.json']).toBeGreaterThan(0);
  });

  test('verify --json: ok run, then a broken one (exit 1, JSON names the problem), then no run (exit 2)', async () => {
    const io = capture();
    expect(await cli(io, 'verify', run, '--json')).toBe(EXIT_OK);
    expect(JSON.parse(io.out)).toMatchObject({ ok: true, problems: [] });
    expect(JSON.parse(io.out).summary).toContain('checkpoints');

    const io2 = capture();
    const broken = join(root, 'broken-run');
    cpSync(run, broken, { recursive: true });
    writeFileSync(join(broken, 'metrics.arrow'), 'garbage');
    expect(await cli(io2, 'verify', broken, '--json')).toBe(EXIT_FAILURE);
    const result = JSON.parse(io2.out);
    expect(result.ok).toBe(false);
    expect(result.problems[0]).toContain('metrics.arrow');

    // Not a run directory at all is bad input: exit 2, one error line, no JSON.
    const io3 = capture();
    const missing = join(root, 'not-a-run');
    expect(await cli(io3, 'verify', missing, '--json')).toBe(EXIT_USAGE);
    expect(io3.err).toBe(`error: ${missing}: not a directory (no such folder)\n`);
    expect(io3.out).toBe('');
  });
});

describe('twinscope run writes the report', () => {
  beforeAll(buildDist, 180_000);

  test('the last stdout line is the report path', () => {
    const spec = join(root, 'study-spec.json');
    writeFileSync(
      spec,
      JSON.stringify({
        name: 'tiny-study',
        base: tinyRun,
        perturbations: [{ kind: 'gaussian', sigmas: [0, 1e-3], forkSteps: [0] }],
        measure: { distance: {}, barrier: {} },
        lockstep: false,
        workers: 1,
      }),
    );
    const out = join(root, 'tiny-study');
    const result = spawnSync(
      process.execPath,
      ['bin/twinscope.js', 'run', spec, '--out', out, '--no-progress'],
      {
        cwd: ROOT,
        encoding: 'utf8',
      },
    );
    expect(result.status, result.stderr).toBe(0);
    const html = join(out, 'report', 'index.html');
    expect(lastLine(result.stdout)).toBe(`report   ${html}`);
    expect(readFileSync(html, 'utf8')).toContain('tiny-study');
  }, 120_000);
});
