import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { EXIT_FAILURE, EXIT_OK } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { writeMeasurement } from '../../src/results/measurement-files.js';
import { METRICS } from '../../src/results/metrics.js';
import { type ResultRow, readResults } from '../../src/results/rows.js';
import { readCheckpoints, readMetrics } from '../../src/store/index.js';
import { readAlignment } from '../../src/study/aligned.js';
import { runStudy, type StudyResult } from '../../src/study/run-study.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { verifyDir } from '../../src/study/verify-dir.js';
import { verifyRun } from '../../src/train/inspect.js';
import { readRunJson } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, tinyBase } from '../helpers/study.js';

const tinyStudy = {
  name: 'tiny',
  base: tinyBase,
  perturbations: [
    { kind: 'gaussian', sigmas: [0, 1e-4, 1e-1], forkSteps: [0, 20], repeats: 1 },
    { kind: 'seed', forkSteps: [0], repeats: 1 },
    { kind: 'init', repeats: 1 },
  ],
  measure: {
    distance: {},
    barrier: {},
    align: { methods: ['weight', 'activation'], exportAligned: true },
    cka: {},
    lyapunov: { window: 3 },
  },
  onset: { kind: 'gaussian', sigmas: [1e-1] },
  lockstep: false,
};

const root = scratchDir('twinscope-study-');
const spec = parseStudySpec(tinyStudy);
const dir = join(root, 'one');
let result: StudyResult;

/** Rows in a canonical order (for comparing two studies). */
function sortRows(rows: readonly ResultRow[]): ResultRow[] {
  const key = (r: ResultRow) =>
    JSON.stringify([r.runB ?? '', r.metric, r.step, r.layer ?? '', r.split ?? '', JSON.stringify(r.options)]);
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

const l2Rows = (rows: readonly ResultRow[], runB: string) =>
  rows
    .filter((r) => r.runB === runB && r.metric === METRICS.l2 && r.layer === null)
    .sort((a, b) => a.step - b.step);

beforeAll(async () => {
  result = await runStudy(spec, dir, {}, { workers: 1 });
}, 120_000);

describe('runStudy (tiny study, one process)', () => {
  test('plans 45 steps and finishes every job', () => {
    expect(result.plan.totalSteps).toBe(45);
    expect(result.plan.checkpoints).toEqual([0, 10, 20, 30, 40, 45]);
    expect(result.failed).toEqual([]);
    expect(result.blocked).toEqual([]);
    // Figures are the report's: the runner writes data only.
    expect(existsSync(join(dir, 'plots'))).toBe(false);
    expect(existsSync(join(dir, 'study.json'))).toBe(true);
  });

  test('σ = 0 twins: L2 exactly 0 at every measured step; control passes', () => {
    expect(result.controlFailures).toEqual([]);
    for (const t of [0, 20]) {
      const rows = l2Rows(result.rows, `s0/t${t}/gaussian-0-r0`);
      expect(rows.map((r) => r.step)).toEqual([0, 10, 20, 30, 40, 45].filter((s) => s >= t));
      for (const r of rows) expect(r.value).toBe(0);
      // Per-tensor L2 and cosine agree.
      for (const r of result.rows.filter(
        (x) => x.runB === `s0/t${t}/gaussian-0-r0` && x.metric === METRICS.l2,
      )) {
        expect(r.value).toBe(0);
      }
    }
  });

  test('L2 at the last step grows with σ (t = 0)', () => {
    const last = (name: string) => l2Rows(result.rows, name).at(-1) as ResultRow;
    const small = last('s0/t0/gaussian-1e-4-r0');
    const big = last('s0/t0/gaussian-1e-1-r0');
    expect(small.step).toBe(45);
    expect(big.step).toBe(45);
    expect(small.value).toBeGreaterThan(0);
    expect(big.value).toBeGreaterThan(small.value);
    // At the fork step itself the distance is ‖ε‖, which scales with σ (1e-1 / 1e-4 = 1000).
    const at0 = (name: string) => (l2Rows(result.rows, name)[0] as ResultRow).value;
    expect(at0('s0/t0/gaussian-1e-1-r0') / at0('s0/t0/gaussian-1e-4-r0')).toBeCloseTo(1000, 0);
  });

  test('amplification = L2 / ‖ε‖ from the twin lineage', () => {
    const amp = result.rows.filter((r) => r.metric === METRICS.amplification);
    const names = [...new Set(amp.map((r) => r.runB))].sort();
    // Weight twins with σ > 0 only (no rows for σ = 0, seed or init twins).
    expect(names).toEqual([
      's0/t0/gaussian-1e-1-r0',
      's0/t0/gaussian-1e-4-r0',
      's0/t20/gaussian-1e-1-r0',
      's0/t20/gaussian-1e-4-r0',
    ]);
    for (const name of names) {
      const norm = (readRunJson(join(dir, 'runs', name as string)).lineage.perturbation as { norm: number })
        .norm;
      expect(norm).toBeGreaterThan(0);
      const l2 = l2Rows(result.rows, name as string);
      const rows = amp.filter((r) => r.runB === name).sort((a, b) => a.step - b.step);
      expect(rows.map((r) => r.step)).toEqual(l2.map((r) => r.step));
      rows.forEach((r, i) => {
        expect(r.options.epsNorm).toBe(norm);
        expect(r.value).toBe((l2[i] as ResultRow).value / norm);
      });
      // At the fork step B is exactly ε away from A (up to float32 rounding of θ + ε).
      expect((rows[0] as ResultRow).value).toBeCloseTo(1, 3);
    }
  });

  test('results.arrow holds every row', () => {
    const back = sortRows(readResults(join(dir, 'results.arrow')));
    const rows = sortRows(result.rows);
    expect(back).toHaveLength(rows.length);
    const strip = (r: ResultRow) => ({ ...r, options: undefined });
    expect(back.map(strip)).toEqual(rows.map(strip));
    const counts = (rs: ResultRow[]) =>
      rs.reduce((m, r) => m.set(r.metric, (m.get(r.metric) ?? 0) + 1), new Map());
    expect(counts(back)).toEqual(counts(rows));
  });

  test('results.arrow keeps the options of every row as returned', () => {
    // Fails: a two-point Lyapunov fit has stderr NaN in memory, and JSON turns it into null.
    const back = sortRows(readResults(join(dir, 'results.arrow')));
    expect(back.map((r) => r.options)).toEqual(sortRows(result.rows).map((r) => r.options));
  });

  test('a second run trains nothing, skips every job and gives the same rows', async () => {
    const rounds: { label: string; runSteps: number; jobs: number }[] = [];
    const outcomes = new Map<string, string>();
    let steps = 0;
    const again = await runStudy(
      spec,
      dir,
      {
        onRound: (r) => rounds.push(r),
        onJob: (id, outcome) => outcomes.set(id, outcome),
        onSteps: (n) => {
          steps += n;
        },
      },
      { workers: 1 },
    );
    expect(rounds.length).toBeGreaterThan(0);
    for (const r of rounds) expect(r.runSteps).toBe(0);
    expect(steps).toBe(0);
    expect(outcomes.size).toBeGreaterThan(0);
    expect([...new Set(outcomes.values())]).toEqual(['skipped']);
    expect(sortRows(again.rows)).toEqual(sortRows(result.rows));
  });

  test('alignments are stored as permutations; a materialized one is B permuted, at the aligned L2 from A', async () => {
    for (const twin of result.plan.twins) {
      for (const method of ['weight', 'activation']) {
        const a = readAlignment(join(dir, 'aligned', twin.runB, `${method}.json`));
        expect(a.sourceDir).toBe(join(dir, 'runs', twin.runB));
        expect(a.referenceDir).toBe(join(dir, 'runs', twin.runA));
        expect(a.method).toBe(method);
        expect(a.step).toBe(45);
        expect(a.perms.map((p) => p.length)).toEqual([16, 16]);
      }
    }
    const init = 's0/init-r0';
    const l2 = (l2Rows(result.rows, init).at(-1) as ResultRow).value;
    const aligned = result.rows.filter(
      (r) => r.runB === init && r.metric === METRICS.alignedL2 && r.options.method === 'weight',
    );
    expect(aligned).toHaveLength(1);
    expect(aligned[0]?.step).toBe(45);
    expect(aligned[0]?.value).toBeLessThanOrEqual(l2);
    expect(aligned[0]?.value).toBeGreaterThan(0);
    // Materialized, the alignment is a valid run whose last checkpoint is B permuted: its distance
    // to A is the aligned L2, and its metrics are B's.
    const out = scratchDir('twinscope-materialized-');
    const io = capture();
    const file = join(dir, 'aligned', init, 'weight.json');
    expect(await main(['node', 'twinscope', 'materialize', file, '--out', out], io)).toBe(EXIT_OK);
    expect(io.out).toMatch(/aligned by weight, \d+ checkpoints/);
    const v = verifyRun(out);
    expect(v.problems).toEqual([]);
    const a = readCheckpoints(join(dir, 'runs', 's0/parent')).at(-1)?.params as Float32Array;
    const b = readCheckpoints(out).at(-1)?.params as Float32Array;
    let s = 0;
    for (let i = 0; i < a.length; i++) s += ((a[i] as number) - (b[i] as number)) ** 2;
    expect(Math.sqrt(s)).toBeCloseTo(aligned[0]?.value as number, 4);
    expect(readMetrics(out)).toEqual(readMetrics(join(dir, 'runs', init)));
    // verify checks every alignment file; a changed one is named.
    const count = result.plan.twins.length * 2;
    expect(verifyDir(dir).summary).toContain(`, ${count} alignments,`);
    const copy = scratchDir('twinscope-aligned-copy-');
    cpSync(dir, copy, { recursive: true });
    const changed = join(copy, 'aligned', init, 'weight.json');
    writeFileSync(changed, readFileSync(changed, 'utf8').replace('"step": 45', '"step": 44'));
    expect(verifyDir(copy).problems).toEqual([
      expect.stringMatching(/^aligned\/s0\/init-r0\/weight\.json: content does not match its checksum/),
    ]);
  });

  test('Lyapunov rows for σ > 0 twins, one over all steps', () => {
    const rows = result.rows.filter((r) => r.metric === METRICS.lyapunov);
    const all = rows.filter((r) => r.options.window === 'all');
    const names = new Set(all.map((r) => r.runB));
    for (const t of [0, 20]) {
      for (const s of ['1e-4', '1e-1']) expect(names.has(`s0/t${t}/gaussian-${s}-r0`)).toBe(true);
      expect(names.has(`s0/t${t}/gaussian-0-r0`)).toBe(false);
    }
    for (const r of all) {
      expect(Number.isFinite(r.value)).toBe(true);
      expect(r.step).toBe(45);
      expect(r.options.toStep).toBe(45);
    }
    // Window fits too.
    expect(rows.some((r) => r.options.window === 3)).toBe(true);
  });

  test('the stability onset row records the evaluated fork steps', () => {
    const onset = result.rows.filter((r) => r.metric === METRICS.stabilityOnset);
    expect(onset).toHaveLength(1);
    const row = onset[0] as ResultRow;
    expect(row.runA).toBe('s0/parent');
    expect(row.runB).toBeNull();
    expect(row.options).toMatchObject({ kind: 'gaussian', sigma: 0.1, threshold: 0.02, repeats: 1 });
    const evaluated = row.options.evaluated as [number, number][];
    expect(evaluated.length).toBeGreaterThan(0);
    for (const [t, barrier] of evaluated) {
      expect([0, 10, 20, 30, 40]).toContain(t);
      expect(Number.isFinite(barrier)).toBe(true);
    }
    if (row.options.found) {
      expect(evaluated.map(([t]) => t)).toContain(row.value);
      const at = new Map(evaluated);
      expect(at.get(row.value) as number).toBeLessThan(0.02);
    } else {
      expect(row.value).toBeNaN();
      expect(row.step).toBe(45);
    }
  });

  test('a σ = 0 twin that differs fails the control loudly (library and CLI exit 1)', async () => {
    const tampered = join(root, 'tampered');
    cpSync(dir, tampered, { recursive: true });
    const twin = 's0/t20/gaussian-0-r0';
    const measurements = join(tampered, 'measurements');
    const file = readdirSync(measurements)
      .filter((f) => f.endsWith('.arrow'))
      .map((f) => join(measurements, f))
      .find((f) => readResults(f).some((r) => r.runB === twin)) as string;
    const rows = readResults(file);
    const last = Math.max(...rows.map((r) => r.step));
    writeMeasurement(
      file,
      rows.map((r) =>
        r.metric === METRICS.l2 && r.layer === null && r.step === last ? { ...r, value: 1e-7 } : r,
      ),
      { runA: rows[0]?.runA as string, runB: twin },
    );
    const r = await runStudy(spec, tampered, {}, { workers: 1 });
    expect(r.controlFailures).toEqual([`${twin}: L2 = 1e-7 at step ${last}`]);
    expect(JSON.parse(readFileSync(join(tampered, 'status.json'), 'utf8'))).toMatchObject({
      complete: false,
      controlFailures: r.controlFailures,
    });
    const specFile = join(root, 'tiny.json');
    writeFileSync(specFile, JSON.stringify(tinyStudy));
    const io = capture();
    const code = await main(
      [
        'node',
        'twinscope',
        'run',
        specFile,
        '--out',
        tampered,
        '--workers',
        '1',
        '--no-progress',
        '--no-report',
      ],
      io,
    );
    expect(code).toBe(EXIT_FAILURE);
    expect(io.err).toMatch(/σ = 0 control failed: 1 twin\(s\)/);
  }, 60_000);

  test('two worker processes give bit-identical rows', async () => {
    await buildDist();
    const other = await runStudy(spec, join(root, 'two'), {}, { workers: 2 });
    expect(other.failed).toEqual([]);
    expect(other.controlFailures).toEqual([]);
    expect(sortRows(other.rows)).toEqual(sortRows(result.rows));
  }, 120_000);
});

describe('lock-step twins', () => {
  test('σ = 0 twin is exact; twins agree with separately trained ones', async () => {
    const study = parseStudySpec({
      ...tinyStudy,
      perturbations: [{ kind: 'gaussian', sigmas: [0, 1e-4, 1e-1], forkSteps: [20] }],
      measure: { distance: {} },
      onset: undefined,
      lockstep: true,
    });
    const lock = join(root, 'lockstep');
    const r = await runStudy(study, lock, {}, { workers: 1 });
    expect(r.failed).toEqual([]);
    expect(readRunJson(join(lock, 'runs', 's0/t20/gaussian-1e-4-r0')).lineage).toMatchObject({
      lockstep: true,
    });
    expect(r.controlFailures).toEqual([]);
    const zero = l2Rows(r.rows, 's0/t20/gaussian-0-r0');
    expect(zero.map((x) => x.step)).toEqual([20, 30, 40, 45]);
    for (const x of zero) expect(x.value).toBe(0);
    // The same runs, trained one at a time by the lockstep: false study above.
    for (const name of [
      's0/t20/a',
      's0/t20/gaussian-0-r0',
      's0/t20/gaussian-1e-4-r0',
      's0/t20/gaussian-1e-1-r0',
    ]) {
      const sep = readCheckpoints(join(dir, 'runs', name));
      const ls = readCheckpoints(join(lock, 'runs', name));
      expect(ls.map((c) => c.step)).toEqual(sep.map((c) => c.step));
      ls.forEach((c, i) => {
        const p = (sep[i] as (typeof sep)[number]).params;
        let d = 0;
        let n = 0;
        for (let j = 0; j < p.length; j++) {
          d += ((c.params[j] as number) - (p[j] as number)) ** 2;
          n += (p[j] as number) ** 2;
        }
        expect(Math.sqrt(d / n)).toBeLessThanOrEqual(1e-4);
      });
    }
  }, 120_000);
});
