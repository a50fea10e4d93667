/**
 * The time breakdown of a study or sweep (study/breakdown.ts): every phase present with
 * non-negative times, bytes equal to the sizes of the files each phase wrote, stored in status.json
 * (read back by readStatus, sealed: verify passes), printed by `twinscope run` on stderr, and
 * `twinscope bench study` printing it as JSON from a temporary folder it removes.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { EXIT_OK } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { readStatus, type StudyBreakdown } from '../../src/results/study-files.js';
import { Breakdown, PhaseClock, snapshotFiles, writtenBytes } from '../../src/study/breakdown.js';
import { runStudy, type StudyResult } from '../../src/study/run-study.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { verifyDir } from '../../src/study/verify-dir.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-breakdown-');

/** Total size of the files under `path` (recursively), and their paths relative to `root`. */
function sizeOf(path: string): number {
  const s = statSync(path, { throwIfNoEntry: false });
  if (!s) return 0;
  if (!s.isDirectory()) return s.size;
  return readdirSync(path).reduce((n, f) => n + sizeOf(join(path, f)), 0);
}

const phase = (b: StudyBreakdown, name: string) => b.phases.find((p) => p.phase === name);
const sumBytes = (b: StudyBreakdown, prefix: string) =>
  b.phases.filter((p) => p.phase.startsWith(prefix)).reduce((n, p) => n + p.bytes, 0);

describe('PhaseClock and Breakdown', () => {
  test('phases time themselves, bytes count new and rewritten files, the rest is a remainder', async () => {
    const dir = scratchDir('twinscope-clock-');
    writeFileSync(join(dir, 'old.bin'), Buffer.alloc(100));
    writeFileSync(join(dir, 'kept.bin'), Buffer.alloc(7));
    const clock = new PhaseClock();
    const stopWhole = clock.start('whole');
    await clock.timeWriting('write', [dir], () => {
      writeFileSync(join(dir, 'new.bin'), Buffer.alloc(1234));
      writeFileSync(join(dir, 'old.bin'), Buffer.alloc(50)); // rewritten: counted at its new size
    });
    let x = 0;
    await clock.time('inner', () => {
      for (let i = 0; i < 1e5; i++) x += Math.sqrt(i);
    });
    expect(x).toBeGreaterThan(0);
    stopWhole();
    expect(clock.times.write).toMatchObject({ bytes: 1284, count: 1 });
    const whole = clock.times.whole?.wallMs as number;
    clock.remainder('whole', ['write', 'inner'], 'rest');
    expect(clock.times.whole).toBeUndefined();
    const rest = clock.times.rest as NonNullable<(typeof clock.times)['rest']>;
    expect(rest.count).toBe(1);
    for (const t of Object.values(clock.times)) {
      expect(t.wallMs).toBeGreaterThanOrEqual(0);
      expect(t.cpuMs).toBeGreaterThanOrEqual(0);
    }
    const parts = (clock.times.write?.wallMs ?? 0) + (clock.times.inner?.wallMs ?? 0);
    expect(rest.wallMs).toBeCloseTo(Math.max(0, whole - parts), 6);

    // Unchanged files are not counted; a snapshot lists every file under a folder.
    const before = snapshotFiles([dir]);
    expect([...before.keys()].map((p) => relative(dir, p)).sort()).toEqual([
      'kept.bin',
      'new.bin',
      'old.bin',
    ]);
    expect(writtenBytes(before, snapshotFiles([dir]))).toBe(0);

    // A breakdown merges jobs' times (renamed), keeps flow order, and counts worker CPU apart.
    const b = new Breakdown();
    b.jobsRun('workers', 2);
    b.addJob({ 'measure:cka': { wallMs: 5, cpuMs: 4, bytes: 0, count: 1 } });
    b.addJob({ train: { wallMs: 10, cpuMs: 8, bytes: 100, count: 1 } }, () => 'train:base');
    b.addJob({ train: { wallMs: 1, cpuMs: 1, bytes: 10, count: 1 } }, () => 'train:base');
    b.addJob('not times');
    await b.clock.time('report', () => {});
    const json = b.toJson();
    expect(json.phases.map((p) => p.phase)).toEqual(['train:base', 'measure:cka', 'report']);
    expect(json.phases[0]).toEqual({ phase: 'train:base', wallMs: 11, cpuMs: 9, bytes: 110, count: 2 });
    expect(json).toMatchObject({ jobs: 'workers', workers: 2, workerCpuMs: 13 });
    expect(json.cpuMs).toBeCloseTo(json.mainCpuMs + 13, 0);
  });
});

describe('runStudy: the breakdown in status.json', () => {
  const spec = parseStudySpec({
    name: 'breakdown',
    base: tinyBase,
    perturbations: [
      { kind: 'gaussian', sigmas: [0, 1e-2], forkSteps: [0, 20], repeats: 1 },
      { kind: 'seed', forkSteps: [0], repeats: 1 },
      { kind: 'init', repeats: 1 },
    ],
    measure: {
      distance: {},
      barrier: {},
      align: { methods: ['weight', 'activation'], exportAligned: true },
      cka: {},
      embedding: { method: 'pca', components: 2 },
    },
    lockstep: true,
  });
  const dir = join(root, 'study');
  let result: StudyResult;
  beforeAll(async () => {
    result = await runStudy(spec, dir, {}, { workers: 1 });
  }, 120_000);

  test('every phase, with non-negative times, stored sealed in status.json', () => {
    const b = result.breakdown as StudyBreakdown;
    expect(result.failed).toEqual([]);
    expect(b.phases.map((p) => p.phase)).toEqual([
      'train:base',
      'train:baseline',
      'train:twin-lockstep',
      'train:twin',
      'measure:distance',
      'measure:barrier',
      'measure:align-weight',
      'measure:align-activation',
      'measure:cka',
      'measure:setup',
      'measure:write',
      'embedding:pca',
      'results',
    ]);
    for (const p of b.phases) {
      expect(p.wallMs, p.phase).toBeGreaterThanOrEqual(0);
      expect(p.cpuMs, p.phase).toBeGreaterThanOrEqual(0);
      expect(p.count, p.phase).toBeGreaterThan(0);
    }
    // One parent, one baseline, two lock-step groups (t = 0, 20), one seed twin; one pair job each.
    expect(phase(b, 'train:base')?.count).toBe(1);
    expect(phase(b, 'train:baseline')?.count).toBe(1);
    expect(phase(b, 'train:twin-lockstep')?.count).toBe(2);
    expect(phase(b, 'train:twin')?.count).toBe(1);
    expect(phase(b, 'measure:write')?.count).toBe(result.plan.twins.length);
    // In one process: the jobs' CPU is the coordinator's.
    expect(b).toMatchObject({ jobs: 'in-process', workers: 1, workerCpuMs: 0 });
    expect(b.cpuMs).toBe(b.mainCpuMs);
    expect(b.wallMs).toBeGreaterThanOrEqual(Math.max(...b.phases.map((p) => p.wallMs)));
    const { status } = readStatus(dir, 'study');
    expect(status?.breakdown).toEqual(b);
    expect(verifyDir(dir).ok).toBe(true);
  });

  test('bytes: each phase wrote exactly the files it owns', () => {
    const b = result.breakdown as StudyBreakdown;
    expect(sumBytes(b, 'train:')).toBe(sizeOf(join(dir, 'runs')));
    expect(sumBytes(b, 'measure:')).toBe(sizeOf(join(dir, 'measurements')) + sizeOf(join(dir, 'aligned')));
    expect(phase(b, 'measure:write')?.bytes).toBe(sumBytes(b, 'measure:'));
    expect(phase(b, 'embedding:pca')?.bytes).toBe(sizeOf(join(dir, 'embedding')));
    expect(phase(b, 'results')?.bytes).toBe(
      sizeOf(join(dir, 'study.json')) + sizeOf(join(dir, 'results.arrow')),
    );
    // A fresh study's phases add up to its folder, but status.json (written after the breakdown).
    const total = b.phases.reduce((n, p) => n + p.bytes, 0);
    expect(total).toBe(sizeOf(dir) - sizeOf(join(dir, 'status.json')));
    expect(sizeOf(join(dir, 'runs'))).toBeGreaterThan(0);
  });

  test('a re-run trains nothing and writes no run bytes', async () => {
    const again = await runStudy(spec, dir, {}, { workers: 1 });
    const b = again.breakdown as StudyBreakdown;
    expect(b.phases.filter((p) => p.phase.startsWith('train:') || p.phase.startsWith('measure:'))).toEqual(
      [],
    );
    expect(phase(b, 'embedding:pca')?.bytes).toBe(0); // read back: same runs, same key
  });
});

describe('the CLI: run prints the table, bench study prints JSON', () => {
  beforeAll(() => buildDist(), 300_000);

  test('twinscope run: a table on stderr, status.json with the report phase', async () => {
    const specPath = join(root, 'cli-study.json');
    writeFileSync(
      specPath,
      JSON.stringify({
        name: 'cli',
        base: tinyBase,
        perturbations: [{ kind: 'gaussian', sigmas: [1e-2], forkSteps: [0] }],
        measure: { distance: {} },
      }),
    );
    const out = join(root, 'cli');
    const io = capture();
    expect(
      await main(['node', 'twinscope', 'run', specPath, '--out', out, '--no-progress', '--workers', '1'], io),
    ).toBe(EXIT_OK);
    expect(io.err).toMatch(/^time and bytes: [\d.]+ s wall, [\d.]+ s CPU \(one process\), .* written$/m);
    expect(io.err).toMatch(/^ {2}train:base +[\d.]+ +[\d.]+ +[\d.]+ kB +1$/m);
    expect(io.err).toMatch(/^ {2}report +/m);
    // The table is on stderr only; stdout still ends with the report's path.
    expect(io.out).not.toContain('time and bytes');
    expect(io.out.trimEnd().split('\n').at(-1)).toMatch(/^report {3}.*index\.html$/);
    const { status } = readStatus(out, 'study');
    const report = status?.breakdown?.phases.find((p) => p.phase === 'report');
    expect(report?.bytes).toBe(sizeOf(join(out, 'report')));
    expect(verifyDir(out).ok).toBe(true);
  }, 120_000);

  test('twinscope bench study: JSON on stdout, worker CPU counted, the folder removed', async () => {
    const specPath = join(root, 'bench-sweep.json');
    writeFileSync(
      specPath,
      JSON.stringify({
        name: 'bench-sweep',
        sweep: { base: { ...tinyBase, epochs: 2 }, grid: { seed: [0, 1, 2] } },
        embed: { method: 'pca', components: 2 },
        measure: { sharpness: { examples: 100, topK: 1, probes: 2, steps: 5 } },
      }),
    );
    const leftovers = () => readdirSync(tmpdir()).filter((f) => f.startsWith('twinscope-bench-study-'));
    const before = leftovers();
    const io = capture();
    expect(await main(['node', 'twinscope', 'bench', 'study', specPath, '--workers', '2'], io)).toBe(EXIT_OK);
    const json = JSON.parse(io.out) as StudyBreakdown & { spec: string };
    expect(json.spec).toBe(specPath);
    expect(json).toMatchObject({ jobs: 'workers', workers: 2 });
    expect(json.phases.map((p) => p.phase)).toEqual([
      'train:sweep',
      'measure:sharpness',
      'measure:setup',
      'measure:write',
      'embedding:pca',
      'results',
      'report',
    ]);
    for (const p of json.phases) expect(p.count, p.phase).toBeGreaterThan(0);
    expect(json.phases[0]).toMatchObject({ phase: 'train:sweep', count: 3 });
    expect(json.phases[0]?.bytes).toBeGreaterThan(0);
    // The jobs ran in worker processes: their CPU is theirs, added to the coordinator's.
    expect(json.workerCpuMs).toBeGreaterThan(0);
    expect(json.cpuMs).toBeCloseTo(json.mainCpuMs + json.workerCpuMs, 0);
    expect(leftovers()).toEqual(before);
    expect(readFileSync(specPath, 'utf8')).toContain('bench-sweep');
  }, 180_000);
});
