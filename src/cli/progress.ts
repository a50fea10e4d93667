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
