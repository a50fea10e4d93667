/**
 * Sweeps: grid expansion (count, names, overrides, fixed data seed), spec errors that name the bad
 * grid field or grid point, a real 4-run two-moons sweep embedded with InPCA, run twice (the
 * second run trains nothing), and a grouped linear-regression sweep (one embedding per decay,
 * checked against direct embedRuns calls, with the groups.json / groups.arrow summaries).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';
import { describe, expect, test } from 'vitest';
import { writeReport } from '../../src/report/html.js';
import { SpecError } from '../../src/spec/errors.js';
import { embedRuns } from '../../src/study/embed-runs.js';
import { runSweep } from '../../src/study/run-sweep.js';
import { expandGrid } from '../../src/study/sweep-grid.js';
import { isSweepJson, loadSweepSpec, parseSweepSpec } from '../../src/study/sweep-spec.js';
import { readRunJson } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase, tinyLinear } from '../helpers/study.js';

const grid = {
  'model.hidden': [[8], [16, 16]],
  optimizer: [
    { kind: 'sgd', lr: 0.1, momentum: 0.9 },
    { kind: 'adam', lr: 0.01 },
  ],
  seed: [0, 1],
};

const spec = (over: Record<string, unknown> = {}) => ({
  name: 'sweep-test',
  sweep: { base: { ...tinyBase, seed: 3 }, grid },
  embed: { method: 'inpca', components: 3, examples: 100 },
  ...over,
});

function specError(fn: () => unknown): SpecError {
  try {
    fn();
  } catch (e) {
    if (e instanceof SpecError) return e;
    throw e;
  }
  throw new Error('expected a SpecError');
}

describe('parseSweepSpec', () => {
  test('expands the cartesian product, first field slowest, with folder-safe names', () => {
    expect(expandGrid({ a: [1, 2], b: ['x', 'y', 'z'] })).toHaveLength(6);
    const sweep = parseSweepSpec(spec());
    expect(sweep.points).toHaveLength(8);
    expect(sweep.points.map((p) => p.name)).toEqual([
      '0-hidden8-sgd-0.1-0.9-seed0',
      '1-hidden8-sgd-0.1-0.9-seed1',
      '2-hidden8-adam-0.01-seed0',
      '3-hidden8-adam-0.01-seed1',
      '4-hidden16x16-sgd-0.1-0.9-seed0',
      '5-hidden16x16-sgd-0.1-0.9-seed1',
      '6-hidden16x16-adam-0.01-seed0',
      '7-hidden16x16-adam-0.01-seed1',
    ]);
    const p6 = sweep.points[6];
    expect(p6?.overrides).toEqual({ 'model.hidden': [16, 16], optimizer: grid.optimizer[1], seed: 0 });
    expect(p6?.spec.name).toBe(p6?.name);
    expect(p6?.spec.model).toMatchObject({ kind: 'mlp', hidden: [16, 16], activation: 'relu' });
    expect(p6?.spec.optimizer).toMatchObject({ kind: 'adam', lr: 0.01 });
    expect(p6?.spec.batchSize).toBe(tinyBase.batchSize);
    // Every run on the base's data (data seed = base seed 3); the seed sets init and batch order.
    for (const p of sweep.points) {
      expect(p.spec.dataSeed).toBe(3);
      expect(p.spec.orderSeed).toBe(p.spec.seed);
    }
    expect(sweep.points.map((p) => p.spec.seed)).toEqual([0, 1, 0, 1, 0, 1, 0, 1]);
    expect(sweep.embed).toEqual({ method: 'inpca', components: 3, examples: 100, groupBy: [] });
    expect(sweep.groups).toEqual([{ name: 'g0', values: {}, points: sweep.points.map((p) => p.name) }]);
    expect(isSweepJson(spec())).toBe(true);
    expect(isSweepJson({ name: 'study', base: tinyBase })).toBe(false);
  });

  test('a bad grid field is reported once, on one line naming it', () => {
    const e = specError(() =>
      parseSweepSpec(spec({ sweep: { base: tinyBase, grid: { 'modle.hidden': [[8], [16]] } } }), 'x.json'),
    );
    expect(e.problems).toHaveLength(1);
    expect(e.message.split('\n')).toHaveLength(1);
    expect(e.message).toMatch(/^x\.json: sweep\.grid\."modle\.hidden": unknown run spec field 'modle'/);

    const nested = specError(() =>
      parseSweepSpec(spec({ sweep: { base: tinyBase, grid: { 'optimizer.rate': [0.1, 0.2] } } })),
    );
    expect(nested.problems).toEqual([
      expect.stringMatching(/^sweep\.grid\."optimizer\.rate": unknown run spec field 'rate' in 'optimizer'/),
    ]);
    const data = specError(() =>
      parseSweepSpec(spec({ sweep: { base: tinyBase, grid: { dataSeed: [0, 1] } } })),
    );
    expect(data.problems).toEqual([
      expect.stringMatching(/^sweep\.grid\."dataSeed": cannot be swept with InPCA/),
    ]);
  });

  test('a value that makes a bad run spec names its grid point', () => {
    const e = specError(() =>
      parseSweepSpec(spec({ sweep: { base: tinyBase, grid: { 'optimizer.lr': [0.1, -1] } } })),
    );
    expect(e.problems).toEqual(['sweep: grid point 1-lr-1: optimizer.lr: must be > 0 (got -1)']);
  });

  test('the base may be a path relative to the sweep file', () => {
    const dir = scratchDir('twinscope-sweep-spec-');
    writeFileSync(join(dir, 'base.json'), JSON.stringify(tinyBase));
    writeFileSync(join(dir, 'sweep.json'), JSON.stringify(spec({ sweep: { base: 'base.json', grid } })));
    expect(loadSweepSpec(join(dir, 'sweep.json')).points).toHaveLength(8);
  });
});

describe('runSweep', () => {
  test('trains a 4-run sweep, embeds it with InPCA, and trains nothing the second time', async () => {
    const dir = scratchDir('twinscope-sweep-');
    const sweep = parseSweepSpec(
      spec({
        sweep: {
          base: tinyBase,
          grid: { optimizer: grid.optimizer, seed: [0, 1] },
        },
      }),
    );
    expect(sweep.points).toHaveLength(4);
    const jobs: string[] = [];
    let steps = 0;
    const first = await runSweep(
      sweep,
      dir,
      { onSteps: (n) => (steps += n), onJob: (id, outcome) => jobs.push(`${id} ${outcome}`) },
      { workers: 1 },
    );
    expect(first.failed).toEqual([]);
    expect(first.trained).toBe(4);
    expect(jobs).toHaveLength(4);
    expect(steps).toBe(4 * 5 * 9); // tinyBase: 9 steps per epoch, 5 epochs
    for (const d of first.runDirs) expect(readRunJson(d).status).toBe('complete');

    const json = JSON.parse(readFileSync(join(dir, 'embedding.json'), 'utf8'));
    expect(json.method).toBe('inpca');
    expect(json.runs).toHaveLength(4);
    const stress = json.explainedStress as number[];
    expect(stress).toHaveLength(3);
    for (const [k, s] of stress.entries()) {
      expect(s).toBeGreaterThan(0);
      expect(s).toBeLessThanOrEqual(1 + 1e-12);
      if (k > 0) expect(s).toBeGreaterThanOrEqual((stress[k - 1] as number) - 1e-12);
    }
    expect(json.signs).toEqual((json.eigenvalues as number[]).map((l) => Math.sign(l)));
    const sweepJson = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8'));
    expect(sweepJson.runs.map((r: { name: string }) => r.name)).toEqual(sweep.points.map((p) => p.name));
    expect(existsSync(join(dir, 'plots'))).toBe(false);

    let again = 0;
    const written = statSync(join(dir, 'embedding.json')).mtimeMs;
    const logs: string[] = [];
    const second = await runSweep(
      sweep,
      dir,
      { onSteps: (n) => (again += n), onLog: (m) => logs.push(m) },
      { workers: 1 },
    );
    expect(second.trained).toBe(0);
    expect(again).toBe(0);
    expect(second.embedding?.explainedStress).toEqual(stress);
    // Same runs and options: the embedding is read back, not recomputed.
    expect(statSync(join(dir, 'embedding.json')).mtimeMs).toBe(written);
    expect(logs.some((m) => m.startsWith('unchanged (4 runs)'))).toBe(true);

    // Other options: recomputed, and the pairs figure of the 3-axis embedding is gone.
    const two = parseSweepSpec(
      spec({
        sweep: { base: tinyBase, grid: { optimizer: grid.optimizer, seed: [0, 1] } },
        embed: { method: 'inpca', components: 2, examples: 100 },
      }),
    );
    const third = await runSweep(two, dir, {}, { workers: 1 });
    expect(third.embedding?.components).toBe(2);
    expect(existsSync(join(dir, 'plots', 'embedding-pairs.svg'))).toBe(false);
  }, 120_000);
});

/** Linear regression, full-batch GD: a grouped sweep over the input-spectrum decay. */
const linearSweep = (embed: Record<string, unknown> = {}, grid: Record<string, unknown[]> = {}) => ({
  name: 'linear-sweep',
  sweep: {
    base: tinyLinear,
    grid: { 'data.decay': [1, 3], seed: [0, 1, 2], ...grid },
  },
  embed: { method: 'inpca', components: 3, examples: 20, groupBy: ['data.decay'], ...embed },
});

describe('grouped sweeps (embed.groupBy)', () => {
  test('groups runs by the groupBy values; data fields need groupBy with InPCA', () => {
    const sweep = parseSweepSpec(linearSweep());
    expect(sweep.groups.map((g) => [g.name, g.values, g.points.length])).toEqual([
      ['g0-decay1', { 'data.decay': 1 }, 3],
      ['g1-decay3', { 'data.decay': 3 }, 3],
    ]);
    expect(sweep.groups[1]?.points).toEqual(['3-decay3-seed0', '4-decay3-seed1', '5-decay3-seed2']);
    const ungrouped = specError(() => parseSweepSpec(linearSweep({ groupBy: undefined })));
    expect(ungrouped.problems).toEqual([
      expect.stringMatching(
        /^sweep\.grid\."data\.decay": cannot be swept with InPCA unless listed in embed\.groupBy/,
      ),
    ]);
    const notGrid = specError(() => parseSweepSpec(linearSweep({ groupBy: ['data.decay', 'optimizer.lr'] })));
    expect(notGrid.problems).toEqual([
      "embed.groupBy[1]: 'optimizer.lr' is not a grid field (expected one of data.decay, seed)",
    ]);
    // PCA compares weights, not outputs: data may be swept without groups.
    expect(parseSweepSpec(linearSweep({ method: 'pca', groupBy: undefined })).groups).toHaveLength(1);
  });

  test('embeds each group on its own and summarises eigenvalues and width ratios', async () => {
    const dir = scratchDir('twinscope-sweep-groups-');
    const sweep = parseSweepSpec(linearSweep());
    const result = await runSweep(sweep, dir, {}, { workers: 1 });
    expect(result.failed).toEqual([]);
    expect(result.embedding).toBeUndefined();
    expect(result.groups.map((g) => g.group.name)).toEqual(['g0-decay1', 'g1-decay3']);
    const summary = JSON.parse(readFileSync(join(dir, 'groups.json'), 'utf8'));
    expect(summary.groupBy).toEqual(['data.decay']);
    for (const [i, g] of sweep.groups.entries()) {
      const dirs = g.points.map((name) => join(dir, 'runs', name));
      const direct = await embedRuns(dirs, { method: 'inpca', components: 3, examples: 20 });
      const written = JSON.parse(readFileSync(join(dir, 'groups', g.name, 'embedding.json'), 'utf8'));
      expect(written.eigenvalues).toEqual(direct.eigenvalues);
      expect(written.options.likelihood).toBe('gaussian');
      const s = summary.groups[i];
      expect(s.name).toBe(g.name);
      expect(s.runs).toEqual(g.points);
      expect(s.eigenvalues).toEqual(direct.eigenvalues);
      expect(s.explained).toEqual(direct.explainedStress);
      const [l1, l2, l3] = direct.eigenvalues.map(Math.abs) as [number, number, number];
      expect(s.widthRatios).toEqual([l2 / l1, l3 / l2]);
    }
    const table = tableFromIPC(readFileSync(join(dir, 'groups.arrow')));
    expect(table.schema.fields.map((f) => f.name)).toEqual([
      'group',
      'data.decay',
      'axis',
      'eigenvalue',
      'explained',
      'widthRatio',
    ]);
    expect(table.numRows).toBe(2 * 3);
    const row = table.get(4)?.toJSON();
    expect([row?.group, row?.['data.decay'], row?.axis]).toEqual(['g1-decay3', 3, 1]);
    expect(row?.widthRatio).toBe(summary.groups[1].widthRatios[1]);
    expect(table.get(5)?.toJSON().widthRatio).toBeNull();
    const report = await writeReport(dir);
    const names = report.plots.map((p) => p.name);
    expect(names).toContain('ribbon-widths');
    expect(names).toContain('ribbon-explained');
    expect(names).toContain('embedding-g0-decay1');
  }, 120_000);

  test('a swept dataSeed is kept, one group per data seed', () => {
    const grid = { dataSeed: [1, 2], seed: [0, 1] };
    const s2 = parseSweepSpec({
      ...linearSweep({ groupBy: ['dataSeed'] }),
      sweep: { base: tinyLinear, grid },
    });
    expect(s2.points.map((p) => p.spec.dataSeed)).toEqual([1, 1, 2, 2]);
    expect(s2.groups.map((g) => g.values)).toEqual([{ dataSeed: 1 }, { dataSeed: 2 }]);
    expect(s2.points.every((p) => p.spec.dataSeed === p.overrides.dataSeed)).toBe(true);
  });

  test('diverged runs are left out of the embeddings, not failures; the report marks them', async () => {
    const dir = scratchDir('twinscope-sweep-diverged-');
    const grid = { 'optimizer.lr': [0.3, 1e6], seed: [0, 1] };
    const sweep = parseSweepSpec({
      ...linearSweep({ groupBy: ['optimizer.lr'] }),
      sweep: { base: tinyLinear, grid },
    });
    const result = await runSweep(sweep, dir, {}, { workers: 1 });
    // The lr = 1e6 group's runs both diverged: no embedding, and no failure.
    expect(result.groups.map((g) => g.group.name)).toEqual(['g0-lr0.3']);
    expect(result.failed).toEqual([]);
    expect(result.diverged.map((d) => d.run)).toEqual(['2-lr1000000-seed0', '3-lr1000000-seed1']);
    expect(existsSync(join(dir, 'groups', 'g1-lr1000000'))).toBe(false);
    const status = JSON.parse(readFileSync(join(dir, 'status.json'), 'utf8'));
    expect(status.complete).toBe(true);
    expect(status.failed).toEqual([]);
    expect(status.diverged.map((d: { run: string }) => d.run)).toEqual([
      '2-lr1000000-seed0',
      '3-lr1000000-seed1',
    ]);
    const summary = JSON.parse(readFileSync(join(dir, 'groups.json'), 'utf8'));
    expect(summary.groups.map((g: { name: string }) => g.name)).toEqual(['g0-lr0.3']);
    const report = await writeReport(dir);
    expect(report.complete).toBe(true);
    expect(report.runs.map((r) => r.status)).toEqual(['complete', 'complete', 'diverged', 'diverged']);
    const html = readFileSync(report.html, 'utf8');
    expect(html).toContain('2 run(s) diverged');
    expect(html).toMatch(/<span class="badge">diverged at step \d+<\/span>/);
    expect(report.plots.map((p) => p.name)).toEqual([
      'ribbon-widths',
      'ribbon-explained',
      'embedding-g0-lr0.3',
    ]);
  }, 120_000);

  test('switching groupBy off removes the group outputs; the report shows the single embedding', async () => {
    const dir = scratchDir('twinscope-sweep-switch-');
    const grid = { 'optimizer.lr': [0.2, 0.3], seed: [0, 1] };
    const grouped = parseSweepSpec({
      ...linearSweep({ groupBy: ['optimizer.lr'] }),
      sweep: { base: tinyLinear, grid },
    });
    await runSweep(grouped, dir, {}, { workers: 1 });
    expect(existsSync(join(dir, 'groups.json'))).toBe(true);
    const report = await writeReport(dir);
    expect(report.complete).toBe(true);
    expect(readFileSync(report.html, 'utf8')).toContain('Sweep complete');
    expect(report.runs.map((r) => r.role)).toEqual([
      'lr=0.2 seed=0',
      'lr=0.2 seed=1',
      'lr=0.3 seed=0',
      'lr=0.3 seed=1',
    ]);

    const single = parseSweepSpec({
      ...linearSweep({ groupBy: undefined }),
      sweep: { base: tinyLinear, grid },
    });
    const again = await runSweep(single, dir, {}, { workers: 1 });
    expect(again.trained).toBe(0);
    for (const f of ['groups', 'groups.json', 'groups.arrow', 'plots/ribbon-widths.svg']) {
      expect(existsSync(join(dir, f)), f).toBe(false);
    }
    expect(existsSync(join(dir, 'embedding.json'))).toBe(true);
    expect((await writeReport(dir)).plots.map((p) => p.name)).toEqual(['embedding', 'embedding-pairs']);
  }, 120_000);
});
