/**
 * The local executor of a job graph: a job starts when every job it depends on has finished, in a
 * pool of worker processes (child_process.fork of a worker script that calls {@link serveJobs}) so
 * that all cores are used and a crash takes down one job, not the whole graph. With one worker the
 * jobs run in this process. A failed job blocks the jobs that depend on it; the others go on.
 *
 * The pool knows nothing of what a job does: jobs are plain JSON payloads, and the caller names the
 * function that executes one (in process) and the worker script that does the same in a child.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromWorker, JobExecutor, ToWorker } from './worker-loop.js';

/** A job (a plain-JSON payload) and the ids of the jobs it needs. */
export interface PoolJob<J = unknown> {
  readonly id: string;
  readonly deps: readonly string[];
  readonly job: J;
  /** Checked when the job becomes ready: true if its output already exists (it is then not run). */
  readonly done?: () => boolean;
}

export interface PoolOptions<J> {
  /** Worker processes; 1 runs every job in this process. */
  readonly workers: number;
  /** Runs a job in this process (workers = 1). */
  readonly execute: JobExecutor<J>;
  /** The compiled worker script forked for workers > 1 (it calls `serveJobs` with the same executor). */
  readonly workerScript: () => string;
  readonly onSteps?: (n: number) => void;
  /** Called as each job ends; `result` is what the executor resolved to (for `done` jobs). */
  readonly onFinished?: (
    job: PoolJob<J>,
    outcome: 'done' | 'skipped' | 'failed',
    message?: string,
    result?: unknown,
  ) => void;
}

/** Jobs that failed (with their error) or could not run because a dependency failed. */
export interface PoolResult {
  readonly failed: { id: string; message: string }[];
  readonly blocked: string[];
}

/**
 * The compiled JavaScript of a worker script, `src/<path>` (e.g. `study/worker.js`): the file itself
 * when twinscope runs from dist/, or its build in the package's dist/ when it runs from source (tests).
 */
export function compiledScript(path: string): string {
  const src = join(dirname(fileURLToPath(import.meta.url)), '..');
  const candidates = [join(src, path), join(src, '..', 'dist', path)];
  const found = candidates.find((p) => p.endsWith('.js') && existsSync(p));
  if (!found)
    throw new Error(`worker script not found (looked for ${candidates.join(', ')}); run npm run build`);
  return found;
}

/** Run `jobs` (in an order compatible with their dependencies) and resolve when none is left. */
export async function runPool<J>(jobs: readonly PoolJob<J>[], options: PoolOptions<J>): Promise<PoolResult> {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  for (const j of jobs) {
    for (const d of j.deps) if (!byId.has(d)) throw new Error(`job ${j.id} depends on unknown job ${d}`);
  }
  const state = new Map<string, 'waiting' | 'running' | 'ok' | 'failed' | 'blocked'>(
    jobs.map((j) => [j.id, 'waiting']),
  );
  const failed: PoolResult['failed'] = [];
  const blocked: string[] = [];
  const finish = (
    job: PoolJob<J>,
    outcome: 'done' | 'skipped' | 'failed',
    message?: string,
    result?: unknown,
  ) => {
    state.set(job.id, outcome === 'failed' ? 'failed' : 'ok');
    if (outcome === 'failed') failed.push({ id: job.id, message: message ?? 'failed' });
    options.onFinished?.(job, outcome, message, result);
  };
  /** The next job whose dependencies are done; marks jobs blocked by failures on the way. */
  const nextReady = (): PoolJob<J> | undefined => {
    for (const j of jobs) {
      if (state.get(j.id) !== 'waiting') continue;
      const deps = j.deps.map((d) => state.get(d));
      if (deps.some((s) => s === 'failed' || s === 'blocked')) {
        state.set(j.id, 'blocked');
        blocked.push(j.id);
        continue;
      }
      if (deps.every((s) => s === 'ok')) {
        if (j.done?.()) {
          finish(j, 'skipped');
          continue;
        }
        return j;
      }
    }
    return undefined;
  };
  const onSteps = options.onSteps ?? (() => {});

  if (options.workers <= 1) {
    for (let j = nextReady(); j; j = nextReady()) {
      state.set(j.id, 'running');
      try {
        const result = await options.execute(j.job, onSteps);
        finish(j, 'done', undefined, result);
      } catch (e) {
        finish(j, 'failed', e instanceof Error ? e.message : String(e));
      }
    }
    return { failed, blocked };
  }

  const script = options.workerScript();
  return new Promise<PoolResult>((resolve) => {
    const busy = new Map<ChildProcess, PoolJob<J>>();
    const idle: ChildProcess[] = [];
    const spawn = (): ChildProcess => {
      const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.on('message', (msg: FromWorker) => {
        const job = busy.get(child);
        if (!job || msg.id !== job.id) return;
        if (msg.type === 'steps') return onSteps(msg.n);
        busy.delete(child);
        if (msg.type === 'done') finish(job, 'done', undefined, msg.result);
        else finish(job, 'failed', msg.message);
        idle.push(child);
        pump();
      });
      child.on('exit', (code, signal) => {
        const job = busy.get(child);
        const i = idle.indexOf(child);
        if (i >= 0) idle.splice(i, 1);
        if (job) {
          busy.delete(child);
          finish(job, 'failed', `worker process exited (${signal ?? `code ${code}`}) while running it`);
          idle.push(spawn());
        }
        pump();
      });
      return child;
    };
    let ended = false;
    const pump = () => {
      if (ended) return;
      while (idle.length > 0) {
        const job = nextReady();
        if (!job) break;
        const child = idle.pop() as ChildProcess;
        busy.set(child, job);
        state.set(job.id, 'running');
        child.send({ type: 'job', id: job.id, job: job.job } satisfies ToWorker<J>);
      }
      if (busy.size === 0) {
        ended = true;
        for (const c of idle) c.disconnect();
        resolve({ failed, blocked });
      }
    };
    for (let i = 0; i < options.workers; i++) idle.push(spawn());
    pump();
  });
}
