/**
 * `measure.embedding` of a twin study: one embedding per parent seed of exactly the seed's runs,
 * equal to embedding those run directories directly, reused on a re-run (same key), recomputed when
 * the options change (without re-measuring the pairs), incomplete runs left out, and the report's
 * embedding figures.
 */
import { cpSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { writeReport } from '../../src/report/html.js';
import { readStudyDir } from '../../src/report/study-dir.js';
import { type EmbeddingKeyJson, readEmbedding } from '../../src/results/embedding.js';
import { embedRuns } from '../../src/study/embed-runs.js';
import { embedStudy } from '../../src/study/embed-study.js';
import { runStudy, type StudyResult } from '../../src/study/run-study.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { readRunJson, writeRunJson } from '../../src/train/run.js';
import { IntegrityError } from '../../src/util/errors.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const tinyStudy = {
  name: 'tiny-embed',
  base: tinyBase,
  seeds: [0, 1],
  perturbations: [
    { kind: 'gaussian', sigmas: [1e-3], forkSteps: [20] },
    { kind: 'seed', forkSteps: [20] },
    { kind: 'init' },
  ],
  measure: { distance: {}, embedding: { method: 'inpca', components: 2, examples: 64 } },
  lockstep: false,
};

/** The runs of seed `s`, in embedding order: parent, fork group (reference first), seed twin, baseline. */
const runsOf = (s: number) => [
  `s${s}/parent`,
  `s${s}/t20/a`,
  `s${s}/t20/gaussian-1e-3-r0`,
  `s${s}/t20/seed-r0`,
  `s${s}/init-r0`,
];

const root = scratchDir('twinscope-embed-study-');
const spec = parseStudySpec(tinyStudy);
const dir = join(root, 'one');
const embDir = (d: string, s: number) => join(d, 'embedding', `s${s}`);
let result: StudyResult;

beforeAll(async () => {
  result = await runStudy(spec, dir, {}, { workers: 1 });
}, 120_000);

describe('runStudy with measure.embedding', () => {
  test('one embedding per seed, holding exactly the runs of that seed', () => {
    expect(result.failed).toEqual([]);
    expect(result.embeddings.map((e) => [e.seed, e.outcome])).toEqual([
      [0, 'computed'],
      [1, 'computed'],
    ]);
    for (const s of [0, 1]) {
      for (const f of ['embedding.arrow', 'embedding.json', 'key.json']) {
        expect(existsSync(join(embDir(dir, s), f)), f).toBe(true);
      }
      const e = readEmbedding(embDir(dir, s));
      expect(e.method).toBe('inpca');
      expect(e.components).toBe(2);
      expect(e.options).toMatchObject({ components: 2, examples: 64, split: 'test' });
      expect(e.runs).toEqual(runsOf(s));
      expect(e.runDirs).toEqual(runsOf(s).map((n) => `runs/${n}`));
      expect(new Set(e.points.map((p) => p.run))).toEqual(new Set(runsOf(s)));
      // Parent and baseline: every checkpoint; twins: from the fork step on.
      const steps = (run: string) => e.points.filter((p) => p.run === run).map((p) => p.step);
      expect(steps(`s${s}/parent`)).toEqual([0, 10, 20, 30, 40, 45]);
      expect(steps(`s${s}/init-r0`)).toEqual([0, 10, 20, 30, 40, 45]);
      expect(steps(`s${s}/t20/a`)).toEqual([20, 30, 40, 45]);
      const key = JSON.parse(readFileSync(join(embDir(dir, s), 'key.json'), 'utf8')) as EmbeddingKeyJson;
      expect(key.key).toMatch(/^[0-9a-f]{64}$/);
      expect(key.runs).toEqual(runsOf(s));
      expect(key.excluded).toEqual([]);
    }
    // The seeds' runs together are every run the study trained.
    const planned = [
      ...result.plan.parents,
      ...result.plan.baselines,
      ...result.plan.seedTwins,
      ...result.plan.groups.flatMap((g) => g.members),
    ].map((r) => r.name);
    expect([...runsOf(0), ...runsOf(1)].sort()).toEqual(planned.sort());
  });

  test('coordinates equal a direct embedRuns of the same run directories', async () => {
    for (const s of [0, 1]) {
      const stored = readEmbedding(embDir(dir, s));
      const direct = await embedRuns(
        runsOf(s).map((n) => join(dir, 'runs', n)),
        { method: 'inpca', components: 2, examples: 64 },
      );
      expect(stored.points.length).toBe(direct.points.length);
      stored.points.forEach((p, i) => {
        const q = direct.points[i];
        expect(p.step).toBe(q?.step);
        p.coords.forEach((c, a) => expect(Math.abs(c - (q?.coords[a] as number))).toBeLessThan(1e-12));
      });
      stored.eigenvalues.forEach((l, a) =>
        expect(Math.abs(l - (direct.eigenvalues[a] as number))).toBeLessThan(1e-12),
      );
      expect(stored.explainedStress).toEqual(direct.explainedStress);
    }
    // Two seeds, two datasets and parents: the embeddings differ.
    expect(readEmbedding(embDir(dir, 0)).points[0]?.coords).not.toEqual(
      readEmbedding(embDir(dir, 1)).points[0]?.coords,
    );
  });

  test('the runner draws no figures (the report does)', () => {
    expect(existsSync(join(dir, 'plots'))).toBe(false);
  });

  test('the report shows the embedding of every seed after the butterfly plots', async () => {
    const report = await writeReport(dir);
    const names = report.plots.map((p) => p.name);
    expect(names.slice(-2)).toEqual(['embedding-s0', 'embedding-s1']);
    expect(names.length).toBeGreaterThan(2);
    for (const p of report.plots.slice(-2)) {
      expect(existsSync(join(dir, 'report', p.files.svg))).toBe(true);
      expect(p.title).toMatch(/^Trajectory InPCA, seed [01]$/);
    }
    const html = readFileSync(report.html, 'utf8');
    expect(html).toContain('id="fig-embedding-s0"');
    expect(html).toContain('id="fig-embedding-s1"');
    // k = 2: no pairs figure.
    expect(names).not.toContain('embedding-pairs-s0');
  });

  test('a re-run reuses the embeddings: embedding.json is not rewritten', async () => {
    const files = [0, 1].map((s) => join(embDir(dir, s), 'embedding.json'));
    const before = files.map((f) => ({ mtime: statSync(f).mtimeMs, text: readFileSync(f, 'utf8') }));
    const outcomes: string[] = [];
    const again = await runStudy(spec, dir, { onJob: (_id, o) => outcomes.push(o) }, { workers: 1 });
    expect(again.embeddings.map((e) => e.outcome)).toEqual(['reused', 'reused']);
    expect(outcomes.every((o) => o === 'skipped')).toBe(true);
    files.forEach((f, i) => {
      expect(statSync(f).mtimeMs).toBe(before[i]?.mtime);
      expect(readFileSync(f, 'utf8')).toBe(before[i]?.text);
    });
  }, 60_000);

  test('other embedding options: recomputed, without re-measuring any pair', async () => {
    const copy = join(root, 'three');
    cpSync(dir, copy, { recursive: true });
    const three = parseStudySpec({
      ...tinyStudy,
      measure: { ...tinyStudy.measure, embedding: { method: 'inpca', components: 3, examples: 64 } },
    });
    const outcomes: string[] = [];
    const r = await runStudy(three, copy, { onJob: (_id, o) => outcomes.push(o) }, { workers: 1 });
    expect(outcomes.every((o) => o === 'skipped')).toBe(true);
    expect(r.embeddings.map((e) => e.outcome)).toEqual(['computed', 'computed']);
    const e = readEmbedding(embDir(copy, 0));
    expect(e.components).toBe(3);
    // The first two axes are those of the k = 2 embedding.
    const two = readEmbedding(embDir(dir, 0));
    e.points.forEach((p, i) =>
      [0, 1].forEach((a) =>
        expect(Math.abs((p.coords[a] as number) - (two.points[i]?.coords[a] as number))).toBeLessThan(1e-9),
      ),
    );
    // k = 3: the report adds the pairs figure.
    expect((await writeReport(copy)).plots.map((p) => p.name)).toContain('embedding-pairs-s0');
  }, 60_000);

  test('an incomplete run is left out and named; the report warns about it', async () => {
    const copy = join(root, 'incomplete');
    cpSync(dir, copy, { recursive: true });
    const runDir = join(copy, 'runs', 's0', 'init-r0');
    writeRunJson(runDir, { ...readRunJson(runDir), status: 'running' });
    const logs: string[] = [];
    const out = await embedStudy(spec, result.plan, copy, (m) => logs.push(m));
    expect(out.map((e) => e.outcome)).toEqual(['computed', 'reused']);
    expect(out[0]?.runs).toEqual(runsOf(0).filter((n) => n !== 's0/init-r0'));
    expect(out[0]?.excluded.map((x) => x.name)).toEqual(['s0/init-r0']);
    expect(
      logs.some((m) => m === 'embedding s0: 1 run(s) left out: s0/init-r0 (not complete (status running))'),
    ).toBe(true);
    expect(readEmbedding(embDir(copy, 0)).runs).toEqual(out[0]?.runs);
    const key = JSON.parse(readFileSync(join(embDir(copy, 0), 'key.json'), 'utf8')) as EmbeddingKeyJson;
    expect(key.excluded.map((x) => x.name)).toEqual(['s0/init-r0']);
    expect(
      readStudyDir(copy).warnings.some((w) => w.includes('embedding/s0') && w.includes('s0/init-r0')),
    ).toBe(true);
  }, 60_000);

  test('a damaged embedding stops the report naming the file; one that is not an embedding is a warning', async () => {
    const copy = join(root, 'broken');
    cpSync(dir, copy, { recursive: true });
    const arrow = join(embDir(copy, 0), 'embedding.arrow');
    writeFileSync(arrow, 'not arrow');
    await expect(writeReport(copy)).rejects.toThrow(IntegrityError);
    await expect(writeReport(copy)).rejects.toThrow(`${arrow}: 9 bytes, `);
    // Written before seals (no format, no digest): read as it is, and an unreadable one is a warning.
    const json = join(embDir(copy, 0), 'embedding.json');
    const { format: _f, files: _files, checksum: _c, ...legacy } = JSON.parse(readFileSync(json, 'utf8'));
    writeFileSync(json, JSON.stringify(legacy));
    const report = await writeReport(copy);
    expect(report.plots.map((p) => p.name)).not.toContain('embedding-s0');
    expect(report.plots.map((p) => p.name)).toContain('embedding-s1');
    const warnings = readStudyDir(copy).warnings;
    expect(warnings.some((w) => w.startsWith('embedding/s0: no embedding plots'))).toBe(true);
    expect(readFileSync(report.html, 'utf8')).toContain('embedding/s0: no embedding plots');
  }, 60_000);
});
