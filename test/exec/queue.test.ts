/**
 * The distributed queue (src/exec/queue.ts, queue-worker.ts) against a real Redis: a redis-server
 * started here on a free loopback port, and three `twinscope worker` processes (bin/twinscope.js on
 * dist/). One worker is killed with SIGKILL in the middle of a training job: the study still
 * completes, the job resumed from its last checkpoint, and the result rows equal those of the same
 * study run in the local pool. Also: a second run enqueues nothing, a poisoned job fails after its
 * attempts and is reported in status.json, jobs with paths outside the study folder or invalid JSON
 * are refused, `status --json`, `--detach` then collect. Skipped without redis-server.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import type { StatusReport } from '../../src/cli/status.js';
import {
  connectionOf,
  JOB_FORMAT,
  parseQueueUrl,
  QUEUE_NAME,
  type QueuedProgress,
  type QueueTarget,
  queuedJobStates,
  redactUrl,
} from '../../src/exec/queue.js';
import { type ResultRow, readResults } from '../../src/results/rows.js';
import { readStatus } from '../../src/results/study-files.js';
import { readQueuedJobs } from '../../src/study/queue-file.js';
import { parseQueuedJob, toQueuedJob } from '../../src/study/queued-jobs.js';
import { runStudy } from '../../src/study/run-study.js';
import { runSweep } from '../../src/study/run-sweep.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { parseSweepSpec } from '../../src/study/sweep-spec.js';
import { capture } from '../helpers/cli-io.js';
import { type RedisServer, redisServerBinary, startRedis } from '../helpers/redis.js';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, ROOT, tinyBase } from '../helpers/study.js';

const redisBin = redisServerBinary();

/** A study whose runs take a few seconds each (540 steps), so that a worker can be killed mid-run. */
const slowStudy = parseStudySpec({
  name: 'queued',
  base: { ...tinyBase, epochs: 60, checkpoints: { every: 20 } },
  perturbations: [{ kind: 'gaussian', sigmas: [0, 1e-3], forkSteps: [0, 200], repeats: 1 }],
  measure: { distance: {} },
  lockstep: false,
});

/** A tiny study (45 steps per run). */
const tinyStudy = parseStudySpec({
  name: 'tiny-queued',
  base: tinyBase,
  perturbations: [{ kind: 'gaussian', sigmas: [1e-3], forkSteps: [0], repeats: 1 }],
  measure: { distance: {} },
  lockstep: false,
});

/** Rows in a canonical order (for comparing two studies). */
function sortRows(rows: readonly ResultRow[]): ResultRow[] {
  const key = (r: ResultRow) =>
    JSON.stringify([r.runB ?? '', r.metric, r.step, r.layer ?? '', r.split ?? '', JSON.stringify(r.options)]);
  return [...rows].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns a value (or throw after `ms`). */
async function until<T>(check: () => Promise<T | undefined>, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await wait(50);
  }
}

describe.skipIf(!redisBin)('distributed queue on a real redis-server', () => {
  const root = scratchDir('twinscope-queue-');
  let redis: RedisServer;
  let target: QueueTarget;
  let queue: Queue;
  const workers: ChildProcess[] = [];
  const logs: string[] = [];

  /** Start a `twinscope worker` process (a 5 s job lock: a lost worker is noticed within seconds). */
  const startWorker = () => {
    const child = spawn(
      process.execPath,
      [join(ROOT, 'bin', 'twinscope.js'), 'worker', '--queue', redis.url, '--lock-ms', '5000'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child.stderr?.on('data', (d) => logs.push(`[${child.pid}] ${d}`));
    workers.push(child);
    return child;
  };

  beforeAll(async () => {
    await buildDist();
    redis = await startRedis(redisBin as string);
    target = parseQueueUrl(redis.url);
    queue = new Queue(QUEUE_NAME, { connection: connectionOf(target) });
    for (let i = 0; i < 3; i++) startWorker();
    await until(
      async () => ((await queue.getWorkersCount()) >= 3 ? true : undefined),
      30_000,
      'three workers',
    );
  }, 120_000);

  afterAll(async () => {
    if (process.env.TWINSCOPE_DEBUG) process.stderr.write(logs.join(''));
    // Workers stop on SIGTERM (after their running job); the queue's keys go, then the server.
    await Promise.all(
      workers
        .filter((w) => w.exitCode === null && w.signalCode === null)
        .map(
          (w) =>
            new Promise<void>((resolve) => {
              w.once('exit', () => resolve());
              w.kill('SIGTERM');
            }),
        ),
    );
    if (queue) {
      await queue.obliterate({ force: true });
      expect(await queue.getJobCounts()).toEqual(expect.objectContaining({ waiting: 0, completed: 0 }));
      await queue.close();
    }
    await redis?.stop();
  }, 60_000);

  test('a worker killed mid-run: the study completes, equal to the local pool', async () => {
    const local = await runStudy(slowStudy, join(root, 'local'), {}, { workers: 1 });
    expect(local.failed).toEqual([]);
    const dir = join(root, 'queued');
    let steps = 0;
    const study = runStudy(
      slowStudy,
      dir,
      {
        onSteps: (n) => {
          steps += n;
        },
      },
      { queue: { target, backoffMs: 500 } },
    );
    // The first job in the middle of its run (past a checkpoint, far from its end): kill its worker.
    const victim = await until(
      async () => {
        for (const job of await queue.getActive()) {
          const p = job.progress as Partial<QueuedProgress>;
          if (typeof p.steps === 'number' && p.steps >= 60 && p.steps <= 300)
            return { job, worker: p.worker as string };
        }
        return undefined;
      },
      60_000,
      'a job half-way',
    );
    const pid = Number(victim.worker.split(':').at(-1));
    const killed = workers.find((w) => w.pid === pid);
    expect(killed).toBeDefined();
    const exited = new Promise((r) => killed?.once('exit', r));
    killed?.kill('SIGKILL');
    await exited;
    const result = await study;
    expect(result.failed).toEqual([]);
    expect(result.blocked).toEqual([]);
    expect(steps).toBeGreaterThan(0);
    // Another worker finished the killed job, resuming it from a checkpoint: its last attempt trained
    // fewer run-steps than the whole run.
    const again = await queue.getJob(victim.job.id as string);
    expect(await again?.getState()).toBe('completed');
    const last = again?.progress as QueuedProgress;
    expect(last.worker).not.toBe(victim.worker);
    const total = victim.job.name.startsWith('fork:s0/t200') ? 340 : 540;
    expect(last.steps).toBeLessThan(total);
    expect(last.steps).toBeGreaterThan(0);
    // The result tables equal the local run's, row for row.
    const queued = readResults(join(dir, 'results.arrow'));
    expect(queued.length).toBe(local.rows.length);
    expect(queued.length).toBeGreaterThan(0);
    expect(sortRows(queued)).toEqual(sortRows(readResults(join(root, 'local', 'results.arrow'))));
    expect(readStatus(dir, 'study').status?.complete).toBe(true);
    startWorker();
  }, 150_000);

  test('a sweep with a measure block; SIGTERM lets a worker finish its job and exit 0', async () => {
    const sweep = parseSweepSpec({
      name: 'geometry',
      sweep: {
        base: {
          ...tinyBase,
          epochs: 30,
          batchSize: 'full',
          optimizer: { kind: 'sgd', lr: 0.5 },
          checkpoints: { every: 10 },
        },
        grid: { 'optimizer.lr': [0.5, 0.1] },
      },
      embed: { method: 'pca', components: 2 },
      measure: { sensitivity: { sigmas: [0, 0.1], draws: 2, noise: ['iid'] } },
    });
    const local = await runSweep(sweep, join(root, 'sweep-local'), {}, { workers: 1 });
    const dir = join(root, 'sweep-queued');
    const run = runSweep(sweep, dir, {}, { queue: { target } });
    const active = await until(
      async () => {
        const [job] = await queue.getActive();
        const p = job?.progress as Partial<QueuedProgress> | undefined;
        return job && typeof p?.worker === 'string' ? { job, worker: p.worker } : undefined;
      },
      30_000,
      'an active job',
    );
    const pid = Number(active.worker.split(':').at(-1));
    const stopped = workers.find((w) => w.pid === pid) as ChildProcess;
    const exit = new Promise<number | null>((r) => stopped.once('exit', (code) => r(code)));
    stopped.kill('SIGTERM');
    expect(await exit).toBe(0);
    // It finished the job it had (SIGTERM hands nothing back half done).
    const job = await queue.getJob(active.job.id as string);
    expect(await job?.getState()).toBe('completed');
    expect((job?.progress as QueuedProgress | undefined)?.worker).toBe(active.worker);
    const result = await run;
    expect(result.failed).toEqual([]);
    expect(result.rows.length).toBeGreaterThan(0);
    expect(sortRows(result.rows)).toEqual(sortRows(local.rows));
    startWorker();
  }, 120_000);

  test('a second run of a finished study enqueues nothing', async () => {
    const dir = join(root, 'queued');
    const before = await queue.getJobCounts();
    const ids = readQueuedJobs(dir);
    let runSteps = -1;
    const result = await runStudy(
      slowStudy,
      dir,
      {
        onRound: (r) => {
          runSteps = r.runSteps;
        },
      },
      { queue: { target } },
    );
    expect(result.failed).toEqual([]);
    expect(runSteps).toBe(0);
    expect(await queue.getJobCounts()).toEqual(before);
    expect(readQueuedJobs(dir)).toEqual(ids);
  }, 60_000);

  test('status --json: the study and its jobs in the queue', async () => {
    const dir = join(root, 'queued');
    const io = capture();
    const code = await main(['node', 'twinscope', 'status', dir, '--queue', redis.url, '--json'], io);
    expect(code).toBe(0);
    const report = JSON.parse(io.out) as StatusReport;
    expect(report.kind).toBe('study');
    expect(report.lock).toEqual({ state: 'free' });
    expect(report.status?.complete).toBe(true);
    // parent, reference twins a (t0, t200), 4 perturbed twins, 4 measurements.
    expect(report.queue?.counts).toEqual({
      waiting: 0,
      parked: 0,
      active: 0,
      done: 11,
      failed: 0,
      missing: 0,
    });
    expect(report.queue?.workers).toBeGreaterThanOrEqual(1);
    expect(report.queue?.url).toBe(redis.url);
    expect(report.queue?.jobs.map((j) => j.id).sort()).toContain('train:s0/parent');
    expect(report.queue?.jobs.every((j) => j.state === 'done' && j.attempts >= 1)).toBe(true);
  });

  test('a poisoned job fails after its attempts, is reported and blocks its measurement', async () => {
    const dir = join(root, 'poisoned');
    // A file where a twin's run folder must go: that fork fails on every attempt.
    mkdirSync(join(dir, 'runs', 's0', 't0'), { recursive: true });
    writeFileSync(join(dir, 'runs', 's0', 't0', 'gaussian-1e-3-r0'), 'not a folder');
    const result = await runStudy(tinyStudy, dir, {}, { queue: { target, attempts: 2, backoffMs: 100 } });
    expect(result.failed.map((f) => f.id)).toEqual(['fork:s0/t0/gaussian-1e-3-r0']);
    expect(result.failed[0]?.message).toMatch(/not a folder/);
    expect(result.blocked).toEqual(['measure:s0/t0/gaussian-1e-3-r0']);
    const status = readStatus(dir, 'study').status;
    expect(status?.complete).toBe(false);
    expect(status?.failed).toEqual(result.failed);
    expect(status?.blocked).toEqual(result.blocked);
    const states = await queuedJobStates(target, readQueuedJobs(dir));
    const fork = states.jobs.find((j) => j.id === 'fork:s0/t0/gaussian-1e-3-r0');
    expect(fork).toMatchObject({ state: 'failed', attempts: 2 });
    expect(states.jobs.find((j) => j.id === 'measure:s0/t0/gaussian-1e-3-r0')?.state).toBe('parked');
  }, 60_000);

  test('--detach returns after enqueueing; the same run later collects', async () => {
    const dir = join(root, 'detached');
    const detached = await runStudy(tinyStudy, dir, {}, { queue: { target, detach: true } });
    expect(detached.detached).toBe(true);
    expect(existsSync(join(dir, 'results.arrow'))).toBe(false);
    const ids = Object.values(readQueuedJobs(dir));
    // parent, reference twin a, the perturbed twin, their measurement.
    expect(ids.length).toBe(4);
    // The workers go on alone; the collecting run waits for what is left and writes the results.
    const collected = await runStudy(tinyStudy, dir, {}, { queue: { target } });
    expect(collected.detached).toBeUndefined();
    expect(collected.failed).toEqual([]);
    expect(collected.rows.length).toBeGreaterThan(0);
    expect(readStatus(dir, 'study').status?.complete).toBe(true);
  }, 60_000);

  test('jobs whose paths leave the study folder, or whose JSON is invalid, are refused', async () => {
    const dir = join(root, 'refused');
    mkdirSync(dir);
    const bad = {
      escape: { kind: 'train', dir: '../elsewhere', spec: { name: 'x' } },
      absolute: { kind: 'train', dir: '/tmp/elsewhere', spec: { name: 'x' } },
      invalid: { kind: 'train', dir: 'runs/x' },
    };
    for (const [name, job] of Object.entries(bad)) {
      const data = { format: JOB_FORMAT, dir, id: `train:${name}`, deps: [], dependents: [], job };
      await queue.add(name, data, { jobId: `refused-${name}`, attempts: 3 });
    }
    await queue.add('no-envelope', { kind: 'train' }, { jobId: 'refused-envelope', attempts: 3 });
    const reasons: Record<string, string> = {};
    for (const name of [...Object.keys(bad), 'envelope']) {
      const job = await until(
        async () => {
          const j = await queue.getJob(`refused-${name}`);
          if (!j || (await j.getState()) !== 'failed') return undefined;
          // A snapshot read after the job failed: the first may predate it (attemptsMade 0).
          return queue.getJob(`refused-${name}`);
        },
        20_000,
        `job ${name} refused`,
      );
      // Refused at once: one attempt, no retries.
      expect(job.attemptsMade).toBe(1);
      reasons[name] = job.failedReason;
    }
    expect(reasons.escape).toMatch(/refused by worker .*dir: \.\.\/elsewhere leaves the study folder/);
    expect(reasons.absolute).toMatch(/refused by worker .*is absolute/);
    expect(reasons.invalid).toMatch(/refused by worker .*invalid job.*spec/s);
    expect(reasons.envelope).toMatch(/refused by worker/);
    expect(existsSync(join(root, 'elsewhere'))).toBe(false);
  }, 60_000);

  test('the URL is parsed and its password never printed', () => {
    expect(parseQueueUrl('redis://:s3cret@10.0.0.5:6390/2')).toEqual({
      host: '10.0.0.5',
      port: 6390,
      db: 2,
      password: 's3cret',
    });
    expect(redactUrl('redis://:s3cret@10.0.0.5:6390/2')).toBe('redis://:***@10.0.0.5:6390/2');
    expect(() => parseQueueUrl('http://x')).toThrow(/redis:\/\//);
  });
});

describe('queued study jobs (no Redis)', () => {
  const dir = '/data/studies/one';
  test('paths travel relative to the study folder and come back absolute', () => {
    const job = { kind: 'train' as const, dir: `${dir}/runs/s0/parent`, spec: tinyBase as never };
    const queued = toQueuedJob(job, dir);
    expect(queued).toMatchObject({ kind: 'train', dir: 'runs/s0/parent' });
    expect(parseQueuedJob(JSON.parse(JSON.stringify(queued)), dir)).toEqual(job);
    // A study folder given relative to the working directory (twinscope run … --out studies/x).
    const relative = { kind: 'train' as const, dir: 'studies/x/runs/s0/parent', spec: tinyBase as never };
    expect(toQueuedJob(relative, join(process.cwd(), 'studies', 'x'))).toMatchObject({
      dir: 'runs/s0/parent',
    });
  });

  test('a path outside the folder, a relative folder or a malformed job is refused', () => {
    expect(() => toQueuedJob({ kind: 'train', dir: '/data/other', spec: tinyBase as never }, dir)).toThrow(
      /leaves the study folder/,
    );
    const measure = {
      kind: 'measure',
      root: 'runs',
      study: 'x',
      twin: {
        runA: 's0/parent',
        runB: '../../../etc',
        kind: 'gaussian',
        sigma: 0,
        forkStep: 0,
        repeat: 0,
        seed: 0,
      },
      measure: {},
      out: 'measurements/a.arrow',
    };
    expect(() => parseQueuedJob(measure, dir)).toThrow(/twin.runB: \.\.\/\.\.\/\.\.\/etc leaves/);
    expect(() => parseQueuedJob({ kind: 'train', dir: 'runs/x', spec: {} }, 'relative')).toThrow(/absolute/);
    expect(() =>
      parseQueuedJob({ kind: 'fork', parentDir: 'runs/p', forkStep: -1, lockstep: false, members: [] }, dir),
    ).toThrow(/invalid job/);
    expect(() => parseQueuedJob({ kind: 'rm -rf', dir: 'x' }, dir)).toThrow(/invalid job/);
  });
});
