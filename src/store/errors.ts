/**
 * Errors raised by the trajectory store.
 */

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
