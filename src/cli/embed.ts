/**
 * `twinscope embed RUN_DIRS… --method pca|inpca --out DIR`: embed every checkpoint of several runs
 * in one low-dimensional space (PCA of the weights, or InPCA of the outputs on fixed examples:
 * softmax for classifiers, Gaussian predictions for regression) and write DIR/embedding.arrow,
 * DIR/embedding.json and its figures under DIR/plots/. DIR is locked while it is written (a second
 * writer exits 2), and a refused command leaves no new folder behind.
 */
import { type Command, Option } from 'commander';
import { formatPercent } from '../util/format.js';
import { type CliIo, parsePositiveInt, parsePositiveNumber } from './io.js';

/** Register `twinscope embed`. */
export function registerEmbedCommand(program: Command, io: CliIo): void {
  program
    .command('embed')
    .description(
      'embed the checkpoints of several runs in one space (PCA of weights or InPCA of outputs) and plot the trajectories',
    )
    .argument('<runDirs...>', 'run directories (written by twinscope train or run)')
    .addOption(
      new Option(
        '--method <method>',
        'pca: weights (one shared layout); inpca: outputs on fixed examples (one dataset and loss)',
      )
        .choices(['pca', 'inpca'])
        .makeOptionMandatory(),
    )
    .requiredOption('--out <dir>', 'directory to write embedding.arrow, embedding.json and plots/ into')
    .option('--components <k>', 'axes kept', parsePositiveInt, 3)
    .option(
      '--examples <n>',
      'InPCA: the first n test examples (train when there is no test split)',
      parsePositiveInt,
      1000,
    )
    .option(
      '--sigma <s>',
      'InPCA of regression (mse) runs: standard deviation of the Gaussian outputs',
      parsePositiveNumber,
      1,
    )
    .option(
      '--threads <n>',
      'ORT intra-op threads (InPCA; default: all cores for the distances)',
      parsePositiveInt,
    )
    .addHelpText(
      'after',
      '\nPrints the explained variance (PCA) or explained stress (InPCA) of the top 1, 2 and 3 axes, then\n' +
        'the paths written. Runs must share a parameter layout (PCA) or a dataset and loss (InPCA).\n' +
        'InPCA reads classifiers as softmax distributions and regression (mse) runs as Gaussians\n' +
        'N(prediction, sigma²).\n' +
        '\nExamples:\n  twinscope embed studies/moons/runs/A studies/moons/runs/B --method inpca --out embeds/moons\n' +
        '  twinscope embed runs/sgd runs/adam --method pca --out embeds/pca --components 2\n' +
        '  twinscope embed studies/mnist/runs/* --method inpca --examples 2000 --out embeds/mnist\n',
    )
    .action(
      async (
        runDirs: string[],
        options: {
          method: 'pca' | 'inpca';
          out: string;
          components: number;
          examples: number;
          sigma: number;
          threads?: number;
        },
      ) => {
        const { embedRuns } = await import('../study/embed-runs.js');
        const { cumulativeExplained, writeEmbedding } = await import('../results/embedding.js');
        const { writeEmbedPlots } = await import('../report/embed-plots.js');
        const { withFolderLock } = await import('../util/folder-lock.js');
        // Bad runs or options (EmbedInputError, exit 2) are found before anything is written.
        const { embedding, files, plots } = await withFolderLock(options.out, async () => {
          const embedding = await embedRuns(runDirs, {
            method: options.method,
            components: options.components,
            examples: options.examples,
            sigma: options.sigma,
            ...(options.threads !== undefined && { threads: options.threads }),
          });
          const files = writeEmbedding(options.out, embedding);
          const plots = await writeEmbedPlots(options.out, embedding);
          return { embedding, files, plots };
        });
        const { method, points, runs, components } = embedding;
        const where =
          method === 'inpca' ? ` on ${embedding.options.examples} ${embedding.options.split} examples` : '';
        io.stdout(
          `${method}: ${points.length} checkpoints of ${runs.length} runs${where}, ${components} axes\n`,
        );
        const top = [1, 2, 3].filter((t) => t <= components);
        const explained = cumulativeExplained(embedding);
        const label = method === 'pca' ? 'explained variance ' : 'explained stress   ';
        io.stdout(
          `${label} ${top.map((t) => `top ${t}: ${formatPercent(explained[t - 1] ?? 0)}`).join('  ')}\n`,
        );
        if (method === 'inpca') {
          const signs = embedding.eigenvalues.map((l) => (l > 0 ? '+' : l < 0 ? '−' : '0')).join(' ');
          io.stdout(`eigenvalue signs    ${signs}\n`);
        }
        io.stdout(`arrow   ${files.arrow}\n`);
        io.stdout(`json    ${files.json}\n`);
        for (const p of plots) io.stdout(`plot    ${p.svg}\n`);
      },
    );
}
