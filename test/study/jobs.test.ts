/**
 * The study jobs (src/study/jobs.ts) on a tiny study: each kind executed on its own does what a
 * direct call does (train = trainRun bit for bit, a σ = 0 fork = the parent from the fork step on, a
 * measurement = l2Distance of the two runs' checkpoints), and runStudyJobs gives the same bytes in
 * worker processes as in this one.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import type { PoolJob } from '../../src/exec/pool.js';
import { l2Distance } from '../../src/measure/distance.js';
import { METRICS } from '../../src/results/metrics.js';
import { type ResultRow, readResults } from '../../src/results/rows.js';
import { type Checkpoint, readCheckpoints } from '../../src/store/index.js';
import {
  executeJob,
  type ForkJob,
  type MeasureJob,
  runStudyJobs,
  type StudyJob,
} from '../../src/study/jobs.js';
import { planStudy } from '../../src/study/plan.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { studyJobs } from '../../src/study/study-jobs.js';
import type { WeightPerturbation } from '../../src/train/fork.js';
import { verifyRun } from '../../src/train/inspect.js';
import { readRunJson, trainRun } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, ROOT, tinyBase } from '../helpers/study.js';

// Record the worker processes the pool forks (the real fork runs them).
vi.mock('node:child_process', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:child_process')>();
  const spy = vi.fn(actual.fork);
  return { ...actual, fork: spy, default: { ...actual, fork: spy } };
});
const forkSpy = vi.mocked(fork);

const study = parseStudySpec({
  name: 'jobs',
  base: tinyBase,
  perturbations: [{ kind: 'gaussian', sigmas: [0, 1e-2], forkSteps: [20], repeats: 1 }],
  measure: { distance: {} },
  lockstep: false,
});
const plan = planStudy(study, loadDataset(study.base.data, study.base.dataSeed).train.n);
const root = scratchDir('twinscope-jobs-');
const dir = join(root, 'study');
const runDir = (name: string) => join(dir, 'runs', name);
const { jobs } = studyJobs(study, plan, dir);

function poolJob(id: string): PoolJob<StudyJob> {
  const j = jobs.find((x) => x.id === id);
  if (!j) throw new Error(`no job ${id} (have ${jobs.map((x) => x.id).join(', ')})`);
  return j;
}

/** Execute a job of the study once (tests share runs); resolves to the run-steps it reported. */
const executed = new Map<string, Promise<number>>();
function execute(id: string): Promise<number> {
  let p = executed.get(id);
  if (!p) {
    let steps = 0;
    p = executeJob(poolJob(id).job, (n) => {
      steps += n;
    }).then(() => steps);
    executed.set(id, p);
  }
  return p;
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
/**
 * Whether two checkpoints hold the same step, parameters and optimizer state, bit for bit (with
 * `slots: false`, the optimizer slots are not compared: a twin drops them when it finishes).
 */
function sameCheckpoint(a: Checkpoint, b: Checkpoint, { slots = true } = {}): boolean {
  return (
    a.step === b.step &&
    a.opt.step === b.opt.step &&
    bytes(a.params).equals(bytes(b.params)) &&
    (!slots ||
      (a.opt.slots.length === b.opt.slots.length &&
        a.opt.slots.every((s, i) => bytes(s).equals(bytes(b.opt.slots[i] as Float32Array)))))
  );
}
const byStep = (d: string) => new Map(readCheckpoints(d).map((c) => [c.step, c]));

const PARENT = 's0/parent';
const REFERENCE = 's0/t20/a';
const SIGMA0 = 's0/t20/gaussian-0-r0';
const TWIN = 's0/t20/gaussian-1e-2-r0';

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('executeJob', () => {
  test('the plan: 45 steps, checkpoints every 10 and at the fork step 20', () => {
    expect(plan.totalSteps).toBe(45);
    expect(plan.checkpoints).toEqual([0, 10, 20, 30, 40, 45]);
  });

  test('a train job writes a complete run whose checkpoints equal a direct trainRun bit for bit', async () => {
    const job = poolJob(`train:${PARENT}`);
    expect(job.job).toMatchObject({ kind: 'train', dir: runDir(PARENT) });
    expect(job.done?.()).toBe(false);
    expect(await execute(`train:${PARENT}`)).toBe(45);
    const run = readRunJson(runDir(PARENT));
    expect(run.status).toBe('complete');
    expect(run.checkpointSteps).toEqual([0, 10, 20, 30, 40, 45]);
    expect(verifyRun(runDir(PARENT)).ok).toBe(true);
    expect(job.done?.()).toBe(true);

    const direct = join(root, 'direct');
    await trainRun((job.job as Extract<StudyJob, { kind: 'train' }>).spec, direct);
    const a = readCheckpoints(runDir(PARENT));
    const b = readCheckpoints(direct);
    expect(a.map((c) => c.step)).toEqual([0, 10, 20, 30, 40, 45]);
    expect(b.map((c) => c.step)).toEqual([0, 10, 20, 30, 40, 45]);
    a.forEach((c, i) => {
      expect(sameCheckpoint(c, b[i] as Checkpoint), `step ${c.step}`).toBe(true);
    });
    // The final checkpoint is trained (differs from the init) and is the same in both.
    const last = a.at(-1) as Checkpoint;
    expect(last.step).toBe(45);
    expect(bytes(last.params).equals(bytes((a[0] as Checkpoint).params))).toBe(false);
  });

  test('fork jobs with σ = 0 and with no perturbation: twins equal to the parent from the fork step on', async () => {
    await execute(`train:${PARENT}`);
    const parent = byStep(runDir(PARENT));
    for (const [name, perturbation] of [
      [SIGMA0, { kind: 'gaussian', sigma: 0 }],
      [REFERENCE, undefined],
    ] as const) {
      const job = poolJob(`fork:${name}`).job as ForkJob;
      expect(job).toMatchObject({ kind: 'fork', parentDir: runDir(PARENT), forkStep: 20, lockstep: false });
      expect(job.members).toHaveLength(1);
      expect(job.members[0]?.perturbation).toEqual(
        perturbation && { ...perturbation, seed: expect.any(Number) },
      );
      expect(await execute(`fork:${name}`)).toBe(25);
      const run = readRunJson(runDir(name));
      expect(run.status).toBe('complete');
      expect(run.lineage.forkStep).toBe(20);
      if (perturbation) expect((run.lineage.perturbation as { norm: number }).norm).toBe(0);
      else expect(run.lineage.perturbation).toBeUndefined();
      const twin = readCheckpoints(runDir(name));
      expect(twin.map((c) => c.step)).toEqual([20, 30, 40, 45]);
      for (const c of twin) {
        const same = sameCheckpoint(c, parent.get(c.step) as Checkpoint, { slots: false });
        expect(same, `${name} step ${c.step}`).toBe(true);
        // The parent keeps its momentum (forks read it); the finished twin does not.
        expect(parent.get(c.step)?.opt.slots).toHaveLength(1);
        expect(c.opt.slots).toHaveLength(0);
      }
    }
  });

  test('a lock-step fork job trains its members in one graph: σ = 0 member = reference member', async () => {
    await execute(`train:${PARENT}`);
    const sigma0 = (poolJob(`fork:${SIGMA0}`).job as ForkJob).members[0]?.perturbation as WeightPerturbation;
    const out = join(root, 'lockstep');
    let steps = 0;
    await executeJob(
      {
        kind: 'fork',
        parentDir: runDir(PARENT),
        forkStep: 20,
        lockstep: true,
        members: [{ dir: join(out, 'a') }, { dir: join(out, 'g0'), perturbation: sigma0 }],
      },
      (n) => {
        steps += n;
      },
    );
    expect(steps).toBe(50);
    for (const m of ['a', 'g0']) {
      const run = readRunJson(join(out, m));
      expect(run.status).toBe('complete');
      expect(run.lineage).toMatchObject({ forkStep: 20, lockstep: true });
    }
    const a = readCheckpoints(join(out, 'a'));
    const g0 = readCheckpoints(join(out, 'g0'));
    expect(a.map((c) => c.step)).toEqual([20, 30, 40, 45]);
    a.forEach((c, i) => {
      expect(sameCheckpoint(c, g0[i] as Checkpoint), `step ${c.step}`).toBe(true);
    });
    // The batched graph may round differently from the parent's, but starts from its checkpoint.
    const parent = byStep(runDir(PARENT));
    expect(sameCheckpoint(a[0] as Checkpoint, parent.get(20) as Checkpoint, { slots: false })).toBe(true);
    for (const c of a) {
      const p = parent.get(c.step)?.params as Float32Array;
      expect(l2Distance(c.params, p), `step ${c.step}`).toBeLessThan(1e-4);
    }
  });

  test('a measure job writes results whose L2 rows equal l2Distance of the two runs’ checkpoints', async () => {
    await execute(`fork:${REFERENCE}`);
    await execute(`fork:${TWIN}`);
    const pj = poolJob(`measure:${TWIN}`);
    const job = pj.job as MeasureJob;
    expect(job).toMatchObject({ kind: 'measure', root: join(dir, 'runs'), study: 'jobs' });
    expect(job.twin).toMatchObject({ runA: REFERENCE, runB: TWIN, forkStep: 20, sigma: 1e-2 });
    expect(pj.done?.()).toBe(false);
    await execute(`measure:${TWIN}`);
    expect(existsSync(job.out)).toBe(true);
    expect(pj.done?.()).toBe(true);

    const rows = readResults(job.out)
      .filter((r) => r.metric === METRICS.l2 && r.layer === null)
      .sort((x, y) => x.step - y.step);
    expect(rows.map((r) => r.step)).toEqual([20, 30, 40, 45]);
    const a = byStep(runDir(REFERENCE));
    const b = byStep(runDir(TWIN));
    for (const r of rows) {
      expect(r).toMatchObject({ study: 'jobs', runA: REFERENCE, runB: TWIN, split: null });
      const pa = a.get(r.step)?.params as Float32Array;
      const pb = b.get(r.step)?.params as Float32Array;
      expect(r.value, `step ${r.step}`).toBe(l2Distance(pa, pb));
      // And by hand, in float64.
      let s = 0;
      for (let i = 0; i < pa.length; i++) s += ((pa[i] as number) - (pb[i] as number)) ** 2;
      expect(Math.abs(r.value - Math.sqrt(s))).toBeLessThanOrEqual(1e-12 * Math.sqrt(s));
      expect(r.value).toBeGreaterThan(0);
    }
    // At the fork step the twins are ‖ε‖ apart (up to float32 rounding of θ + ε).
    const norm = (readRunJson(runDir(TWIN)).lineage.perturbation as { norm: number }).norm;
    expect((rows[0] as ResultRow).value / norm).toBeCloseTo(1, 3);
  });
});

describe('runStudyJobs', () => {
  const perturbation: WeightPerturbation = { kind: 'gaussian', sigma: 1e-2, seed: 7 };
  const spec = (poolJob(`train:${PARENT}`).job as Extract<StudyJob, { kind: 'train' }>).spec;
  /** A parent and one twin forked from it at step 20, under `d`. */
  const pair = (d: string): PoolJob<StudyJob>[] => [
    { id: 'train', deps: [], job: { kind: 'train', dir: join(d, 'parent'), spec } },
    {
      id: 'fork',
      deps: ['train'],
      job: {
        kind: 'fork',
        parentDir: join(d, 'parent'),
        forkStep: 20,
        lockstep: false,
        members: [{ dir: join(d, 'twin'), perturbation }],
      },
    },
  ];
  const runPair = async (workers: number) => {
    const d = join(root, `workers-${workers}`);
    let steps = 0;
    const outcomes: [string, string][] = [];
    forkSpy.mockClear();
    const result = await runStudyJobs(pair(d), {
      workers,
      onSteps: (n) => {
        steps += n;
      },
      onFinished: (job, outcome) => outcomes.push([job.id, outcome]),
    });
    const children = forkSpy.mock.results.map((r) => r.value as ChildProcess);
    const scripts = forkSpy.mock.calls.map((c) => c[0]);
    // Wait for the workers to exit (they do once the pool disconnects them).
    const codes = await Promise.all(
      children.map(
        (c) =>
          new Promise<number | null>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) resolve(c.exitCode);
            else c.once('exit', (code) => resolve(code));
          }),
      ),
    );
    return { d, result, steps, outcomes, scripts, codes };
  };

  beforeAll(buildDist, 180_000);

  test('workers = 2 runs the jobs in study worker processes and writes the same checkpoint bytes as workers = 1', async () => {
    const one = await runPair(1);
    const two = await runPair(2);
    for (const r of [one, two]) {
      expect(r.result).toEqual({ failed: [], blocked: [] });
      expect(r.outcomes).toEqual([
        ['train', 'done'],
        ['fork', 'done'],
      ]);
      expect(r.steps).toBe(45 + 25);
    }
    expect(one.scripts).toEqual([]);
    const worker = join(ROOT, 'dist', 'study', 'worker.js');
    expect(two.scripts).toEqual([worker, worker]);
    expect(two.codes).toEqual([0, 0]);

    for (const run of ['parent', 'twin']) {
      const a = readFileSync(join(one.d, run, 'checkpoints.arrow'));
      const b = readFileSync(join(two.d, run, 'checkpoints.arrow'));
      expect(a.length).toBeGreaterThan(0);
      expect(b.equals(a), run).toBe(true);
    }
    expect(readCheckpoints(join(two.d, 'twin')).map((c) => c.step)).toEqual([20, 30, 40, 45]);
    // The twin is perturbed: it is not a copy of the parent.
    const p = byStep(join(two.d, 'parent')).get(45)?.params as Float32Array;
    const t = byStep(join(two.d, 'twin')).get(45)?.params as Float32Array;
    expect(l2Distance(p, t)).toBeGreaterThan(0);
  });
});
