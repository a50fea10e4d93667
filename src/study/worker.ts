/**
 * Entry point of a study worker process (forked by {@link ./pool.ts}): executes the jobs it is
 * sent, one at a time, and reports progress, completion and failure over the IPC channel.
 */
import { executeJob, type StudyJob } from './jobs.js';

/** Messages from the coordinator. */
export type ToWorker = { type: 'job'; id: string; job: StudyJob };
/** Messages to the coordinator. */
export type FromWorker =
  | { type: 'steps'; id: string; n: number }
  | { type: 'done'; id: string }
  | { type: 'failed'; id: string; message: string };

function send(msg: FromWorker): void {
  process.send?.(msg);
}

process.on('message', (msg: ToWorker) => {
  if (msg.type !== 'job') return;
  executeJob(msg.job, (n) => send({ type: 'steps', id: msg.id, n })).then(
    () => send({ type: 'done', id: msg.id }),
    (e: unknown) => send({ type: 'failed', id: msg.id, message: e instanceof Error ? e.message : String(e) }),
  );
});
process.on('disconnect', () => process.exit(0));
