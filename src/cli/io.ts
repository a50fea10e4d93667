/** Shared CLI plumbing: where output goes, the exit-code conventions and option parsers. */
import { InvalidArgumentError } from 'commander';
import { InputError } from '../util/errors.js';

/** 0: success. */
export const EXIT_OK = 0;
/** 1: the requested work failed (an engine error, a failed run, a write error). */
export const EXIT_FAILURE = 1;
/** 2: bad input (usage errors, invalid option values, invalid specs or data, wrong folders, a folder in use). */
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

/** A bad-input error raised by a command action (exit code 2, as every {@link InputError}). */
export class UsageError extends InputError {
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

/** A positive integer for commander, or a usage error. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError(`expected a positive integer, got '${value}'`);
  }
  return n;
}

/** A positive finite number (e.g. `0.5`, `1e-3`) for commander, or a usage error. */
export function parsePositiveNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) {
    throw new InvalidArgumentError(`expected a positive number, got '${value}'`);
  }
  return n;
}
