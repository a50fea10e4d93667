/**
 * `twinscope status DIR [--queue URL] [--json]`: where a study or sweep stands, from any machine
 * that sees DIR: who holds its folder, whether it finished (status.json: complete, failed, blocked,
 * diverged) and, with --queue, each of its queued jobs (DIR/queue.json) as the queue sees it:
 * waiting, parked (waiting for dependencies), active (with its worker and heartbeat age), done,
 * failed.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { QueuedJobState } from '../exec/queue.js';
import type { StudyStatus } from '../results/study-files.js';
import type { LockState } from '../util/folder-lock.js';
import { type CliIo, UsageError } from './io.js';

/** What `status --json` prints. */
export interface StatusReport {
  readonly dir: string;
  readonly kind: 'study' | 'sweep';
  /** Whether a writer (a `run`) holds the folder now. */
  readonly lock: LockState;
  /** status.json, once the study or sweep has finished (absent while it runs or before it ran). */
  readonly status?: StudyStatus;
  /** With --queue: the jobs of DIR/queue.json as the queue sees them. */
  readonly queue?: {
    readonly url: string;
    /** Workers connected to the queue now. */
    readonly workers: number;
    readonly counts: Record<QueuedJobState['state'], number>;
    readonly jobs: QueuedJobState[];
  };
}

export function registerStatusCommand(program: Command, io: CliIo): void {
  program
    .command('status')
    .description('where a study or sweep stands: its lock, status.json and (with --queue) its queued jobs')
    .argument('<dir>', 'study or sweep directory')
    .option('--queue <url>', 'the Redis of the queue it runs on: redis://[:password@]host:port[/db]')
    .option('--json', 'print the status as JSON')
    .action(async (dir: string, options: { queue?: string; json?: boolean }) => {
      const abs = resolve(dir);
      const kind = existsSync(join(abs, 'study.json'))
        ? 'study'
        : existsSync(join(abs, 'sweep.json'))
          ? 'sweep'
          : undefined;
      if (!kind) throw new UsageError(`${dir}: not a study or sweep directory (no study.json or sweep.json)`);
      const { lockState } = await import('../util/folder-lock.js');
      const { readStatus } = await import('../results/study-files.js');
      const read = readStatus(abs, kind);
      let queue: StatusReport['queue'];
      if (options.queue) {
        const { parseQueueUrl, queuedJobStates, redactUrl } = await import('../exec/queue.js');
        const { readQueuedJobs } = await import('../study/queue-file.js');
        const { jobs, workers } = await queuedJobStates(parseQueueUrl(options.queue), readQueuedJobs(abs));
        const counts = { waiting: 0, parked: 0, active: 0, done: 0, failed: 0, missing: 0 };
        for (const j of jobs) counts[j.state]++;
        queue = { url: redactUrl(options.queue), workers, counts, jobs };
      }
      const report: StatusReport = {
        dir: abs,
        kind,
        lock: lockState(abs),
        ...(read.status && { status: read.status }),
        ...(queue && { queue }),
      };
      if (options.json) {
        io.stdout(`${JSON.stringify(report, null, 2)}\n`);
        return;
      }
      const lock = report.lock;
      io.stdout(`${kind} ${abs}\n`);
      io.stdout(
        lock.state === 'free'
          ? 'not running here (folder not locked)\n'
          : `${lock.state === 'held' ? 'running' : 'stale lock'}: ${lock.holder ? `pid ${lock.holder.pid} on ${lock.holder.hostname} since ${lock.holder.started}` : 'holder unknown'}\n`,
      );
      const s = report.status;
      if (!s) io.stdout(`not finished: ${read.warning}\n`);
      else {
        io.stdout(
          `finished: ${s.complete ? 'complete' : 'incomplete'}, ${s.failed.length} failed, ${s.blocked.length} blocked, ${s.diverged.length} diverged\n`,
        );
        for (const f of s.failed) io.stdout(`  failed ${f.id}: ${f.message}\n`);
      }
      if (queue) {
        const c = queue.counts;
        io.stdout(
          `queue ${queue.url}: ${queue.workers} worker(s) connected; jobs: ${c.waiting} waiting, ${c.parked} parked, ${c.active} active, ${c.done} done, ${c.failed} failed${c.missing ? `, ${c.missing} not in the queue` : ''}\n`,
        );
        for (const j of queue.jobs) {
          if (j.state === 'active') {
            const age = j.heartbeatAgeMs === undefined ? '?' : `${(j.heartbeatAgeMs / 1000).toFixed(1)} s`;
            io.stdout(
              `  active ${j.id}: ${j.worker ?? '?'}, ${j.steps ?? 0} run-steps, heartbeat ${age} ago\n`,
            );
          }
          if (j.state === 'failed')
            io.stdout(`  failed ${j.id} after ${j.attempts} attempt(s): ${j.message}\n`);
        }
      }
    });
}
