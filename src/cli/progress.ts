/** A progress bar on stderr (cli-progress): steps done, loss, rate and ETA. Silent when stderr is not a TTY
 * except for a line every 10%. */
import cliProgress from 'cli-progress';
import type { CliIo } from './io.js';

export interface ProgressBar {
  start(total: number, from: number): void;
  update(done: number, loss: number): void;
  stop(): void;
}

export function createProgressBar(io: CliIo): ProgressBar {
  if (!process.stderr.isTTY) {
    let total = 0;
    let lastDecile = -1;
    return {
      start: (t) => {
        total = t;
      },
      update: (done, loss) => {
        const decile = Math.floor((10 * done) / Math.max(total, 1));
        if (decile !== lastDecile) {
          lastDecile = decile;
          io.stderr(`step ${done}/${total} loss ${loss.toPrecision(4)}\n`);
        }
      },
      stop: () => {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      format: 'train [{bar}] {value}/{total} steps | loss {loss} | {eta_formatted} left',
      stream: process.stderr,
      etaBuffer: 200,
    },
    cliProgress.Presets.shades_classic,
  );
  return {
    start: (total, from) => bar.start(total, from, { loss: '-' }),
    update: (done, loss) => bar.update(done, { loss: loss.toPrecision(4) }),
    stop: () => bar.stop(),
  };
}

/** One progress display for a whole study: run-steps trained across all workers, jobs, ETA. */
export interface StudyProgress {
  round(label: string, runSteps: number, jobs: number, workers: number): void;
  steps(n: number): void;
  job(id: string, outcome: 'done' | 'skipped' | 'failed', message?: string): void;
  stop(): void;
}

export function createStudyProgress(io: CliIo, enabled: boolean): StudyProgress {
  let done = 0;
  let total = 0;
  let jobsDone = 0;
  let jobs = 0;
  const tty = enabled && Boolean(process.stderr.isTTY);
  const bar = tty
    ? new cliProgress.SingleBar(
        {
          format: 'study [{bar}] {value}/{total} run-steps | jobs {jobsDone}/{jobs} | {eta_formatted} left',
          stream: process.stderr,
          etaBuffer: 500,
          fps: 5,
        },
        cliProgress.Presets.shades_classic,
      )
    : undefined;
  let lastDecile = -1;
  let active = false;
  const payload = () => ({ jobsDone, jobs });
  return {
    round: (label, runSteps, n, workers) => {
      done = 0;
      total = runSteps;
      jobsDone = 0;
      jobs = n;
      lastDecile = -1;
      bar?.stop();
      io.stderr(`${label}: ${n} jobs, ${runSteps} run-steps to train, ${workers} worker(s)\n`);
      // A round with nothing to train (everything done, or measuring only) gets no bar.
      active = total > 0;
      if (active) bar?.start(total, 0, payload());
    },
    steps: (n) => {
      done += n;
      if (bar) return active ? bar.update(Math.min(done, total), payload()) : undefined;
      const decile = Math.floor((10 * done) / Math.max(total, 1));
      if (enabled && decile !== lastDecile) {
        lastDecile = decile;
        io.stderr(`  ${done}/${total} run-steps\n`);
      }
    },
    job: (id, outcome, message) => {
      jobsDone++;
      if (outcome === 'failed') {
        bar?.stop();
        io.stderr(`  failed ${id}: ${message}\n`);
      }
      if (active) bar?.update(Math.min(done, total), payload());
    },
    stop: () => bar?.stop(),
  };
}
