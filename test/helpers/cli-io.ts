/** A CLI output sink that records what a command printed, for in-process CLI tests. */
import type { CliIo } from '../../src/cli/io.js';

export function capture(): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout(text: string) {
      io.out += text;
    },
    stderr(text: string) {
      io.err += text;
    },
  };
  return io;
}
