/**
 * The one base class of bad-input errors. Every error that means "the input is wrong, not the work"
 * (an invalid spec or option, a bad data file, a folder that is not a run or study directory, an
 * output folder in use by another process) extends {@link InputError}, and the CLI maps it to exit
 * code 2 in one place (src/cli/main.ts). Anything else that is thrown is exit code 1: the work failed,
 * among them an {@link IntegrityError} (a damaged file).
 */

/** Bad input: the command was refused before (or instead of) doing its work. The CLI exits with 2. */
export class InputError extends Error {
  override name = 'InputError';
}

/**
 * A finalized file failed its integrity check on read: its checksum (recorded in the JSON that
 * indexes it, or its own seal, util/sealed-json.ts) does not match, or it is missing or unreadable
 * although its index lists it. Not bad input: the CLI exits with 1, naming the file.
 */
export class IntegrityError extends Error {
  override name = 'IntegrityError';

  /**
   * @param message - The full message, starting with the file's path.
   * @param file - The file's path.
   */
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}
