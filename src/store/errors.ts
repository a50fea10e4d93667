/**
 * Errors raised by the trajectory store.
 */
import { InputError } from '../util/errors.js';

/** A problem with a store file; the message always starts with the file's name (`checkpoints.arrow: …`). */
export class StoreError extends Error {
  /** The file's base name (`checkpoints.arrow` or `metrics.arrow`), when the error concerns one file. */
  readonly file: string | undefined;

  /**
   * @param message - The full message, already prefixed with the file name.
   * @param file - The file's base name.
   */
  constructor(message: string, file?: string) {
    super(message);
    this.name = 'StoreError';
    this.file = file;
  }
}

/** A folder given as a run directory is not one (no run.json): bad input, exit code 2. */
export class NotARunDirError extends InputError {
  override name = 'NotARunDirError';
}
