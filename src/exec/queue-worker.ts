/**
 * A queue worker (`twinscope worker --queue URL`): pulls jobs that {@link ./queue.ts} enqueued and
 * executes them one at a time (or `concurrency` at a time) in this process.
 *
 * - Every job's data is checked before it runs: the envelope here, the payload by the caller's
 *   `parse` (which refuses invalid JSON and paths that leave the study folder). A refused job fails
 *   at once, without retries (BullMQ's UnrecoverableError), its reason recorded.
 * - A job whose dependencies have not all completed is parked again (it was promoted early).
 * - While a job runs the worker reports its run-steps and a heartbeat as the job's progress; BullMQ
 *   renews the job's lock every `lockMs / 2`. A worker that dies (SIGKILL, machine lost) stops
 *   renewing: after `lockMs` another worker's stalled-job check moves the job back to the waiting
 *   list, and whoever takes it resumes it (a run resumes from its last checkpoint).
 * - A job that throws is retried with exponential backoff up to its attempts, then fails for good.
 * - When a job completes, its dependents whose dependencies have all completed are promoted.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { DelayedError, type Job, Queue, UnrecoverableError, Worker } from 'bullmq';
import { z } from 'zod';
import {
  connectionOf,
  JOB_FORMAT,
  QUEUE_NAME,
  type QueuedJobData,
  type QueuedProgress,
  type QueueTarget,
  releaseReady,
} from './queue.js';
import type { JobExecutor } from './worker-loop.js';

/** The envelope of a queued job (its payload is checked by the caller's parser). */
const envelopeSchema = z.strictObject({
  format: z.literal(JOB_FORMAT),
  dir: z.string().min(1),
  id: z.string().min(1),
  deps: z.array(z.string()),
  dependents: z.array(z.string()),
  job: z.unknown(),
});

/** Options of {@link serveQueue}. */
export interface QueueWorkerOptions<P> {
  readonly target: QueueTarget;
  /** Validate a job's payload and resolve its paths against its study folder; throw to refuse it. */
  readonly parse: (job: unknown, dir: string) => P;
  readonly execute: JobExecutor<P>;
  /** Jobs run at once in this process (default 1). */
  readonly concurrency?: number;
  /** How long a job's lock lasts without renewal (ms, default 30000): the time to notice a dead worker. */
  readonly lockMs?: number;
  /** How this worker is named in the queue (default host:pid). */
  readonly name?: string;
  /** One line per job started, finished, failed or refused. */
  readonly log?: (line: string) => void;
}

/** A running queue worker. */
export interface QueueWorker {
  readonly name: string;
  /** Stop taking jobs, let the running ones finish, disconnect. */
  close(): Promise<void>;
}

/** How often a running job reports its heartbeat (and run-steps) at least (ms). */
const HEARTBEAT_MS = 2000;
/** Run-step reports are sent at most this often (ms). */
const PROGRESS_MS = 250;

/** Start a worker on the queue at `options.target`; it runs until {@link QueueWorker.close}. */
export async function serveQueue<P>(options: QueueWorkerOptions<P>): Promise<QueueWorker> {
  const name = options.name ?? `${hostname()}:${process.pid}`;
  const log = options.log ?? (() => {});
  const connection = connectionOf(options.target);
  const queue = new Queue(QUEUE_NAME, { connection });
  const lockMs = options.lockMs ?? 30_000;

  const processor = async (job: Job, token?: string) => {
    let data: QueuedJobData;
    let payload: P;
    try {
      data = envelopeSchema.parse(job.data) as QueuedJobData;
      payload = options.parse(data.job, data.dir);
    } catch (e) {
      const message =
        e instanceof z.ZodError ? z.prettifyError(e) : e instanceof Error ? e.message : String(e);
      log(`refused ${job.name} (${job.id}): ${message}`);
      throw new UnrecoverableError(`refused by worker ${name}: ${message}`);
    }
    // A machine that does not see the shared folder must not create it locally: fail (and retry elsewhere).
    if (!existsSync(data.dir))
      throw new Error(`${data.dir}: study folder not found on ${name} (not shared here?)`);
    const states = await Promise.all(data.deps.map((d) => queue.getJobState(d)));
    if (!states.every((s) => s === 'completed')) {
      // Promoted before its dependencies completed: park it again.
      await job.moveToDelayed(Date.now() + 100 * 365 * 24 * 3600 * 1000, token);
      throw new DelayedError();
    }
    const attempt = randomUUID().slice(0, 8);
    let steps = 0;
    let sent = 0;
    const report = () => {
      sent = Date.now();
      const progress: QueuedProgress = { steps, attempt, worker: name, at: sent };
      job.updateProgress(progress as unknown as object).catch(() => {});
    };
    report();
    const heartbeat = setInterval(report, HEARTBEAT_MS);
    log(`start ${data.id}`);
    const started = Date.now();
    try {
      await options.execute(payload, (n) => {
        steps += n;
        if (Date.now() - sent >= PROGRESS_MS) report();
      });
    } catch (e) {
      log(
        `failed ${data.id} (attempt ${job.attemptsMade + 1}): ${e instanceof Error ? e.message : String(e)}`,
      );
      throw e;
    } finally {
      clearInterval(heartbeat);
    }
    report();
    log(`done ${data.id} (${steps} run-steps, ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  };

  const worker = new Worker(QUEUE_NAME, processor, {
    connection,
    name,
    concurrency: options.concurrency ?? 1,
    lockDuration: lockMs,
    stalledInterval: Math.max(1000, Math.floor(lockMs / 2)),
    maxStalledCount: 2,
    autorun: true,
  });
  worker.on('completed', (job: Job) => {
    const dependents = (job.data as Partial<QueuedJobData>).dependents;
    if (Array.isArray(dependents)) releaseReady(queue, dependents).catch(() => {});
  });
  worker.on('error', (e) => log(`queue error: ${e.message}`));
  await worker.waitUntilReady();
  let closing: Promise<void> | undefined;
  return {
    name,
    close: () => {
      closing ??= worker.close().then(() => queue.close());
      return closing;
    },
  };
}
