/**
 * `twinscope worker --queue URL`: execute the jobs that `twinscope run SPEC --out DIR --queue URL`
 * enqueues, on any machine that sees DIR at the same path (see docs/distributed.md). Runs until
 * SIGTERM or SIGINT: the first finishes the running job and stops; a second leaves at once (the job
 * is then handed to another worker when its lock expires, and resumes from its last checkpoint).
 */
import type { Command } from 'commander';
import { type CliIo, parsePositiveInt } from './io.js';

export function registerWorkerCommand(program: Command, io: CliIo): void {
  program
    .command('worker')
    .description('execute jobs of studies run with --queue (on this or any machine sharing their folders)')
    .requiredOption('--queue <url>', 'the Redis of the queue: redis://[:password@]host:port[/db]')
    .option('--concurrency <n>', 'jobs run at once by this worker process', parsePositiveInt, 1)
    .option(
      '--lock-ms <ms>',
      'how long a job stays locked without renewal: the time to notice a lost worker',
      parsePositiveInt,
      30_000,
    )
    .option('--quiet', 'no line per job on stderr')
    .addHelpText(
      'after',
      '\nSIGTERM (or Ctrl-C) finishes the running job and stops; a second one stops at once.\n' +
        '\nExamples:\n  twinscope worker --queue redis://:secret@10.0.0.5:6379\n' +
        '  twinscope worker --queue redis://127.0.0.1:6379/2 --concurrency 2\n',
    )
    .action(async (options: { queue: string; concurrency: number; lockMs: number; quiet?: boolean }) => {
      const { parseQueueUrl, redactUrl } = await import('../exec/queue.js');
      const target = parseQueueUrl(options.queue);
      const { serveQueue } = await import('../exec/queue-worker.js');
      const { parseQueuedJob } = await import('../study/queued-jobs.js');
      const { executeJob } = await import('../study/jobs.js');
      const log = (line: string) => {
        if (!options.quiet) io.stderr(`${new Date().toISOString()} ${line}\n`);
      };
      const worker = await serveQueue({
        target,
        parse: parseQueuedJob,
        execute: executeJob,
        concurrency: options.concurrency,
        lockMs: options.lockMs,
        log,
      });
      io.stderr(`worker ${worker.name}: serving ${redactUrl(options.queue)}\n`);
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals) => {
          if (stopping) {
            io.stderr(`worker ${worker.name}: ${signal} again, leaving the running job to another worker\n`);
            process.exit(signal === 'SIGINT' ? 130 : 143);
          }
          stopping = true;
          io.stderr(`worker ${worker.name}: ${signal}, finishing the running job\n`);
          worker.close().then(resolve, resolve);
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      io.stderr(`worker ${worker.name}: stopped\n`);
    });
}
