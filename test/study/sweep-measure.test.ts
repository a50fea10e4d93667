/**
 * Sweeps with a `measure` block (sharpness, sensitivity, critical σ, loss surfaces), and grids given
 * as a list of grids: the union of their products with unique, stable run names; spec errors that
 * name the field; a real three-run sweep on two moons (gradient descent at two learning rates, one
 * of which diverges, and SGD with batch 8) whose rows equal the measure functions called directly on
 * the same checkpoint, whose surfaces are stored and read back with their digests checked, whose
 * re-run measures nothing and whose damaged measurement files are named by verify, refused by the
 * report and measured again by a re-run; the report's geometry figures and rank-correlation table.
 */
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { firstRows } from '../../src/data/rows.js';
import { measureSharpness } from '../../src/measure/diagnostics.js';
import { engineHvp, hutchinsonTrace, lanczos } from '../../src/measure/hessian.js';
import { criticalSigma, engineEvaluator, weightSensitivity } from '../../src/measure/sensitivity.js';
import {
  lossLine,
  pcaSurface,
  randomDirection,
  randomPlaneSurface,
  surfaceAxis,
} from '../../src/measure/surface.js';
import { writeReport } from '../../src/report/html.js';
import { readMeasurement } from '../../src/results/measurement-files.js';
import { METRICS } from '../../src/results/metrics.js';
import { type ResultRow, readResults } from '../../src/results/rows.js';
import { readStatus } from '../../src/results/study-files.js';
import { readSurface } from '../../src/results/surface-files.js';
import { SpecError } from '../../src/spec/errors.js';
import type { Checkpoint } from '../../src/store/index.js';
import { runSweep, type SweepResult } from '../../src/study/run-sweep.js';
import { expandGrid } from '../../src/study/sweep-grid.js';
import { parseSweepSpec } from '../../src/study/sweep-spec.js';
import { verifyDir } from '../../src/study/verify-dir.js';
import { createEngine, readRunJson, runContextParts } from '../../src/train/run.js';
import { readRunCheckpoints } from '../../src/train/run-files.js';
import { IntegrityError } from '../../src/util/errors.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-sweep-measure-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
  throw new Error('expected a SpecError');
}

/** Full-batch gradient descent, 3 steps, a checkpoint after each. */
const base = {
  ...tinyBase,
  epochs: 3,
  batchSize: 'full',
  optimizer: { kind: 'sgd', lr: 0.5 },
  checkpoints: { every: 1 },
};

const measure = {
  sharpness: { examples: 150, topK: 2, probes: 6 },
  sensitivity: { sigmas: [0, 0.1, 0.5], draws: 3, noise: ['iid', 'relative'] },
  surface: [
    { directions: 'random', points: 5, range: 0.5, examples: 80 },
    { directions: 'pca', points: 5, examples: 80 },
    { directions: 'line', points: 5, range: 0.5, examples: 80 },
  ],
};

/** GD at lr 0.5 and 1e12 (which diverges), then SGD with batch 8 for one epoch: one grid list. */
const sweepJson = (over: Record<string, unknown> = {}) => ({
  name: 'geometry',
  sweep: {
    base,
    grid: [{ 'optimizer.lr': [0.5, 1e12] }, { batchSize: [8], 'optimizer.lr': [0.05], epochs: [1] }],
  },
  embed: { method: 'pca', components: 2 },
  measure,
  ...over,
});

describe('grid lists', () => {
  test('the union of the products, in order, with unique names numbered across the grids', () => {
    expect(expandGrid([{ a: [1, 2] }, { b: ['x'], c: [3, 4] }])).toEqual([
      { a: 1 },
      { a: 2 },
      { b: 'x', c: 3 },
      { b: 'x', c: 4 },
    ]);
    const sweep = parseSweepSpec({
      name: 'union',
      sweep: {
        base: tinyBase,
        grid: [
          { 'optimizer.lr': [0.1, 0.2, 0.4], batchSize: ['full'] },
          { batchSize: [8, 16, 32, 64], seed: [0, 1] },
        ],
      },
      embed: { method: 'pca' },
    });
    const names = sweep.points.map((p) => p.name);
    expect(names).toEqual([
      '00-lr0.1-batchSizefull',
      '01-lr0.2-batchSizefull',
      '02-lr0.4-batchSizefull',
      '03-batchSize8-seed0',
      '04-batchSize8-seed1',
      '05-batchSize16-seed0',
      '06-batchSize16-seed1',
      '07-batchSize32-seed0',
      '08-batchSize32-seed1',
      '09-batchSize64-seed0',
      '10-batchSize64-seed1',
    ]);
    expect(new Set(names).size).toBe(names.length);
    expect(sweep.points[2]?.spec.optimizer).toMatchObject({ lr: 0.4 });
    expect(sweep.points[10]?.spec).toMatchObject({ batchSize: 64, seed: 1, optimizer: tinyBase.optimizer });
    // Stable: the same spec gives the same names; a single grid is a list of one.
    expect(parseSweepSpec(sweepJson()).points.map((p) => p.name)).toEqual([
      '0-lr0.5',
      '1-lr1000000000000',
      '2-batchSize8-lr0.05-epochs1',
    ]);
    const one = { ...sweepJson(), sweep: { base, grid: { 'optimizer.lr': [0.5, 1e12] } } };
    const list = { ...sweepJson(), sweep: { base, grid: [{ 'optimizer.lr': [0.5, 1e12] }] } };
    expect(parseSweepSpec(list).points).toEqual(parseSweepSpec(one).points);
  });

  test('problems name the grid of the list; a run that two grids both hold is refused', () => {
    const e = specError(() =>
      parseSweepSpec({
        name: 'bad',
        sweep: { base: tinyBase, grid: [{ 'optimizer.lr': [0.1] }, {}, { 'modle.hidden': [[8]] }] },
        embed: { method: 'pca', groupBy: ['optimizer.lr'] },
      }),
    );
    expect(e.problems).toEqual([
      'sweep.grid[1]: empty (give at least one field to sweep)',
      expect.stringMatching(/^sweep\.grid\[2\]\."modle\.hidden": unknown run spec field 'modle'/),
      "embed.groupBy[0]: 'optimizer.lr' is not a grid field of sweep.grid[1] (expected one of )",
      "embed.groupBy[0]: 'optimizer.lr' is not a grid field of sweep.grid[2] (expected one of modle.hidden)",
    ]);
    const twice = specError(() =>
      parseSweepSpec({
        name: 'twice',
        sweep: { base: tinyBase, grid: [{ 'optimizer.lr': [0.1, 0.2] }, { 'optimizer.lr': [0.2] }] },
        embed: { method: 'pca' },
      }),
    );
    expect(twice.problems).toEqual(['sweep.grid: grid point 2-lr0.2 is the same run as 1-lr0.2']);
    const empty = specError(() =>
      parseSweepSpec({ name: 'e', sweep: { base: tinyBase, grid: [] }, embed: { method: 'pca' } }),
    );
    expect(empty.problems).toEqual(['sweep.grid: must have at least 1 entries (got an array)']);
  });
});

describe('the measure block', () => {
  test('defaults are filled; the resolved block is part of the sweep', () => {
    const sweep = parseSweepSpec(
      sweepJson({ measure: { sensitivity: { sigmas: [0, 0.01, 0.1, 1] }, surface: { directions: 'pca' } } }),
    );
    expect(sweep.measure).toEqual({
      sensitivity: {
        sigmas: [0, 0.01, 0.1, 1],
        draws: 10,
        noise: ['iid'],
        drop: 0.1,
        split: 'test',
        seed: 0,
        correlateAt: 0.1,
      },
      surfaces: [{ directions: 'pca', points: 51, split: 'train', seed: 0 }],
    });
    expect(parseSweepSpec(sweepJson({ measure: { sharpness: {} } })).measure).toEqual({
      sharpness: { topK: 1, steps: 50, probes: 100, seed: 0 },
      surfaces: [],
    });
  });

  test('every problem at once, one line each, naming the field', () => {
    const e = specError(() =>
      parseSweepSpec(
        sweepJson({
          measure: {
            at: [5, 5],
            sharpness: { topk: 2 },
            sensitivity: { sigmas: [0.1, -1, 0.1], noise: ['iid', 'gaussian'], correlateAt: 0.3 },
            surface: [{ directions: 'random', points: 1 }, { directions: 'hessian' }],
          },
        }),
        'sweep.json',
      ),
    );
    expect(e.problems).toEqual([
      "measure.sharpness: unknown field 'topk'",
      'measure.sensitivity.sigmas[1]: must be >= 0 (got -1)',
      `measure.sensitivity.noise[1]: expected one of 'iid', 'relative' (got "gaussian")`,
      'measure.surface[0].points: must be >= 2 (got 1)',
      `measure.surface[1].directions: expected one of 'random', 'pca', 'line' (got "hessian")`,
    ]);
    expect(e.message.split('\n')[0]).toMatch(/^sweep\.json: /);
    const cross = specError(() =>
      parseSweepSpec(
        sweepJson({
          measure: {
            at: [5, 5],
            sensitivity: { sigmas: [0.1, 0.1], correlateAt: 0.3 },
            surface: { directions: 'random', range: [1, -1] },
          },
        }),
      ),
    );
    expect(cross.problems).toEqual([
      'measure.at: contains duplicates',
      'measure.sensitivity.sigmas: contains duplicates',
      'measure.sensitivity.correlateAt: must be one of the sigmas (got 0.3; sigmas 0.1, 0.1)',
      'measure.surface.range: expected [lo, hi] with lo < hi (got [1, -1])',
    ]);
    expect(specError(() => parseSweepSpec(sweepJson({ measure: {} }))).problems).toEqual([
      'measure: nothing to measure (give sharpness, sensitivity or surface)',
    ]);
  });

  test('a step of measure.at that is not a checkpoint of every run is refused before the folder exists', async () => {
    const dir = join(root, 'refused');
    const sweep = parseSweepSpec(sweepJson({ measure: { at: [3, 11], sharpness: {} } }));
    await expect(runSweep(sweep, dir)).rejects.toThrow(SpecError);
    await expect(runSweep(sweep, dir)).rejects.toThrow(
      /measure\.at: run 0-lr0\.5 has no checkpoint at step 11 \(its checkpoints: 0, 1, 2, 3\)/,
    );
    expect(() => readdirSync(dir)).toThrow();
  });
});

describe('a measured sweep', () => {
  const dir = join(root, 'sweep');
  const sweep = parseSweepSpec(sweepJson());
  let first: SweepResult;
  const jobs: string[] = [];

  beforeAll(async () => {
    first = await runSweep(
      sweep,
      dir,
      { onJob: (id, outcome) => jobs.push(`${id} ${outcome}`) },
      { workers: 1 },
    );
  }, 60_000);

  test('every run is trained and measured; the diverged one is skipped with the reason', () => {
    expect(first.failed).toEqual([]);
    expect(first.blocked).toEqual([]);
    expect(first.measured).toBe(3);
    expect(jobs.filter((j) => j.startsWith('measure:'))).toEqual([
      'measure:0-lr0.5 done',
      'measure:1-lr1000000000000 done',
      'measure:2-batchSize8-lr0.05-epochs1 done',
    ]);
    expect(first.diverged.map((d) => d.run)).toEqual(['1-lr1000000000000']);
    const diverged = first.rows.filter((r) => r.runA === '1-lr1000000000000');
    expect(diverged).toEqual([
      expect.objectContaining({
        study: 'geometry',
        runB: null,
        metric: METRICS.diverged,
        value: Number.NaN,
        options: expect.objectContaining({
          run: '1-lr1000000000000',
          reason: expect.any(String),
          skipped: ['sharpness', 'sensitivity', 'surface'],
        }),
      }),
    ]);
    // results.arrow holds every row, and status.json its digest.
    const { status } = readStatus(dir, 'sweep');
    expect(status?.complete).toBe(true);
    const digest = status?.files?.['results.arrow'];
    expect(digest).toBeDefined();
    expect(
      readResults(join(dir, 'results.arrow'), { digest: digest as never, where: 'status.json' }),
    ).toEqual(first.rows);
    expect(first.embedding?.runs).toEqual(['0-lr0.5', '2-batchSize8-lr0.05-epochs1']);
  });

  test('the rows equal the measure functions called directly on the same checkpoint', async () => {
    for (const name of ['0-lr0.5', '2-batchSize8-lr0.05-epochs1']) {
      const runDir = join(dir, 'runs', name);
      const run = readRunJson(runDir);
      const checkpoints = readRunCheckpoints(runDir);
      const last = checkpoints.at(-1) as (typeof checkpoints)[number];
      const { data, model } = runContextParts(run.spec);
      const engine = await createEngine(run.spec, model);
      const rows = first.rows.filter((r) => r.runA === name);
      const value = (metric: string, keep: (o: Record<string, unknown>) => boolean = () => true) =>
        rows
          .filter((r) => r.metric === metric && keep(r.options as Record<string, unknown>))
          .map((r) => r.value);
      expect(new Set(rows.map((r) => r.step))).toEqual(new Set([last.step]));
      try {
        const set = firstRows(data.train, 150);
        const hvp = engineHvp(engine, last.params, { x: set.x, y: set.y, size: set.n });
        const top = await lanczos(hvp, last.params.length, { k: 2, steps: 50, seed: 0 });
        expect(value(METRICS.sharpness)).toEqual([...top.values]);
        expect(top.values[0]).toBeGreaterThan(0);
        const trace = await hutchinsonTrace(hvp, last.params.length, { probes: 6, seed: 0 });
        expect(value(METRICS.hessianTrace)).toEqual([trace.mean]);
        const evaluate = engineEvaluator(engine, data.test);
        for (const noise of ['iid', 'relative'] as const) {
          const s = await weightSensitivity(evaluate, last.params, [0, 0.1, 0.5], {
            noise,
            draws: 3,
            seed: 0,
          });
          for (const stat of ['mean', 'std', 'min', 'max'] as const) {
            const of = (o: Record<string, unknown>) => o.noise === noise && o.stat === stat;
            expect(value(METRICS.sensitivityAccuracy, of)).toEqual(s.levels.map((l) => l.accuracy[stat]));
            expect(value(METRICS.sensitivityLoss, of)).toEqual(s.levels.map((l) => l.loss[stat]));
          }
          // σ = 0: the clean accuracy, exactly.
          expect(
            value(
              METRICS.sensitivityAccuracy,
              (o) => o.noise === noise && o.sigma === 0 && o.stat === 'mean',
            ),
          ).toEqual([s.clean.accuracy]);
          const c = await criticalSigma(evaluate, last.params, { noise, draws: 3, seed: 0, drop: 0.1 });
          expect(value(METRICS.criticalSigma, (o) => o.noise === noise)).toEqual([c.sigma]);
        }
        const surfaceSet = engineEvaluator(engine, firstRows(data.train, 80));
        const axis = surfaceAxis(-0.5, 0.5, 5);
        const random = await randomPlaneSurface(surfaceSet, last.params, run.layout, {
          seed: 0,
          x: axis,
          y: axis,
        });
        const pca = await pcaSurface(
          surfaceSet,
          checkpoints.map((c) => c.params),
          { points: 5 },
        );
        const stored = rows.filter((r) => r.metric === METRICS.surface);
        expect(stored.map((r) => r.options.directions)).toEqual(['random', 'pca', 'line']);
        const read = stored.map((r) =>
          readSurface(join(dir, r.options.file as string), {
            digest: { sha256: r.options.sha256 as string, bytes: r.options.bytes as number },
            where: 'results.arrow',
          }),
        );
        expect(read[0]?.loss).toEqual(random.loss);
        expect(read[0]?.accuracy).toEqual(random.accuracy);
        expect(read[0]?.x).toEqual(axis);
        expect(read[1]?.loss).toEqual(pca.loss);
        expect(read[1]?.x).toEqual(pca.x);
        expect(read[1]?.path.map((p) => [p.step, p.x, p.y])).toEqual(
          checkpoints.map((c, i) => [c.step, ...(pca.plane.coordinates[i] as [number, number])]),
        );
        expect(read[1]?.meta).toMatchObject({ run: name, step: last.step, directions: 'pca', examples: 80 });
        // The line is θ + x d₁ along the random plane's first direction: lossLine with that direction,
        // and (to float32 rounding of the plane's batched evaluation) the plane's y = 0 row.
        const line = await lossLine(
          surfaceSet,
          last.params,
          { direction: randomDirection(last.params, run.layout, 0, { seed: 0 }) },
          axis,
        );
        expect(read[2]?.x).toEqual(axis);
        expect(read[2]?.y).toEqual([0]);
        expect(read[2]?.loss).toEqual([line.loss]);
        expect(read[2]?.accuracy).toEqual([line.accuracy]);
        const row0 = random.loss[axis.indexOf(0)] as number[];
        line.loss.forEach((l, i) => expect(Math.abs(l - (row0[i] as number))).toBeLessThan(1e-5 * (1 + l)));
        expect(read[2]?.meta).toMatchObject({ directions: 'line', seed: 0, stream: 'eval/direction/0' });
        expect(stored[0]?.value).toBe((await surfaceSet(last.params)).loss);
      } finally {
        await engine.dispose();
      }
    }
  });

  test('a re-run measures nothing; a damaged or unindexed measurement is named, refused, and measured again', async () => {
    const again = await runSweep(sweep, dir, {}, { workers: 1 });
    expect(again.trained).toBe(0);
    expect(again.measured).toBe(0);
    expect(again.rows).toEqual(first.rows);
    expect(verifyDir(dir)).toMatchObject({
      ok: true,
      summary: 'sweep: 3 runs, 3 measurement files, 1 embeddings',
    });

    const copy = join(root, 'damaged');
    cpSync(dir, copy, { recursive: true });
    const files = readdirSync(join(copy, 'measurements'));
    const surface = files.find((f) => f.includes('.surface-0-')) as string;
    const bytes = readFileSync(join(copy, 'measurements', surface));
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] as number) ^ 0x5a;
    writeFileSync(join(copy, 'measurements', surface), bytes);
    const other = files
      .filter((f) => /^[0-9a-f]{24}\.json$/.test(f))
      .find((f) => !surface.startsWith(f.slice(0, 24)));
    rmSync(join(copy, 'measurements', other as string));
    const problems = verifyDir(copy).problems;
    expect(problems).toContainEqual(
      expect.stringMatching(/^measurements\/[0-9a-f]{24}\.surface-0-random-\d+\.arrow: sha256 .* records/),
    );
    expect(problems).toContainEqual(expect.stringMatching(/^measurements\/[0-9a-f]{24}\.arrow: no index/));
    expect(() =>
      readMeasurement(join(copy, 'measurements', surface.replace(/\.surface-.*$/, '.arrow'))),
    ).toThrow(IntegrityError);
    await expect(writeReport(copy)).rejects.toThrow(IntegrityError);
    const measured: string[] = [];
    const repaired = await runSweep(
      sweep,
      copy,
      { onJob: (id, outcome) => outcome === 'done' && measured.push(id) },
      { workers: 1 },
    );
    expect(measured).toHaveLength(2);
    expect(measured.every((id) => id.startsWith('measure:'))).toBe(true);
    const sorted = (rows: readonly ResultRow[]) => [...rows].sort((a, b) => a.runA.localeCompare(b.runA));
    expect(sorted(repaired.rows)).toEqual(sorted(first.rows));
    expect(verifyDir(copy).ok).toBe(true);
  }, 60_000);

  test('the report draws the geometry figures and the rank-correlation table', async () => {
    const report = await writeReport(dir);
    const names = report.plots.map((p) => p.name);
    expect(names).toEqual([
      'embedding',
      'sensitivity-accuracy',
      'sensitivity-loss',
      'critical-sigma',
      'sharpness',
      'sharpness-vs-critical-sigma',
      'surface-0-lr0.5-random-0-3',
      'surface-0-lr0.5-pca-0-3',
      'surface-0-lr0.5-line-0-3',
      'surface-2-batchSize8-lr0.05-epochs1-random-0-37',
      'surface-2-batchSize8-lr0.05-epochs1-pca-0-37',
      'surface-2-batchSize8-lr0.05-epochs1-line-0-37',
    ]);
    const html = readFileSync(report.html, 'utf8');
    expect(html).toContain('<section id="geometry"><h2>Sharpness and sensitivity</h2>');
    expect(html).toMatch(/<td>λ_max<\/td><td>critical σ \(iid\)<\/td><td class="num">(-?1\.000|—)<\/td>/);
    expect(html).toContain('mean accuracy at σ = 0.1 (relative)');
    expect(html).toContain('Sweep complete: every run trained (or diverged), measured and embedded.');
    const pca = report.plots.find((p) => p.name === 'surface-0-lr0.5-pca-0-3');
    expect(JSON.stringify(pca?.spec)).toContain('"type":"rect"');
    // The 1-D surface is drawn as a curve with θ marked, not as a one-row heatmap.
    const line = JSON.stringify(report.plots.find((p) => p.name === 'surface-0-lr0.5-line-0-3')?.spec);
    expect(line).toContain('"type":"line"');
    expect(line).not.toContain('"type":"rect"');
  }, 60_000);
});

describe('Adam runs', () => {
  test("a sweep measures Adam's preconditioned sharpness λ_max(P⁻¹H) against its threshold", async () => {
    const dir = join(root, 'adam');
    const sweep = parseSweepSpec({
      name: 'adam',
      sweep: { base: { ...base, optimizer: { kind: 'adam', lr: 0.01 } }, grid: [{ seed: [1] }] },
      measure: { sharpness: { examples: 150, probes: 0 } },
    });
    const result = await runSweep(sweep, dir, {}, { workers: 1 });
    const row = result.rows.find((r) => r.metric === METRICS.preconditionedSharpness);
    expect(row).toBeDefined();
    // The same quantity as `twinscope sharpness` computes at that checkpoint (measureSharpness).
    const runDir = join(dir, 'runs', row?.runA as string);
    const run = readRunJson(runDir);
    const last = readRunCheckpoints(runDir).at(-1) as Checkpoint;
    expect(row?.step).toBe(last.step);
    const { data, model } = runContextParts(run.spec);
    const engine = await createEngine(run.spec, model);
    try {
      const m = await measureSharpness(engine, firstRows(data.train, 150), last, run.spec.optimizer, 0.01);
      expect(m.thresholdOf).toBe('preconditioned');
      expect(row?.options.threshold).toBe(m.threshold);
      expect(m.threshold).toBeCloseTo((2 + 2 * 0.9) / (0.1 * 0.01), 6);
      const value = row?.value as number;
      expect(value).toBeGreaterThan(0);
      expect(Math.abs(value - (m.preconditioned as number))).toBeLessThan(1e-4 * value);
      // Not the plain sharpness: Adam's preconditioner rescales the Hessian.
      const plain = result.rows.find((r) => r.metric === METRICS.sharpness)?.value as number;
      expect(Math.abs(value - plain)).toBeGreaterThan(1e-3 * value);
    } finally {
      await engine.dispose();
    }
  }, 60_000);
});
