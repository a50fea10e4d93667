/**
 * The `twinscope` command line. bin/twinscope.js calls {@link main}; tests call {@link buildProgram}
 * or {@link main} directly. Each command lives in its own file under src/cli/ and registers itself
 * on the program here. Heavy modules (engines, ONNX Runtime, tfjs) are imported inside the command
 * actions, so `--help` and usage errors stay fast.
 *
 * Exit codes: 0 success, 1 the work failed, 2 bad input: usage errors, invalid options, specs or data,
 * a folder that is not a run / study directory, an output folder in use (any InputError, mapped here).
 */
import { Command, CommanderError } from 'commander';
import { InputError } from '../util/errors.js';
import { toolkitVersion } from '../version.js';
import { registerBenchCommand } from './bench.js';
import { registerCompareCommand } from './compare.js';
import { registerEmbedCommand } from './embed.js';
import { type CliIo, defaultIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './io.js';
import { registerMaterializeCommand } from './materialize.js';
import { registerMergeCommand } from './merge.js';
import { EXIT_CODES_HELP, registerReportCommand } from './report.js';
import { registerRunCommand } from './run.js';
import { registerRunDirCommands } from './run-dir.js';
import { registerSharpnessCommand } from './sharpness.js';
import { registerStatusCommand } from './status.js';
import { registerTrainCommand } from './train.js';
import { registerWorkerCommand } from './worker.js';

/**
 * The commander program with every command registered. It never calls process.exit: errors and
 * help/version exits surface as {@link CommanderError} from `parseAsync` (exitOverride), and all
 * output goes through `io`.
 */
export function buildProgram(io: CliIo = defaultIo): Command {
  const program = new Command('twinscope');
  program
    .description(
      'Train twin neural networks that differ by a tiny perturbation and measure how they diverge.',
    )
    .version(toolkitVersion(), '-V, --version', 'print the twinscope version')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run with --help for usage)');
  registerRunCommand(program, io);
  registerTrainCommand(program, io);
  registerRunDirCommands(program, io);
  registerSharpnessCommand(program, io);
  registerBenchCommand(program, io);
  registerReportCommand(program, io);
  registerEmbedCommand(program, io);
  registerCompareCommand(program, io);
  registerMergeCommand(program, io);
  registerMaterializeCommand(program, io);
  registerWorkerCommand(program, io);
  registerStatusCommand(program, io);
  program.addHelpText('after', EXIT_CODES_HELP);
  return program;
}

/** Map a thrown error to an exit code, reporting it on stderr. */
function exitCodeOf(err: unknown, io: CliIo = defaultIo): number {
  if (err instanceof CommanderError) {
    // commander already printed the message (or the help / version text).
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return EXIT_OK;
    if (err.code === 'commander.help') return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    return EXIT_USAGE;
  }
  // Bad input of any stage (spec, data, folders, locks, the CLI's own UsageError): exit 2.
  if (err instanceof InputError) {
    io.stderr(`error: ${err.message}\n`);
    return EXIT_USAGE;
  }
  io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.TWINSCOPE_DEBUG && err instanceof Error && err.stack) io.stderr(`${err.stack}\n`);
  return EXIT_FAILURE;
}

/** Run the CLI on `argv` (process.argv form: node, script, ...args) and resolve with the exit code. */
export async function main(argv: readonly string[] = process.argv, io: CliIo = defaultIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv]);
    return EXIT_OK;
  } catch (err) {
    return exitCodeOf(err, io);
  }
}
