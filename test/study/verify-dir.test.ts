/**
 * `verify` on studies, sweeps and embeddings, and integrity on every read: each damaged file of a
 * study is named by `verify`, refused by the report (exit 1), and a re-run either recomputes what
 * the file caches (results.arrow, a measurement file) or refuses naming it (run.json); temporary
 * files left by killed writers are listed, and `verify --repair` and a resume remove them.
 */
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { writeReport } from '../../src/report/html.js';
import { writeEmbedding } from '../../src/results/embedding.js';
import type { ResultRow } from '../../src/results/rows.js';
import { embedRuns } from '../../src/study/embed-runs.js';
import { runStudy } from '../../src/study/run-study.js';
import { runSweep } from '../../src/study/run-sweep.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { parseSweepSpec } from '../../src/study/sweep-spec.js';
import { repairDir, verifyDir } from '../../src/study/verify-dir.js';
import { IntegrityError } from '../../src/util/errors.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-verify-dir-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const study = parseStudySpec({
  name: 'tiny',
  base: { ...tinyBase, epochs: 3 },
  perturbations: [{ kind: 'gaussian', sigmas: [0, 1e-1], forkSteps: [0, 10], repeats: 1 }],
  measure: { distance: {}, barrier: { alphas: 5 }, cka: {}, embedding: { method: 'pca' } },
  lockstep: false,
});
const pristine = join(root, 'pristine');
let rows: ResultRow[];

/** The study copied to a fresh folder `name`. */
function copy(name: string): string {
  const dir = join(root, name);
  cpSync(pristine, dir, { recursive: true });
  return dir;
}

/** Flip `n` bytes of `path` from offset `at` (XOR 0x5a). */
function flip(path: string, at: number, n = 1): void {
  const bytes = readFileSync(path);
  for (let i = at; i < at + n; i++) bytes[i] = (bytes[i] as number) ^ 0x5a;
  writeFileSync(path, bytes);
}

const byKey = (r: ResultRow) =>
  `${r.runA}|${r.runB}|${r.step}|${r.metric}|${r.layer}|${r.split}|${JSON.stringify(r.options)}`;
const sorted = (rs: readonly ResultRow[]) => [...rs].sort((a, b) => (byKey(a) < byKey(b) ? -1 : 1));
const measurementArrows = (dir: string) =>
  readdirSync(join(dir, 'measurements'))
    .filter((f) => f.endsWith('.arrow'))
    .map((f) => join(dir, 'measurements', f));

beforeAll(async () => {
  rows = (await runStudy(study, pristine, {}, { workers: 1 })).rows;
}, 120_000);

describe('verify on a study', () => {
  test('a fresh study verifies, counting what it checked', () => {
    const r = verifyDir(pristine);
    expect(r).toMatchObject({ ok: true, kind: 'study', problems: [], strayTemps: [] });
    expect(r.summary).toBe('study: 7 runs, 4 measurement files, 0 alignments, 1 embeddings');
  });

  test('64 flipped bytes in results.arrow: verify names it, the report refuses it, a re-run rewrites it', async () => {
    const dir = copy('results');
    flip(join(dir, 'results.arrow'), 400, 64);
    const r = verifyDir(dir);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([
      expect.stringMatching(
        /^results\.arrow: sha256 [0-9a-f]{16}… does not match the [0-9a-f]{16}… .*status\.json records/,
      ),
    ]);
    await expect(writeReport(dir)).rejects.toThrow(IntegrityError);
    await expect(writeReport(dir)).rejects.toThrow(`${join(dir, 'results.arrow')}: sha256`);
    const again = await runStudy(study, dir, {}, { workers: 1 });
    expect(sorted(again.rows)).toEqual(sorted(rows));
    expect(verifyDir(dir).ok).toBe(true);
  }, 60_000);

  test('a damaged measurement file is named and measured again by a re-run (same rows)', async () => {
    const dir = copy('measurement');
    const [first, second] = measurementArrows(dir) as [string, string];
    flip(first, 300);
    rmSync(second.replace(/\.arrow$/, '.json'));
    const problems = verifyDir(dir).problems;
    expect(problems).toHaveLength(2);
    expect(problems).toContainEqual(
      expect.stringMatching(
        /^measurements\/[0-9a-f]{24}\.arrow: sha256 .* measurements\/[0-9a-f]{24}\.json records/,
      ),
    );
    expect(problems).toContainEqual(
      expect.stringMatching(/^measurements\/[0-9a-f]{24}\.arrow: no index [0-9a-f]{24}\.json \(interrupted/),
    );
    const measured: string[] = [];
    const again = await runStudy(
      study,
      dir,
      { onJob: (id, outcome) => outcome === 'done' && measured.push(id) },
      { workers: 1 },
    );
    expect(measured).toHaveLength(2);
    expect(measured.every((id) => id.startsWith('measure:'))).toBe(true);
    expect(sorted(again.rows)).toEqual(sorted(rows));
    expect(verifyDir(dir).ok).toBe(true);
  }, 60_000);

  test('a corrupted checkpoints.arrow: a re-run that must measure from it fails that pair naming the file', async () => {
    const dir = copy('checkpoints');
    const twin = 's0/t10/gaussian-1e-1-r0';
    const ck = join(dir, 'runs', twin, 'checkpoints.arrow');
    flip(ck, 1000, 4);
    // The pair is to be measured again (its index gone), from the corrupted checkpoints.
    const index = readdirSync(join(dir, 'measurements'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(dir, 'measurements', f))
      .find((f) => JSON.parse(readFileSync(f, 'utf8')).runB === twin) as string;
    rmSync(index);
    expect(verifyDir(dir).problems).toContainEqual(
      expect.stringMatching(new RegExp(`^runs/${twin}/checkpoints\\.arrow: sha256`)),
    );
    const again = await runStudy(study, dir, {}, { workers: 1 });
    expect(again.failed).toEqual([
      { id: `measure:${twin}`, message: expect.stringContaining(`${ck}: sha256`) },
    ]);
    expect(again.rows.some((r) => r.runB === twin)).toBe(false);
  }, 60_000);

  test('a changed number in study.json, status.json or a run.json is named; a re-run refuses a damaged run.json', async () => {
    const dir = copy('json');
    const edit = (rel: string, from: string | RegExp, to: string) => {
      const path = join(dir, rel);
      const text = readFileSync(path, 'utf8');
      expect(text).toMatch(from);
      writeFileSync(path, text.replace(from, to));
    };
    edit('study.json', /"totalSteps": \d+/, '"totalSteps": 1');
    edit('status.json', '"complete": true', '"complete": false');
    edit('runs/s0/t10/a/run.json', '"lr": 0.1', '"lr": 0.2');
    const problems = verifyDir(dir).problems;
    expect(problems).toEqual([
      expect.stringMatching(/^study\.json: content does not match its checksum/),
      expect.stringMatching(/^status\.json: content does not match its checksum/),
      expect.stringMatching(/^runs\/s0\/t10\/a\/run\.json: content does not match its checksum/),
    ]);
    await expect(writeReport(dir)).rejects.toThrow(/study\.json: content does not match its checksum/);
    rmSync(join(dir, 'study.json'));
    rmSync(join(dir, 'status.json'));
    await expect(runStudy(study, dir, {}, { workers: 1 })).rejects.toThrow(
      `${join(dir, 'runs', 's0', 't10', 'a', 'run.json')}: content does not match its checksum`,
    );
  }, 60_000);

  test('a damaged embedding is named, and stops the report', async () => {
    const dir = copy('embedding');
    flip(join(dir, 'embedding', 's0', 'embedding.arrow'), 200);
    expect(verifyDir(dir).problems).toEqual([
      expect.stringMatching(
        /^embedding\/s0\/embedding\.arrow: sha256 .* embedding\/s0\/embedding\.json records/,
      ),
    ]);
    await expect(writeReport(dir)).rejects.toThrow(IntegrityError);
  });

  test('temporary files left by a killed writer: listed, removed by --repair and by a resume', async () => {
    const dir = copy('temps');
    const ckTemp = join(dir, 'runs', 's0', 'parent', 'checkpoints.arrow.tmp-999999');
    writeFileSync(ckTemp, readFileSync(join(dir, 'runs', 's0', 'parent', 'checkpoints.arrow')));
    writeFileSync(join(dir, 'results.arrow.tmp-999998'), 'partial');
    const r = verifyDir(dir);
    expect(r.ok).toBe(false);
    expect(r.strayTemps.map((t) => t.pid).sort()).toEqual([999998, 999999]);
    expect(r.problems).toContainEqual(
      expect.stringMatching(
        /^runs\/s0\/parent\/checkpoints\.arrow\.tmp-999999: temporary file \(\d+ bytes\) left by process 999999/,
      ),
    );
    const repaired = await repairDir(dir);
    expect(repaired.removed).toHaveLength(2);
    expect(repaired.after.ok).toBe(true);

    writeFileSync(ckTemp, 'x');
    await runStudy(study, dir, {}, { workers: 1 });
    expect(verifyDir(dir).strayTemps).toEqual([]);
  }, 60_000);

  test('the CLI: problems one per line and exit 1; --repair prints what it removed; not a study: exit 2', async () => {
    const dir = copy('cli');
    writeFileSync(join(dir, 'measurements', 'x.arrow.tmp-999997'), 'partial');
    let io = capture();
    expect(await main(['node', 'twinscope', 'verify', dir], io)).toBe(1);
    expect(io.out).toMatch(
      new RegExp(`^${dir}: measurements/x\\.arrow\\.tmp-999997: temporary file \\(7 bytes\\)`),
    );
    expect(io.err).toBe(`error: ${dir}: 1 problem(s)\n`);
    io = capture();
    expect(await main(['node', 'twinscope', 'verify', dir, '--repair'], io)).toBe(0);
    expect(io.out).toBe(
      `removed ${join(dir, 'measurements', 'x.arrow.tmp-999997')} (7 bytes)\n${dir}: ok (study: 7 runs, 4 measurement files, 0 alignments, 1 embeddings)\n`,
    );
    io = capture();
    expect(await main(['node', 'twinscope', 'verify', join(dir, 'measurements')], io)).toBe(2);
    expect(io.err).toMatch(/not a run, study, sweep or embedding directory/);
  });
});

describe('verify on a sweep and on embed output', () => {
  test('a grouped sweep verifies; damaged groups.arrow and a group embedding are named', async () => {
    const sweep = parseSweepSpec({
      name: 'sw',
      sweep: { base: { ...tinyBase, epochs: 1 }, grid: { 'optimizer.lr': [0.1, 0.05], seed: [0, 1] } },
      embed: { method: 'pca', components: 2, groupBy: ['optimizer.lr'] },
    });
    const dir = join(root, 'sweep');
    await runSweep(sweep, dir, {}, { workers: 1 });
    const r = verifyDir(dir);
    expect(r).toMatchObject({ ok: true, kind: 'sweep', summary: 'sweep: 4 runs, 2 embeddings' });
    flip(join(dir, 'groups.arrow'), 100);
    const group = readdirSync(join(dir, 'groups'))[0] as string;
    const json = join(dir, 'groups', group, 'embedding.json');
    writeFileSync(json, readFileSync(json, 'utf8').replace('"components": 2', '"components": 1'));
    expect(verifyDir(dir).problems).toEqual([
      expect.stringMatching(/^groups\.arrow: sha256 .* groups\.json records/),
      expect.stringMatching(
        new RegExp(`^groups/${group}/embedding\\.json: content does not match its checksum`),
      ),
    ]);
    await expect(writeReport(dir)).rejects.toThrow(IntegrityError);
  }, 60_000);

  test('twinscope embed output verifies, and a damaged file in it is named', async () => {
    const dir = join(root, 'embed-out');
    const runs = ['parent', 't10/a'].map((r) => join(pristine, 'runs', 's0', r));
    writeEmbedding(dir, await embedRuns(runs, { method: 'pca', components: 2 }));
    expect(verifyDir(dir)).toMatchObject({ ok: true, kind: 'embedding' });
    flip(join(dir, 'embedding.arrow'), 100);
    expect(verifyDir(dir).problems).toEqual([expect.stringMatching(/^embedding\.arrow: sha256/)]);
  });
});
