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

/**
 * Least time between two progress messages of a job. A message per training step cost about 3 %
 * of a worker's time in serialization alone (MLP 784-256-256-10, one thread); the coordinator's
 * progress bar redraws at most every 100 ms anyway.
 */
export const PROGRESS_INTERVAL_MS = 100;

/**
 * `onSteps` for job `id`: adds up the steps and sends them at most every
 * {@link PROGRESS_INTERVAL_MS} (the first report at once; steps reported within the interval go
 * out at its end); `flush` sends what is left (before the job's `done` or `failed`).
 */
export function progressSender(id: string, post: (msg: FromWorker) => void = send) {
  let pending = 0;
  let sentAt = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  const flush = () => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending === 0) return;
    post({ type: 'steps', id, n: pending });
    pending = 0;
    sentAt = Date.now();
  };
  const onSteps = (n: number) => {
    pending += n;
    const wait = sentAt + PROGRESS_INTERVAL_MS - Date.now();
    if (wait <= 0) flush();
    else timer ??= setTimeout(flush, wait).unref();
  };
  return { onSteps, flush };
}

/** Serve jobs from the parent process with `execute` until the IPC channel closes. */
export function serveJobs<J>(execute: JobExecutor<J>): void {
  process.on('message', (msg: ToWorker<J>) => {
    if (msg.type !== 'job') return;
    const progress = progressSender(msg.id);
    execute(msg.job, progress.onSteps).then(
      (result) => {
        progress.flush();
        send({ type: 'done', id: msg.id, ...(result !== undefined && { result }) });
      },
      (e: unknown) => {
        progress.flush();
        send({ type: 'failed', id: msg.id, message: e instanceof Error ? e.message : String(e) });
      },
    );
  });
  process.on('disconnect', () => process.exit(0));
}
