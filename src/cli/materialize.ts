/**
 * `twinscope materialize ALIGNMENT.json --out DIR`: write a twin aligned to its reference as a run
 * directory, from the alignment a study stored (`DIR/aligned/<twin>/<method>.json`, study/aligned.ts).
 */
import { existsSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { type CliIo, UsageError } from './io.js';

export function registerMaterializeCommand(program: Command, io: CliIo): void {
  program
    .command('materialize')
    .description(
      "write twin B permuted into its reference A's hidden-unit order as a run directory (every checkpoint, " +
        'optimizer slots included), from an alignment file a study stored under DIR/aligned/',
    )
    .argument('<alignment>', 'alignment file: STUDY/aligned/<twin>/<method>.json')
    .requiredOption('--out <dir>', 'the run directory to write (replaced if it exists)')
    .addHelpText(
      'after',
      '\nExample:\n  twinscope materialize studies/mnist/aligned/s0/t0/gaussian-1e-3-r0/weight.json --out /tmp/b-aligned\n',
    )
    .action(async (file: string, options: { out: string }) => {
      if (!existsSync(file) || !statSync(file).isFile()) {
        throw new UsageError(`${file}: no such alignment file (expected STUDY/aligned/<twin>/<method>.json)`);
      }
      const { materializeAlignment } = await import('../study/aligned.js');
      const run = await materializeAlignment(file, options.out);
      const method = String((run.lineage as Record<string, unknown>).alignment);
      io.stdout(
        `${options.out}: run '${run.spec.name}' aligned by ${method}, ${run.checkpointSteps.length} checkpoints\n`,
      );
    });
}
