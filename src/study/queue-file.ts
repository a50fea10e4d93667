/**
 * DIR/queue.json: the queue ids of a study's (or sweep's) jobs, written by `run --queue` when it
 * enqueues them, so that `twinscope status DIR --queue URL` can find them from any machine.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomic-file.js';

/** The file's format tag. */
const FORMAT = 'twinscope-queue/1';

/** DIR/queue.json: job id (`train:s0`) to queue id, for every job enqueued so far. */
interface QueueFile {
  readonly format: typeof FORMAT;
  readonly jobs: Record<string, string>;
}

/** The queue ids recorded for `dir` (empty when it has no queue.json or it cannot be read). */
export function readQueuedJobs(dir: string): Record<string, string> {
  const file = join(dir, 'queue.json');
  if (!existsSync(file)) return {};
  try {
    const json = JSON.parse(readFileSync(file, 'utf8')) as Partial<QueueFile>;
    if (json.format !== FORMAT || typeof json.jobs !== 'object' || json.jobs === null) return {};
    return Object.fromEntries(Object.entries(json.jobs).filter(([, v]) => typeof v === 'string'));
  } catch {
    return {};
  }
}

/** Add `ids` (job id to queue id) to DIR/queue.json (replacing the queue ids of the same jobs). */
export function recordQueuedJobs(dir: string, ids: Record<string, string>): void {
  const file: QueueFile = { format: FORMAT, jobs: { ...readQueuedJobs(dir), ...ids } };
  writeFileAtomic(join(dir, 'queue.json'), [new TextEncoder().encode(`${JSON.stringify(file, null, 2)}\n`)]);
}
