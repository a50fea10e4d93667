/**
 * The distributed executor of a job graph: the same plain-JSON jobs as the local pool (./pool.ts),
 * with the same contract ({@link runQueue} resolves with the failed and blocked jobs), but executed
 * by `twinscope worker` processes on any number of machines that pull them from a BullMQ queue in
 * Redis (./queue-worker.ts).
 *
 * Dependencies. BullMQ flows are trees whose parent waits for its children (fan-in), and a job has
 * at most one parent; a study's graph fans out (one parent run is forked into many twins, one
 * lock-step group feeds many pair measurements). So every job is added at once, keyed by a
 * deterministic id, and a job with unfinished dependencies is *parked*: added as a delayed job
 * ({@link PARK_MS} in the future) whose data name its dependencies and dependents. Whoever sees a
 * job complete (the worker that ran it, and the coordinator while it waits) promotes each dependent
 * whose dependencies are all complete to the waiting list; a worker also checks a job's
 * dependencies before running it and parks it again if one is not complete. Nothing is lost when a
 * process dies: the graph lives in Redis, and the coordinator (or the next `run`) promotes any
 * parked job whose dependencies completed.
 *
 * Ids are a hash of the study folder, the job's id and its payload: enqueueing the same graph twice
 * adds nothing (a job still waiting, parked or running is kept and waited for); a job whose output
 * exists (`done()`) is not enqueued at all; a job that completed or failed in Redis but whose output
 * is missing is enqueued again.
 */
import { createHash } from 'node:crypto';
import { type ConnectionOptions, type Job, Queue, QueueEvents } from 'bullmq';
import { InputError } from '../util/errors.js';
import type { PoolJob, PoolOptions, PoolResult } from './pool.js';

/** The name of the BullMQ queue (Redis keys `bull:twinscope:*`). */
export const QUEUE_NAME = 'twinscope';
/** How far in the future a parked job is delayed (about 100 years: until a dependency promotes it). */
const PARK_MS = 100 * 365 * 24 * 3600 * 1000;
/** How often the coordinator reads the states of the jobs it waits for. */
const POLL_MS = 500;
/** The format tag of a queued job's data. */
export const JOB_FORMAT = 'twinscope-job/1';

/** The data of a queued job: the payload, its study folder and its place in the graph. */
export interface QueuedJobData {
  readonly format: typeof JOB_FORMAT;
  /** The study (or sweep) folder the job writes into: an absolute path, the same on every machine. */
  readonly dir: string;
  /** The job's id in the graph (`train:s0`, `measure:s0/t0/gaussian-0-r0`, …). */
  readonly id: string;
  /** BullMQ ids of the jobs that must complete first. */
  readonly deps: readonly string[];
  /** BullMQ ids of the jobs that wait for this one. */
  readonly dependents: readonly string[];
  /** The payload: plain JSON, its paths relative to `dir`. */
  readonly job: unknown;
}

/** The progress a worker reports on a job (BullMQ progress): run-steps and a heartbeat. */
export interface QueuedProgress {
  /** Run-steps trained by this attempt so far. */
  readonly steps: number;
  /** Distinguishes attempts (a resumed job starts counting again). */
  readonly attempt: string;
  readonly worker: string;
  /** When the worker last reported (ms since the epoch). */
  readonly at: number;
}

/** Where the queue is: a parsed `redis://[:password@]host:port[/db]` URL. */
export interface QueueTarget {
  readonly host: string;
  readonly port: number;
  readonly password?: string;
  readonly username?: string;
  readonly db: number;
}

/**
 * Parse a queue URL, `redis://[[user]:password@]host[:port][/db]` (port 6379 and db 0 by default).
 * Anything else is bad input ({@link InputError}).
 */
export function parseQueueUrl(url: string): QueueTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new InputError(
      `--queue ${redactUrl(url)}: not a URL (expected redis://[:password@]host:port[/db])`,
    );
  }
  if (u.protocol !== 'redis:')
    throw new InputError(`--queue ${redactUrl(url)}: expected a redis:// URL, got ${u.protocol}`);
  if (!u.hostname) throw new InputError(`--queue ${redactUrl(url)}: no host`);
  const port = u.port ? Number(u.port) : 6379;
  const dbText = u.pathname.replace(/^\//, '');
  const db = dbText === '' ? 0 : Number(dbText);
  if (!Number.isInteger(db) || db < 0)
    throw new InputError(`--queue ${redactUrl(url)}: the database must be a number (redis://host:port/0)`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    host,
    port,
    db,
    ...(u.password && { password: decodeURIComponent(u.password) }),
    ...(u.username && { username: decodeURIComponent(u.username) }),
  };
}

/** The URL with its password replaced by `***` (for messages and status). */
export function redactUrl(url: string): string {
  return url.replace(/^(redis:\/\/[^:@/]*:)[^@]*@/, '$1***@');
}

/** The ioredis connection options of a target (`maxRetriesPerRequest: null`, as BullMQ workers need). */
export function connectionOf(target: QueueTarget): ConnectionOptions {
  return {
    host: target.host,
    port: target.port,
    db: target.db,
    maxRetriesPerRequest: null,
    ...(target.password !== undefined && { password: target.password }),
    ...(target.username !== undefined && { username: target.username }),
  };
}

/** The BullMQ id of a job: a hash of its study folder, its id and its payload (no `:`, which BullMQ refuses). */
function queuedJobId(dir: string, id: string, payload: unknown): string {
  const study = createHash('sha256').update(dir).digest('hex').slice(0, 12);
  const job = createHash('sha256')
    .update(JSON.stringify([id, payload]))
    .digest('hex')
    .slice(0, 20);
  return `ts-${study}-${job}`;
}

/**
 * Promote each parked job of `ids` whose dependencies have all completed (to the waiting list).
 * Safe to call from any number of processes at once: promoting a job that is no longer delayed
 * fails and is ignored.
 */
export async function releaseReady(queue: Queue, ids: readonly string[]): Promise<number> {
  let released = 0;
  for (const id of ids) {
    const job = await queue.getJob(id);
    if (!job || (await job.getState()) !== 'delayed') continue;
    const deps = (job.data as QueuedJobData).deps ?? [];
    const states = await Promise.all(deps.map((d) => queue.getJobState(d)));
    if (!states.every((s) => s === 'completed')) continue;
    try {
      await job.promote();
      released++;
    } catch {
      // Promoted (or picked up) by another process in the meantime.
    }
  }
  return released;
}

/** Options of {@link runQueue}: the pool's, less what only a local pool has, plus where the queue is. */
export interface QueueOptions<J> extends Pick<PoolOptions<J>, 'onSteps' | 'onFinished'> {
  /** The queue's Redis. */
  readonly target: QueueTarget;
  /** The study folder the jobs write into (absolute). */
  readonly dir: string;
  /** The payload as it travels (paths made relative to `dir`); called once per job to enqueue. */
  readonly toQueued: (job: J) => unknown;
  /** Return right after enqueueing (the workers go on; a later call collects). */
  readonly detach?: boolean;
  /** Attempts per job before it fails for good (default 3). */
  readonly attempts?: number;
  /** Delay before the first retry in ms, doubled at each retry (default 5000). */
  readonly backoffMs?: number;
  /** Called once the jobs are in the queue: how many were added now and how many were already there. */
  readonly onEnqueued?: (info: { added: number; kept: number; ids: Record<string, string> }) => void;
}

/** The outcome of {@link runQueue}: the pool's, and how many jobs were added to the queue. */
export interface QueueResult extends PoolResult {
  readonly added: number;
  /** True when it returned after enqueueing ({@link QueueOptions.detach}). */
  readonly detached: boolean;
}

/** `jobs` with their dependencies first (Kahn's order); unknown dependencies are an error, as in the pool. */
function topological<J>(jobs: readonly PoolJob<J>[]): PoolJob<J>[] {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  for (const j of jobs) {
    for (const d of j.deps) if (!byId.has(d)) throw new Error(`job ${j.id} depends on unknown job ${d}`);
  }
  const out: PoolJob<J>[] = [];
  const seen = new Set<string>();
  const visit = (j: PoolJob<J>, path: Set<string>) => {
    if (seen.has(j.id)) return;
    if (path.has(j.id)) throw new Error(`job ${j.id} depends on itself`);
    path.add(j.id);
    for (const d of j.deps) visit(byId.get(d) as PoolJob<J>, path);
    path.delete(j.id);
    seen.add(j.id);
    out.push(j);
  };
  for (const j of jobs) visit(j, new Set());
  return out;
}

/**
 * Run `jobs` through the queue at `options.target`: skip those whose output exists, enqueue the rest
 * (with their dependencies), and resolve when every one has completed, failed for good, or is
 * blocked by a failed dependency (or at once with `detach`). Workers (`twinscope worker`) execute
 * them. Progress (run-steps) and each job's outcome are reported as by the local pool.
 */
export async function runQueue<J>(
  jobs: readonly PoolJob<J>[],
  options: QueueOptions<J>,
): Promise<QueueResult> {
  const ordered = topological(jobs);
  const failed: PoolResult['failed'] = [];
  const blocked: string[] = [];
  const outcome = new Map<string, 'ok' | 'failed' | 'blocked'>();
  // Jobs whose output exists are finished before anything is enqueued (in dependency order).
  const pending: PoolJob<J>[] = [];
  for (const j of ordered) {
    if (j.deps.every((d) => outcome.get(d) === 'ok') && j.done?.()) {
      outcome.set(j.id, 'ok');
      options.onFinished?.(j, 'skipped');
    } else pending.push(j);
  }
  const pendingIds = new Set(pending.map((j) => j.id));
  const payload = new Map(pending.map((j) => [j.id, options.toQueued(j.job)]));
  const bullId = new Map(
    pending.map((j) => [j.id, queuedJobId(options.dir, j.id, payload.get(j.id))] as const),
  );
  const dependents = new Map<string, string[]>(pending.map((j) => [j.id, []]));
  for (const j of pending) {
    for (const d of j.deps) if (pendingIds.has(d)) dependents.get(d)?.push(j.id);
  }
  const connection = connectionOf(options.target);
  const queue = new Queue(QUEUE_NAME, { connection });
  let events: QueueEvents | undefined;
  try {
    let added = 0;
    let kept = 0;
    for (const j of pending) {
      const id = bullId.get(j.id) as string;
      const existing = await queue.getJob(id);
      if (existing) {
        const state = await existing.getState();
        // Waiting, parked or running: keep it and wait for it. Finished in Redis but its output is
        // not there (a failure, or files removed since): enqueue it again.
        if (state !== 'completed' && state !== 'failed') {
          kept++;
          continue;
        }
        await existing.remove();
      }
      const deps = j.deps.filter((d) => pendingIds.has(d)).map((d) => bullId.get(d) as string);
      const data: QueuedJobData = {
        format: JOB_FORMAT,
        dir: options.dir,
        id: j.id,
        deps,
        dependents: (dependents.get(j.id) ?? []).map((d) => bullId.get(d) as string),
        job: payload.get(j.id),
      };
      await queue.add(j.id, data, {
        jobId: id,
        attempts: options.attempts ?? 3,
        backoff: { type: 'exponential', delay: options.backoffMs ?? 5000 },
        ...(deps.length > 0 && { delay: PARK_MS }),
        removeOnComplete: false,
        removeOnFail: false,
      });
      added++;
    }
    const allIds = [...bullId.values()];
    // Jobs kept from an earlier enqueue whose dependencies completed meanwhile.
    await releaseReady(queue, allIds);
    options.onEnqueued?.({ added, kept, ids: Object.fromEntries(bullId) });
    if (options.detach) return { failed, blocked, added, detached: true };

    // Progress: each attempt's run-steps (a resumed attempt counts from its own start).
    const lastSteps = new Map<string, { attempt: string; steps: number }>();
    const byBull = new Map(pending.map((j) => [bullId.get(j.id) as string, j]));
    events = new QueueEvents(QUEUE_NAME, { connection });
    events.on('progress', ({ jobId, data }) => {
      if (!byBull.has(jobId) || typeof data !== 'object' || data === null) return;
      const p = data as Partial<QueuedProgress>;
      if (typeof p.steps !== 'number' || typeof p.attempt !== 'string') return;
      const last = lastSteps.get(jobId);
      const delta = last && last.attempt === p.attempt ? p.steps - last.steps : p.steps;
      lastSteps.set(jobId, { attempt: p.attempt, steps: p.steps });
      if (delta > 0) options.onSteps?.(delta);
    });
    await events.waitUntilReady();

    const block = (id: string) => {
      for (const d of dependents.get(id) ?? []) {
        if (outcome.has(d)) continue;
        outcome.set(d, 'blocked');
        blocked.push(d);
        block(d);
      }
    };
    for (;;) {
      const open = pending.filter((j) => !outcome.has(j.id));
      if (open.length === 0) break;
      const states = await Promise.all(open.map((j) => queue.getJobState(bullId.get(j.id) as string)));
      const completed: string[] = [];
      for (const [i, j] of open.entries()) {
        if (outcome.has(j.id)) continue;
        const state = states[i];
        if (state === 'completed') {
          outcome.set(j.id, 'ok');
          options.onFinished?.(j, 'done');
          completed.push(j.id);
        } else if (state === 'failed') {
          const job = (await queue.getJob(bullId.get(j.id) as string)) as Job | undefined;
          const message = job?.failedReason || 'failed';
          outcome.set(j.id, 'failed');
          failed.push({ id: j.id, message });
          options.onFinished?.(j, 'failed', message);
          block(j.id);
        } else if (state === 'unknown') {
          const message = 'removed from the queue while the study waited for it';
          outcome.set(j.id, 'failed');
          failed.push({ id: j.id, message });
          options.onFinished?.(j, 'failed', message);
          block(j.id);
        }
      }
      // The workers promote the dependents of what they complete; this covers a worker lost in between.
      const waiting = completed.flatMap((id) => dependents.get(id) ?? []);
      if (waiting.length > 0)
        await releaseReady(
          queue,
          waiting.map((d) => bullId.get(d) as string),
        );
      if (completed.length === 0) await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return { failed, blocked, added, detached: false };
  } finally {
    await events?.close();
    await queue.close();
  }
}

/** How many workers are connected to the queue at `target` now. */
export async function queueWorkerCount(target: QueueTarget): Promise<number> {
  const queue = new Queue(QUEUE_NAME, { connection: connectionOf(target) });
  try {
    return await queue.getWorkersCount();
  } finally {
    await queue.close();
  }
}

/** One job of a study as the queue sees it (`twinscope status --queue`). */
export interface QueuedJobState {
  /** The job's id in the graph. */
  readonly id: string;
  /** `parked`: waiting for its dependencies; `missing`: not in the queue (removed, or another Redis). */
  readonly state: 'waiting' | 'parked' | 'active' | 'done' | 'failed' | 'missing';
  /** The worker running it (active jobs). */
  readonly worker?: string;
  /** Milliseconds since its worker last reported (active jobs). */
  readonly heartbeatAgeMs?: number;
  /** Run-steps its current attempt trained so far. */
  readonly steps?: number;
  /** Attempts made so far. */
  readonly attempts: number;
  /** The error of a failed job (or of its last failed attempt). */
  readonly message?: string;
}

/** The states of jobs `ids` (job id to queue id) in the queue at `target`. */
export async function queuedJobStates(
  target: QueueTarget,
  ids: Readonly<Record<string, string>>,
): Promise<{ jobs: QueuedJobState[]; workers: number }> {
  const queue = new Queue(QUEUE_NAME, { connection: connectionOf(target) });
  try {
    const now = Date.now();
    const jobs = await Promise.all(
      Object.entries(ids).map(async ([id, bull]): Promise<QueuedJobState> => {
        const job = await queue.getJob(bull);
        if (!job) return { id, state: 'missing', attempts: 0 };
        const s = await job.getState();
        const state =
          s === 'completed'
            ? 'done'
            : s === 'failed'
              ? 'failed'
              : s === 'active'
                ? 'active'
                : s === 'delayed' && job.delay >= PARK_MS / 2
                  ? 'parked'
                  : 'waiting';
        const p = (typeof job.progress === 'object' ? job.progress : {}) as Partial<QueuedProgress>;
        return {
          id,
          state,
          attempts: job.attemptsMade,
          ...(state === 'active' && typeof p.worker === 'string' && { worker: p.worker }),
          ...(state === 'active' && typeof p.at === 'number' && { heartbeatAgeMs: Math.max(0, now - p.at) }),
          ...(typeof p.steps === 'number' && { steps: p.steps }),
          ...(job.failedReason && { message: job.failedReason }),
        };
      }),
    );
    return { jobs, workers: await queue.getWorkersCount() };
  } finally {
    await queue.close();
  }
}
