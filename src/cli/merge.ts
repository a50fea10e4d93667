/**
 * `twinscope merge A B [C …] --out merged.onnx --data DATA`: merge models of one architecture (ONNX
 * files or run directories, `DIR@STEP`) by a linear average, SLERP, task arithmetic, TIES, DARE or a
 * greedy soup, optionally after aligning every model to the first (`--align weight|activation`),
 * with the merged model's normalization statistics recomputed, copied or REPAIRed (`--bn`,
 * `--repair`). Writes the merged model as standard ONNX and `<name>.merge.json` next to it (the
 * merged model's loss and accuracy next to the endpoints'; docs/formats.md, "Merges"), and prints a
 * table (or the JSON with `--json`).
 */
import { mkdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { MergeAlignment, MergeMethod, MergeResult } from '../onnx/merge.js';
import type { NormMode } from '../onnx/norm-stats.js';
import { loadCompareData, parseNonNegativeInt, parseNormBatch, parseNormMode } from './compare.js';
import { type CliIo, parsePositiveInt, UsageError } from './io.js';

interface MergeCliOptions {
  out: string;
  data: string;
  dataSeed: number;
  method: string;
  weights?: number[];
  t?: number;
  base?: string;
  scale?: number;
  density?: number;
  seed: number;
  align: string;
  permSpec?: string;
  alignExamples: number;
  repair?: boolean;
  bn?: NormMode;
  bnExamples?: number;
  bnBatch: number;
  examples?: number;
  threads: number;
  json?: boolean;
}

const METHODS = ['linear', 'slerp', 'task-arithmetic', 'ties', 'dare', 'dare-ties', 'greedy-soup'];
const ALIGNMENTS = ['weight', 'activation', 'none'];

function parseNumber(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n))
    throw new InvalidArgumentError(`expected a number, got '${value}'`);
  return n;
}

function parseNumberList(value: string): number[] {
  return value.split(',').map((v) => parseNumber(v));
}

function oneOf(values: readonly string[]) {
  return (value: string) => {
    if (!values.includes(value))
      throw new InvalidArgumentError(`expected one of ${values.join(', ')}, got '${value}'`);
    return value;
  };
}

/** The merge.json written next to `out`: `merged.onnx` → `merged.merge.json`. */
function mergeJsonPath(out: string): string {
  const name = basename(out).replace(/\.onnx$/i, '');
  return join(dirname(out), `${name}.merge.json`);
}

export function registerMergeCommand(program: Command, io: CliIo): void {
  program
    .command('merge')
    .description(
      'merge models of one architecture (ONNX files or run directories): linear, slerp, task arithmetic, TIES, DARE, greedy soup; with alignment and REPAIR; writes ONNX',
    )
    .argument('<models...>', 'ONNX files, run directories or DIR@STEP; the first is the reference of --align')
    .requiredOption('--out <file>', 'the merged model (ONNX); <name>.merge.json is written next to it')
    .requiredOption(
      '--data <data>',
      'dataset to score on (and for BatchNorm statistics, REPAIR, activation matching, greedy soup): mnist, fashion-mnist, moons, or a data-spec / run-spec JSON file',
    )
    .option(
      '--data-seed <n>',
      'data seed of the split (a run spec file gives its own)',
      parseNonNegativeInt,
      0,
    )
    .option('--method <method>', METHODS.join(' | '), oneOf(METHODS), 'linear')
    .option(
      '--weights <w,...>',
      'per-model weights: linear (normalized to sum 1); task vectors: w_k',
      parseNumberList,
    )
    .option('--t <t>', 'slerp: position between the two models, 0..1 (default 0.5)', parseNumber)
    .option('--base <model>', 'task-arithmetic, ties, dare, dare-ties: the base model θ₀')
    .option(
      '--scale <lambda>',
      'task vectors: λ, the scale of the merged task vector (default 1)',
      parseNumber,
    )
    .option(
      '--density <d>',
      'ties: fraction of each tensor kept by magnitude (default 0.2); dare: keep probability 1 - p (default 0.5)',
      parseNumber,
    )
    .option('--seed <n>', "dare's random drop and weight matching's visiting order", parseNonNegativeInt, 0)
    .option(
      '--align <how>',
      'align every model to the first: weight | activation | none',
      oneOf(ALIGNMENTS),
      'none',
    )
    .option(
      '--perm-spec <file>',
      'permutation spec JSON for --align (default: inferred from the first model\'s graph; docs/merging.md, "Permutation specs")',
    )
    .option('--align-examples <n>', 'train examples of activation matching', parsePositiveInt, 1000)
    .option(
      '--repair',
      'REPAIR the merged model (the same as --bn repair; for nets without BatchNorm, rescales dense layers)',
    )
    .option(
      '--bn <mode>',
      'BatchNorm statistics of the merged model: recompute (default) | copy | repair',
      parseNormMode,
    )
    .option(
      '--bn-examples <n>',
      'train examples of the statistics pass and REPAIR (default: --examples)',
      parsePositiveInt,
    )
    .option('--bn-batch <n>', 'examples per batch of the recompute pass', parseNormBatch, 128)
    .option('--examples <n>', 'score on the first n examples of each split (default: all)', parsePositiveInt)
    .option('--threads <n>', 'onnxruntime intra-op threads', parsePositiveInt, 1)
    .option('--json', 'print the result (merge.json) as JSON')
    .addHelpText(
      'after',
      '\nGreedy soup selects on the test split of --data (held-out), best model first, adding a model when\n' +
        'the uniform average does not lose accuracy. Endpoints are scored as they are; the merged model after\n' +
        'its normalization statistics are set (stored as normalization in merge.json).\n' +
        'Exit code 2 for models of different architectures, options that do not fit the method, --align on a\n' +
        'graph without a permutation spec (inferred or --perm-spec) that passes its check, or --repair on a\n' +
        'graph without normalization or dense layers.\n' +
        '\nExamples:\n  twinscope merge fixtures/onnx/mlp-s0.onnx fixtures/onnx/mlp-s1.onnx --data mnist --align weight --repair --out merged.onnx\n' +
        '  twinscope merge a.onnx b.onnx --method slerp --t 0.3 --data mnist --out s.onnx\n' +
        '  twinscope merge ft1.onnx ft2.onnx --method ties --base pre.onnx --density 0.2 --data mnist --out t.onnx\n' +
        '  twinscope merge runs/a runs/b runs/c --method greedy-soup --data spec.json --out soup.onnx\n',
    )
    .action(async (refs: string[], options: MergeCliOptions) => {
      if (statSync(options.out, { throwIfNoEntry: false })?.isDirectory()) {
        throw new UsageError(`--out: ${options.out} is a folder; give the file to write (merged.onnx)`);
      }
      if (options.repair && options.bn !== undefined && options.bn !== 'repair') {
        throw new UsageError(
          `--repair and --bn ${options.bn} contradict each other (--repair is --bn repair)`,
        );
      }
      const normalization: NormMode = options.repair ? 'repair' : (options.bn ?? 'recompute');
      const { loadModelRef } = await import('../onnx/sources.js');
      const { mergeModels, checkMergeOptions, mergedOnnx } = await import('../onnx/merge.js');
      const opts = {
        method: options.method as MergeMethod,
        ...(options.weights && { weights: options.weights }),
        ...(options.t !== undefined && { t: options.t }),
        ...(options.scale !== undefined && { scale: options.scale }),
        ...(options.density !== undefined && { density: options.density }),
        seed: options.seed,
        align: options.align as MergeAlignment,
        alignExamples: options.alignExamples,
        normalization,
        ...(options.bnExamples !== undefined && { normExamples: options.bnExamples }),
        normBatch: options.bnBatch,
        ...(options.examples !== undefined && { examples: options.examples }),
        threads: options.threads,
      };
      // The options against the method first (no base model loaded yet: a placeholder says one is given).
      checkMergeOptions(refs.length, {
        ...opts,
        ...(options.base !== undefined && { base: {} as never }),
      });
      const models = refs.map((r) => loadModelRef(r).model);
      const base = options.base === undefined ? undefined : loadModelRef(options.base).model;
      let permutationSpec: import('../measure/align.js').PermutationSpec | undefined;
      if (options.permSpec) {
        if (opts.align === 'none')
          throw new UsageError('--perm-spec applies with --align weight or activation');
        const { readPermutationSpecFile } = await import('../onnx/permutation-spec.js');
        permutationSpec = readPermutationSpecFile(options.permSpec, models[0] as (typeof models)[number]);
      }
      const data = await loadCompareData(options.data, options.dataSeed);
      const result = await mergeModels(models, data, {
        ...opts,
        ...(base && { base }),
        ...(permutationSpec && { permutationSpec }),
      });
      const bytes = mergedOnnx(
        base ?? (models[0] as (typeof models)[number]),
        result.weights,
        `merged by twinscope merge --method ${result.method} from ${result.models.join(', ')}`,
      );
      const summary = mergeJson(result, options.out);
      const { writeFileAtomic, writeJsonAtomic } = await import('../util/atomic-file.js');
      mkdirSync(dirname(options.out) || '.', { recursive: true });
      writeFileAtomic(options.out, [bytes]);
      const json = mergeJsonPath(options.out);
      writeJsonAtomic(json, summary);
      if (!options.json) io.stderr(`${options.out}\n${json}\n`);
      io.stdout(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatMerge(result));
    });
}

/** The JSON stored as merge.json and printed by `--json`. */
function mergeJson(r: MergeResult, out: string) {
  return {
    output: out,
    method: r.method,
    models: r.models,
    base: r.base,
    coefficients: r.coefficients,
    parameters: r.parameters,
    align: r.align,
    alignment: r.alignment,
    normalization: r.normalization,
    normExamples: r.normExamples,
    data: r.data,
    endpoints: r.endpoints,
    merged: r.merged,
    soup: r.soup,
  };
}

const num = (v: number, digits = 5) => (Number.isNaN(v) ? 'NaN' : String(Number(v.toPrecision(digits))));

function formatMerge(r: MergeResult): string {
  const lines = [
    `method ${r.method}${Object.entries(r.parameters)
      .map(([k, v]) => ` ${k}=${v}`)
      .join('')}; align ${r.align}; normalization ${r.normalization ?? 'none (no BatchNorm)'}`,
    `data ${r.data}`,
  ];
  if (r.base) lines.push(`base ${r.base}`);
  lines.push(
    '',
    `${'model'.padEnd(44)}${'train loss'.padEnd(12)}${'train acc'.padEnd(11)}test loss   test acc`,
  );
  const row = (name: string, s: MergeResult['merged']) =>
    `${name.padEnd(44)}${num(s.train.loss).padEnd(12)}${num(s.train.accuracy, 4).padEnd(11)}${
      s.test ? `${num(s.test.loss).padEnd(12)}${num(s.test.accuracy, 4)}` : ''
    }`;
  r.endpoints.forEach((e, k) => {
    lines.push(row(`${e.source} (${num(r.coefficients[k] ?? 0, 4)})`, e));
  });
  lines.push(row('merged', r.merged));
  if (r.soup) {
    lines.push('', `greedy soup on the ${r.soup.split} split (accuracy alone, soup with it):`);
    for (const s of r.soup.steps) {
      lines.push(
        `  ${r.models[s.model]}  ${num(s.accuracy, 4)}  ${num(s.soupAccuracy, 4)}  ${s.added ? 'added' : 'left out'}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
