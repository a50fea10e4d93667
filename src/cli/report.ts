/**
 * `twinscope report DIR`: write DIR/report/index.html, one self-contained interactive HTML page of a
 * study or sweep (spec, runs and final metrics, failures, every plot), and each plot as SVG and PNG
 * under DIR/report/plots/. `twinscope run` calls {@link reportStudy} at the end of a study or sweep.
 */
import type { Command } from 'commander';
import type { CliIo } from './io.js';

/** The exit-code section of `twinscope --help` (also in README.md). */
export const EXIT_CODES_HELP =
  '\nExit codes:\n' +
  '  0  success\n' +
  '  1  the work failed (a failed run or job, a failed σ = 0 control, a write error)\n' +
  '  2  bad input (usage errors, invalid options, specs or data files, not a run / study directory,\n' +
  '     an output folder in use by another twinscope process)\n';

/**
 * Write the report of study or sweep directory `dir` (every figure is drawn here) and print the
 * figures' folder and `report   DIR/report/index.html` on stdout. A directory without a valid study.json or sweep.json is refused with exit code 2.
 */
export async function reportStudy(dir: string, io: CliIo): Promise<string> {
  const { writeReport } = await import('../report/html.js');
  const { join } = await import('node:path');
  const { withFolderLock } = await import('../util/folder-lock.js');
  // DIR/report/ has one writer at a time. A directory that is not a study or sweep: NotAStudyError,
  // an InputError (exit code 2), and no report/ folder is left behind.
  const result = await withFolderLock(join(dir, 'report'), () => writeReport(dir));
  if (result.plots.length > 0) {
    const { dirname } = await import('node:path');
    io.stdout(`plots    ${join(dirname(result.html), 'plots')}/ (${result.plots.length})\n`);
  }
  io.stdout(`report   ${result.html}\n`);
  return result.html;
}

/** Register `twinscope report`. */
export function registerReportCommand(program: Command, io: CliIo): void {
  program
    .command('report')
    .description(
      'write DIR/report/index.html: one self-contained, interactive page of a study or sweep (spec, runs, plots)',
    )
    .argument('<dir>', 'study or sweep directory (written by twinscope run)')
    .addHelpText(
      'after',
      '\nThe page needs no network: vega, vega-lite, vega-embed and the data are inlined. A study with\n' +
        'failed or unfinished runs is reported too, with those runs marked.\n' +
        '\nExamples:\n  twinscope report studies/butterfly-moons\n' +
        '  twinscope report studies/sloppy-linear   (a sweep: runs with their grid values, embeddings)\n' +
        '  twinscope run pipelines/butterfly-moons.json --out studies/moons   (writes the report at the end)\n',
    )
    .action(async (dir: string) => {
      await reportStudy(dir, io);
    });
}
