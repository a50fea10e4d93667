/**
 * The local pool (src/exec/pool.ts): a worker process killed mid-job fails that job only (its
 * dependents are blocked, never started; the rest completes on a respawned worker), the in-process
 * pool gives the same split, finished jobs are skipped, and an unknown dependency is an error.
 * Worker processes run test/exec/fixtures/kill-worker.mjs on the compiled worker loop in dist/.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type PoolJob, type PoolResult, runPool } from '../../src/exec/pool.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist } from '../helpers/study.js';

/** Jobs of kill-worker.mjs (and of the in-process executor below); `name` is for the in-process log. */
type DieJob = { kind: 'die'; steps: number; ack: string };
type OkJob = { kind: 'ok'; ms: number; waitFor?: string };
type FailJob = { kind: 'fail'; message: string };
type TestJob = { name: string; pidFile?: string } & (DieJob | OkJob | FailJob);

type Outcome = [id: string, outcome: 'done' | 'skipped' | 'failed', message: string | undefined];

const FIXTURE = join(import.meta.dirname, 'fixtures', 'kill-worker.mjs');
const root = scratchDir('twinscope-pool-');
let cases = 0;

/** A fresh folder for one test's pid and handshake files. */
function caseDir(): string {
  const dir = join(root, `case-${cases++}`);
  mkdirSync(dir);
  return dir;
}

const pidOf = (dir: string, id: string) => Number(readFileSync(join(dir, `${id}.pid`), 'utf8'));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Wait (up to 5 s) until none of `pids` is a live process; returns those still alive. */
async function waitGone(pids: number[]): Promise<number[]> {
  for (let waited = 0; waited < 5000 && pids.some(alive); waited += 20) {
    await new Promise((r) => setTimeout(r, 20));
  }
  return pids.filter(alive);
}

/**
 * The graph under test: A (`a`), B ← A, C, D ← C, E ← B, and two more independent jobs F and G, so
 * that more jobs than workers are left when A goes down. C finishes only once the coordinator has
 * recorded A's failure (the file `A.failed`, written by onFinished), so that the job the pool hands
 * out right after A's death (F) can only go to a respawned worker.
 */
function graph(dir: string, a: DieJob | FailJob): PoolJob<TestJob>[] {
  const pidFile = (id: string) => join(dir, `${id}.pid`);
  const ok = (id: string, extra: { waitFor?: string } = {}): TestJob => ({
    kind: 'ok',
    name: id,
    ms: 20,
    pidFile: pidFile(id),
    ...extra,
  });
  return [
    { id: 'A', deps: [], job: { ...a, name: 'A', pidFile: pidFile('A') } },
    { id: 'B', deps: ['A'], job: ok('B') },
    { id: 'C', deps: [], job: ok('C', { waitFor: join(dir, 'A.failed') }) },
    { id: 'D', deps: ['C'], job: ok('D') },
    { id: 'E', deps: ['B'], job: ok('E') },
    { id: 'F', deps: [], job: ok('F') },
    { id: 'G', deps: [], job: ok('G') },
  ];
}

/** The executor of the in-process pool (workers = 1): what kill-worker.mjs does, a throw for a kill. */
function inProcess(log: string[]) {
  return async (job: TestJob, onSteps: (n: number) => void) => {
    log.push(job.name);
    if (job.pidFile) writeFileSync(job.pidFile, String(process.pid));
    if (job.kind === 'die') {
      onSteps(job.steps);
      throw new Error(`${job.name} died`);
    }
    if (job.kind === 'fail') throw new Error(job.message);
    await new Promise((r) => setTimeout(r, job.ms));
    onSteps(1);
  };
}

/** Run the pool, recording steps and outcomes; A's failure and 7 reported steps leave handshake files. */
async function run(dir: string, jobs: PoolJob<TestJob>[], workers: number, log: string[] = []) {
  const steps: number[] = [];
  const outcomes: Outcome[] = [];
  let scripts = 0;
  const result: PoolResult = await runPool(jobs, {
    workers,
    execute: inProcess(log),
    workerScript: () => {
      scripts++;
      return FIXTURE;
    },
    onSteps: (n) => {
      steps.push(n);
      if (n === 7) writeFileSync(join(dir, 'A.ack'), '');
    },
    onFinished: (job, outcome, message) => {
      outcomes.push([job.id, outcome, message]);
      if (outcome === 'failed') writeFileSync(join(dir, `${job.id}.failed`), '');
    },
  });
  const byId = [...outcomes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return { result, steps: [...steps].sort((a, b) => a - b), outcomes, byId, scripts };
}

/** The split every run of {@link graph} must give (only A's message differs). */
function expectSplit(r: Awaited<ReturnType<typeof run>>, dir: string, aMessage: string): void {
  expect(r.result).toEqual({ failed: [{ id: 'A', message: aMessage }], blocked: ['B', 'E'] });
  // One outcome per job that ran, none for the blocked ones.
  expect(r.byId).toEqual([
    ['A', 'failed', aMessage],
    ['C', 'done', undefined],
    ['D', 'done', undefined],
    ['F', 'done', undefined],
    ['G', 'done', undefined],
  ]);
  // B and E never started (the executor writes its pid file first thing).
  for (const id of ['A', 'C', 'D', 'F', 'G']) expect(existsSync(join(dir, `${id}.pid`)), id).toBe(true);
  for (const id of ['B', 'E']) expect(existsSync(join(dir, `${id}.pid`)), id).toBe(false);
}

beforeAll(buildDist, 180_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('runPool with worker processes', () => {
  test('a worker SIGKILLed mid-job: that job fails naming the signal, its dependents are blocked, the rest completes on a respawned worker', async () => {
    const dir = caseDir();
    const r = await run(dir, graph(dir, { kind: 'die', steps: 7, ack: join(dir, 'A.ack') }), 2);
    expectSplit(r, dir, 'worker process exited (SIGKILL) while running it');
    expect(r.scripts).toBe(1);
    // A's steps were counted before the kill; C, D, F and G reported one each.
    expect(r.steps).toEqual([1, 1, 1, 1, 7]);
    // A failed before C finished (C waited for it), and D ran after C.
    const order = r.outcomes.map(([id]) => id);
    expect(order[0]).toBe('A');
    expect(order.indexOf('D')).toBeGreaterThan(order.indexOf('C'));

    const pid = Object.fromEntries(['A', 'C', 'D', 'F', 'G'].map((id) => [id, pidOf(dir, id)]));
    expect(pid.A).not.toBe(process.pid);
    expect(pid.C).not.toBe(pid.A);
    // F was handed out when A died, while C's worker was busy: a third process, the respawned one.
    expect(pid.F).not.toBe(pid.A);
    expect(pid.F).not.toBe(pid.C);
    // Exactly three worker processes ever ran jobs: the two started and the one respawned.
    expect(new Set(Object.values(pid)).size).toBe(3);
    // The killed worker is gone, and the pool's own workers exit once it is done.
    expect(await waitGone(Object.values(pid) as number[])).toEqual([]);
  });

  test('a job that throws in a worker fails with its own message; that worker stays up and runs the next job', async () => {
    const dir = caseDir();
    const pidFile = (id: string) => join(dir, `${id}.pid`);
    const jobs: PoolJob<TestJob>[] = [
      {
        id: 'X',
        deps: [],
        job: { kind: 'fail', name: 'X', message: 'X broke: bad input', pidFile: pidFile('X') },
      },
      { id: 'Y', deps: ['X'], job: { kind: 'ok', name: 'Y', ms: 1, pidFile: pidFile('Y') } },
      // Z holds the other worker until X has failed, so W can only go to X's worker.
      {
        id: 'Z',
        deps: [],
        job: { kind: 'ok', name: 'Z', ms: 1, waitFor: join(dir, 'X.failed'), pidFile: pidFile('Z') },
      },
      { id: 'W', deps: [], job: { kind: 'ok', name: 'W', ms: 1, pidFile: pidFile('W') } },
    ];
    const r = await run(dir, jobs, 2);
    expect(r.result).toEqual({ failed: [{ id: 'X', message: 'X broke: bad input' }], blocked: ['Y'] });
    expect(r.byId).toEqual([
      ['W', 'done', undefined],
      ['X', 'failed', 'X broke: bad input'],
      ['Z', 'done', undefined],
    ]);
    expect(existsSync(pidFile('Y'))).toBe(false);
    expect(pidOf(dir, 'W')).toBe(pidOf(dir, 'X'));
    expect(pidOf(dir, 'Z')).not.toBe(pidOf(dir, 'X'));
    expect(await waitGone([pidOf(dir, 'X'), pidOf(dir, 'Z')])).toEqual([]);
  });
});

describe('runPool in process (workers = 1)', () => {
  test('the same graph with a thrown error instead of a kill gives the same failed / blocked / done split', async () => {
    const dir = caseDir();
    const log: string[] = [];
    const r = await run(dir, graph(dir, { kind: 'fail', message: 'A broke' }), 1, log);
    expectSplit(r, dir, 'A broke');
    // No worker script, every job in this process, in graph order.
    expect(r.scripts).toBe(0);
    expect(log).toEqual(['A', 'C', 'D', 'F', 'G']);
    for (const id of ['A', 'C', 'D', 'F', 'G']) expect(pidOf(dir, id)).toBe(process.pid);
    expect(r.steps).toEqual([1, 1, 1, 1]);
  });

  test('a job whose done() is true is skipped (not executed) and its dependents still run', async () => {
    const log: string[] = [];
    const job = (name: string): TestJob => ({ kind: 'ok', name, ms: 1 });
    const r = await run(
      caseDir(),
      [
        { id: 'P', deps: [], job: job('P') },
        {
          id: 'Q',
          deps: ['P'],
          job: job('Q'),
          done: () => {
            log.push('done? Q');
            return true;
          },
        },
        {
          id: 'R',
          deps: ['Q'],
          job: job('R'),
          done: () => {
            log.push('done? R');
            return false;
          },
        },
      ],
      1,
      log,
    );
    expect(r.result).toEqual({ failed: [], blocked: [] });
    expect(r.outcomes).toEqual([
      ['P', 'done', undefined],
      ['Q', 'skipped', undefined],
      ['R', 'done', undefined],
    ]);
    // done() is asked once, when the job becomes ready (after its dependency ran); Q never executes.
    expect(log).toEqual(['P', 'done? Q', 'done? R', 'R']);
  });

  test('an unknown dependency is an error before anything runs', async () => {
    const log: string[] = [];
    const jobs: PoolJob<TestJob>[] = [
      { id: 'a', deps: [], job: { kind: 'ok', name: 'a', ms: 1 } },
      { id: 'b', deps: ['a', 'nope'], job: { kind: 'ok', name: 'b', ms: 1 } },
    ];
    for (const workers of [1, 2]) {
      let scripts = 0;
      await expect(
        runPool(jobs, {
          workers,
          execute: inProcess(log),
          workerScript: () => {
            scripts++;
            return FIXTURE;
          },
        }),
      ).rejects.toThrow('job b depends on unknown job nope');
      expect(scripts).toBe(0);
    }
    expect(log).toEqual([]);
  });
});
