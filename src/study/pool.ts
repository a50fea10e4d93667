/**
 * Executes a study's jobs as a dependency graph: a job starts when every job it depends on has
 * finished, in a pool of worker processes (child_process.fork of {@link ./worker.ts}) so that all
 * cores are used and a crash takes down one job, not the study. With one worker the jobs run in
 * this process. A failed job fails the jobs that depend on it; the others go on.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { executeJob, type StudyJob } from './jobs.js';
import type { FromWorker, ToWorker } from './worker.js';

/** A job and the ids of the jobs it needs. */
export interface PoolJob {
  readonly id: string;
  readonly deps: readonly string[];
  readonly job: StudyJob;
  /** Checked when the job becomes ready: true if its output already exists (it is then not run). */
  readonly done?: () => boolean;
}

export interface PoolOptions {
  /** Worker processes; 1 runs every job in this process. */
  readonly workers: number;
  readonly onSteps?: (n: number) => void;
  readonly onFinished?: (job: PoolJob, outcome: 'done' | 'skipped' | 'failed', message?: string) => void;
}

/** Jobs that failed (with their error) or could not run because a dependency failed. */
export interface PoolResult {
  readonly failed: { id: string; message: string }[];
  readonly blocked: string[];
}

/** The compiled worker script: next to this module, or in the package's dist/ when run from source. */
export function workerScript(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'worker.js'), join(here, '..', '..', 'dist', 'study', 'worker.js')];
  const found = candidates.find((p) => existsSync(p));
  if (!found)
    throw new Error(`study worker script not found (looked for ${candidates.join(', ')}); run npm run build`);
  return found;
}

/** Run `jobs` (in an order compatible with their dependencies) and resolve when none is left. */
export async function runPool(jobs: readonly PoolJob[], options: PoolOptions): Promise<PoolResult> {
  const byId = new Map(jobs.map((j) => [j.id, j]));
  for (const j of jobs) {
    for (const d of j.deps) if (!byId.has(d)) throw new Error(`job ${j.id} depends on unknown job ${d}`);
  }
  const state = new Map<string, 'waiting' | 'running' | 'ok' | 'failed' | 'blocked'>(
    jobs.map((j) => [j.id, 'waiting']),
  );
  const failed: PoolResult['failed'] = [];
  const blocked: string[] = [];
  const finish = (job: PoolJob, outcome: 'done' | 'skipped' | 'failed', message?: string) => {
    state.set(job.id, outcome === 'failed' ? 'failed' : 'ok');
    if (outcome === 'failed') failed.push({ id: job.id, message: message ?? 'failed' });
    options.onFinished?.(job, outcome, message);
  };
  /** The next job whose dependencies are done; marks jobs blocked by failures on the way. */
  const nextReady = (): PoolJob | undefined => {
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
        await executeJob(j.job, onSteps);
        finish(j, 'done');
      } catch (e) {
        finish(j, 'failed', e instanceof Error ? e.message : String(e));
      }
    }
    return { failed, blocked };
  }

  const script = workerScript();
  return new Promise<PoolResult>((resolve) => {
    const busy = new Map<ChildProcess, PoolJob>();
    const idle: ChildProcess[] = [];
    const spawn = (): ChildProcess => {
      const child = fork(script, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      child.on('message', (msg: FromWorker) => {
        const job = busy.get(child);
        if (!job || msg.id !== job.id) return;
        if (msg.type === 'steps') return onSteps(msg.n);
        busy.delete(child);
        finish(job, msg.type === 'done' ? 'done' : 'failed', msg.type === 'failed' ? msg.message : undefined);
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
        child.send({ type: 'job', id: job.id, job: job.job } satisfies ToWorker);
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
