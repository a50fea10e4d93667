/**
 * The one base class of bad-input errors. Every error that means "the input is wrong, not the work"
 * (an invalid spec or option, a bad data file, a folder that is not a run or study directory, an
 * output folder in use by another process) extends {@link InputError}, and the CLI maps it to exit
 * code 2 in one place (src/cli/main.ts). Anything else that is thrown is exit code 1: the work failed.
 */

/** Bad input: the command was refused before (or instead of) doing its work. The CLI exits with 2. */
export class InputError extends Error {
  override name = 'InputError';
}
