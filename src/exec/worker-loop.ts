/**
 * The loop of a pool worker process (forked by {@link ./pool.ts}): executes the jobs it is sent, one
 * at a time, and reports progress, completion and failure over the IPC channel. A worker script is
 * one line: `serveJobs(executor)`.
 */
/**
 * Executes one job payload; `onSteps(n)` reports n more units of progress (run-steps). What it
 * resolves to (plain JSON, e.g. the job's timings) is handed to the pool's `onFinished`.
 */
export type JobExecutor<J> = (job: J, onSteps: (n: number) => void) => Promise<unknown>;

/** Messages from the coordinator. */
export type ToWorker<J = unknown> = { type: 'job'; id: string; job: J };
/** Messages to the coordinator. */
export type FromWorker =
  | { type: 'steps'; id: string; n: number }
  | { type: 'done'; id: string; result?: unknown }
  | { type: 'failed'; id: string; message: string };

function send(msg: FromWorker): void {
  process.send?.(msg);
}

/** Serve jobs from the parent process with `execute` until the IPC channel closes. */
export function serveJobs<J>(execute: JobExecutor<J>): void {
  process.on('message', (msg: ToWorker<J>) => {
    if (msg.type !== 'job') return;
    execute(msg.job, (n) => send({ type: 'steps', id: msg.id, n })).then(
      (result) => send({ type: 'done', id: msg.id, ...(result !== undefined && { result }) }),
      (e: unknown) =>
        send({ type: 'failed', id: msg.id, message: e instanceof Error ? e.message : String(e) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}
