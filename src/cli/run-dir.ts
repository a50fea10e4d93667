/**
 * Commands on a run directory:
 *   twinscope verify DIR [--json] [--repair] check every file of a run, study, sweep or embedding
 *   twinscope inspect DIR [--json]           spec summary, checkpoints, final metrics, sizes
 *   twinscope export DIR --format parquet    the Arrow tables as Parquet (for DuckDB and friends)
 *   twinscope export DIR[@STEP] --format onnx --out FILE   a checkpoint as a standard ONNX model
 */
import { type Command, Option } from 'commander';
import type { CliIo } from './io.js';
import { UsageError } from './io.js';

export function registerRunDirCommands(program: Command, io: CliIo): void {
  program
    .command('verify')
    .description(
      'check a run, study, sweep or embedding directory: every file against its checksum, Arrow schemas and row counts, every run inside; lists temporary files left by killed writers',
    )
    .argument('<dir>', 'run, study, sweep or embedding directory')
    .option('--json', 'print the result as JSON')
    .option('--repair', 'remove temporary files left by killed writers (under the folder lock), then verify')
    .addHelpText(
      'after',
      '\nExit code 1 when a problem is found (with --json too: the JSON says which); 2 when DIR is none\n' +
        'of these (no run.json, study.json, sweep.json or embedding.json).\n' +
        '\nExamples:\n  twinscope verify runs/moons\n  twinscope verify studies/moons --json\n' +
        '  twinscope verify studies/moons --repair\n',
    )
    .action(async (dir: string, options: { json?: boolean; repair?: boolean }) => {
      const { verifyDir, repairDir } = await import('../study/verify-dir.js');
      let result = verifyDir(dir);
      let removed: { path: string; bytes: number }[] = [];
      if (options.repair && result.strayTemps.length > 0) ({ removed, after: result } = await repairDir(dir));
      if (options.json)
        io.stdout(`${JSON.stringify(options.repair ? { ...result, removed } : result, null, 2)}\n`);
      else {
        for (const t of removed) io.stdout(`removed ${t.path} (${t.bytes} bytes)\n`);
        if (result.ok) io.stdout(`${dir}: ok (${result.summary})\n`);
        else for (const p of result.problems) io.stdout(`${dir}: ${p}\n`);
      }
      if (!result.ok) throw new Error(`${dir}: ${result.problems.length} problem(s)`);
    });

  program
    .command('inspect')
    .description('summarize a run directory: spec, checkpoints, final metrics, file sizes')
    .argument('<dir>', 'run directory')
    .option('--json', 'print the summary as JSON')
    .addHelpText(
      'after',
      '\nExamples:\n  twinscope inspect runs/moons\n  twinscope inspect studies/moons/runs/s0/parent --json\n',
    )
    .action(async (dir: string, options: { json?: boolean }) => {
      const { inspectRun, formatInspection } = await import('../train/inspect.js');
      const info = inspectRun(dir);
      io.stdout(options.json ? `${JSON.stringify(info, null, 2)}\n` : formatInspection(info));
    });

  program
    .command('export')
    .description(
      'write the run tables as Parquet (readable by DuckDB without twinscope), or a checkpoint as a standard ONNX model',
    )
    .argument('<dir>', 'run directory; with --format onnx optionally DIR@STEP (default: the last checkpoint)')
    .addOption(
      new Option('--format <format>', 'output format').choices(['parquet', 'onnx']).default('parquet'),
    )
    .option('--to <dir>', 'parquet: output folder (default: the run directory)')
    .option('--out <file>', 'onnx: the model file to write')
    .addHelpText(
      'after',
      '\nONNX: opset 17, weights as initializers named after the layout (dense0.weight, ...), input `input`\n' +
        '[N, inputDim], output `logits` [N, outputDim]; loads in onnxruntime or any ONNX tool unchanged.\n' +
        '\nExamples:\n  twinscope export runs/moons --format parquet\n' +
        '  twinscope export runs/moons --to /tmp/moons-parquet && duckdb -c "SELECT * FROM \'/tmp/moons-parquet/metrics.parquet\'"\n' +
        '  twinscope export runs/mnist@500 --format onnx --out mnist-500.onnx\n',
    )
    .action(async (dir: string, options: { format: string; to?: string; out?: string }) => {
      if (options.format === 'onnx') {
        if (!options.out) throw new UsageError('--format onnx needs --out FILE (the model file to write)');
        if (options.to)
          throw new UsageError('--to is for --format parquet; use --out FILE with --format onnx');
        const { exportRunOnnx, parseRunTarget } = await import('../onnx/export-model.js');
        const { writeFileAtomic } = await import('../util/atomic-file.js');
        const target = parseRunTarget(dir);
        const { bytes, step } = exportRunOnnx(target.dir, target.step);
        writeFileAtomic(options.out, [bytes]);
        io.stdout(`${options.out} (${target.dir} at step ${step}, ${bytes.length} bytes)\n`);
        return;
      }
      if (options.out) throw new UsageError('--out is for --format onnx; use --to DIR with --format parquet');
      const { readRunJson } = await import('../train/run.js');
      const run = readRunJson(dir);
      // A diverged run is finalized too: its files hold the checkpoints kept before the divergence.
      if (run.status !== 'complete' && run.status !== 'diverged') {
        throw new UsageError(
          `${dir}: the run is not complete (status '${run.status}'); run train again to finish it first`,
        );
      }
      const { exportParquet } = await import('../export/parquet.js');
      const written = await exportParquet(dir, options.to);
      io.stdout(`${written.files.map((f) => f.path).join('\n')}\n`);
    });
}
