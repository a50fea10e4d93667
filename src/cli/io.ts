/** Shared CLI plumbing: where output goes and the exit-code conventions. */

/** 0: success. */
export const EXIT_OK = 0;
/** 1: the requested work failed (an engine error, a failed run, a write error). */
export const EXIT_FAILURE = 1;
/** 2: bad input (usage errors, invalid option values, invalid specs). */
export const EXIT_USAGE = 2;

/** Output sinks of one CLI invocation; tests pass their own to capture output. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

export const defaultIo: CliIo = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** A bad-input error raised by a command action (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** Run `fn`, turning a thrown spec/input error into a {@link UsageError} (exit code 2). */
export function asUsageError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
