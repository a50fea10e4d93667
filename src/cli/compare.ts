/**
 * `twinscope compare A B --data DATA [--json] [--out DIR]`: how far apart two models of one
 * architecture are and whether they are linearly connected. A and B are ONNX files (exported by
 * PyTorch or any tool) or twinscope run directories (`DIR` for the last checkpoint, `DIR@STEP`).
 * Prints L2, normalized L2, cosine, the interpolation curve (loss and error on train and test) with
 * its barriers under both conventions, and linear CKA per hidden output; `--out` writes every number
 * as long-form Arrow rows (docs/formats.md, "Comparisons"), under the folder's lock.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import type { DatasetSpec } from '../data/types.js';
import type { CompareResult, SplitCurve } from '../onnx/compare.js';
import type { ResultRow } from '../results/rows.js';
import { type CliIo, parsePositiveInt, UsageError } from './io.js';

interface CompareCliOptions {
  data: string;
  dataSeed: number;
  alphas: number;
  examples?: number;
  ckaExamples: number;
  threads: number;
  json?: boolean;
  out?: string;
}

/** Datasets `--data` accepts by name, with the spec each stands for. */
const NAMED_DATA: Readonly<Record<string, DatasetSpec>> = {
  mnist: { name: 'mnist' },
  'fashion-mnist': { name: 'fashion-mnist' },
  moons: { name: 'moons', n: 1000 },
};

/** The note printed and stored while no permutation spec exists for imported graphs. */
const ALIGNMENT_NOTE =
  'not measured: no permutation spec is inferred from ONNX graphs yet (issue 15, part B adds alignment)';

/** A non-negative integer option. */
function parseNonNegativeInt(value: string): number {
  if (!/^\s*\d+\s*$/.test(value))
    throw new InvalidArgumentError(`expected a non-negative integer, got '${value}'`);
  return Number(value);
}

export function registerCompareCommand(program: Command, io: CliIo): void {
  program
    .command('compare')
    .description(
      'compare two models of one architecture (ONNX files or run directories): L2, cosine, interpolation barriers, CKA',
    )
    .argument('<a>', 'model A: an ONNX file, a run directory, or DIR@STEP')
    .argument('<b>', 'model B: same kinds as A, same architecture')
    .requiredOption(
      '--data <data>',
      'dataset: mnist, fashion-mnist, moons, or a JSON file with a data spec (as run specs write it) or a run spec',
    )
    .option(
      '--data-seed <n>',
      'data seed of the split (a run spec file gives its own)',
      parseNonNegativeInt,
      0,
    )
    .option('--alphas <n>', 'points of the interpolation grid from 0 to 1', parsePositiveInt, 11)
    .option(
      '--examples <n>',
      'use the first n examples of each split for the curve (default: all)',
      parsePositiveInt,
    )
    .option('--cka-examples <n>', 'examples for CKA (the first of the test split)', parsePositiveInt, 500)
    .option('--threads <n>', 'onnxruntime intra-op threads', parsePositiveInt, 1)
    .option('--json', 'print the result as JSON')
    .option(
      '--out <dir>',
      'write compare.arrow (long-form rows), its index compare.json and summary.json here',
    )
    .addHelpText(
      'after',
      '\nFlat features are reshaped to the model input shape when the counts agree (784 -> 1x28x28).\n' +
        'The model output is read as logits: loss is softmax cross-entropy, error is 1 - accuracy.\n' +
        'JSON keys: l2, normalizedL2, cosine, l2PerTensor, alphas, curves {train, test}, barrierLoss and\n' +
        'barrierError (linear convention, test split; train when there is none), barriers (both splits,\n' +
        'both conventions), cka {layer: value}, alignedL2 / alignedBarrierLoss / alignedBarrierError\n' +
        '(null until alignment of imported graphs exists; see alignmentNote).\n' +
        'Exit code 2 for models of different architectures, unsupported ONNX files, or data that does not fit.\n' +
        '\nExamples:\n  twinscope compare fixtures/onnx/mlp-s0.onnx fixtures/onnx/mlp-s1.onnx --data mnist\n' +
        '  twinscope compare runs/a@500 runs/b@500 --data spec.json --json\n' +
        '  twinscope compare a.onnx b.onnx --data mnist --examples 2000 --out cmp/\n',
    )
    .action(async (a: string, b: string, options: CompareCliOptions) => {
      if (options.out && statSync(options.out, { throwIfNoEntry: false })?.isDirectory() === false) {
        throw new UsageError(`--out: ${options.out} is a file, not a folder`);
      }
      const { loadModelRef } = await import('../onnx/sources.js');
      const { compareModels } = await import('../onnx/compare.js');
      const A = loadModelRef(a);
      const B = loadModelRef(b);
      const { checkSameArchitecture } = await import('../onnx/import-model.js');
      checkSameArchitecture(A.model, B.model);
      const data = await loadCompareData(options.data, options.dataSeed);
      const result = await compareModels(A.model, B.model, data, {
        alphas: options.alphas,
        ...(options.examples !== undefined && { examples: options.examples }),
        ckaExamples: options.ckaExamples,
        threads: options.threads,
      });
      const summary = summaryJson(result, A.step, B.step);
      if (options.out) {
        const written = await writeCompare(options.out, result, A.step, summary);
        if (!options.json) io.stderr(`${written.join('\n')}\n`);
      }
      io.stdout(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatCompare(result));
    });
}

/** The dataset of `--data`: a name, or a JSON file holding a data spec or a run spec. */
async function loadCompareData(data: string, seed: number) {
  const { loadDataset } = await import('../data/load.js');
  const named = NAMED_DATA[data];
  let spec: DatasetSpec;
  let dataSeed = seed;
  if (named) spec = named;
  else if (existsSync(data)) {
    const { readSpecJson, parseSpecObject } = await import('../spec/spec-file.js');
    const { RunSpecSchema } = await import('../spec/schemas.js');
    const json = readSpecJson(data) as Record<string, unknown>;
    const isRunSpec = json !== null && typeof json === 'object' && 'data' in json;
    spec = parseSpecObject(RunSpecSchema.shape.data, isRunSpec ? json.data : json, data) as DatasetSpec;
    if (isRunSpec) {
      const s = json.dataSeed ?? json.seed;
      if (typeof s === 'number') dataSeed = s;
    }
  } else {
    throw new UsageError(
      `--data: '${data}' is neither a dataset name (${Object.keys(NAMED_DATA).join(', ')}) nor a JSON file`,
    );
  }
  const ds = loadDataset(spec, dataSeed);
  return { name: data, train: ds.train, test: ds.test };
}

function headline(result: CompareResult): { split: 'train' | 'test'; curve: SplitCurve } {
  return result.test ? { split: 'test', curve: result.test } : { split: 'train', curve: result.train };
}

/** The JSON `--json` prints (and `--out` stores as summary.json). */
function summaryJson(result: CompareResult, stepA: number | null, stepB: number | null) {
  const h = headline(result);
  const barriers = (c: SplitCurve | null) =>
    c && {
      examples: c.examples,
      loss: c.barrierLoss,
      error: c.barrierError,
    };
  return {
    a: result.a,
    b: result.b,
    stepA,
    stepB,
    data: result.data,
    parameters: result.parameters,
    l2: result.l2,
    normalizedL2: result.normalizedL2,
    cosine: result.cosine,
    l2PerTensor: result.l2PerTensor,
    alphas: result.alphas,
    curves: {
      train: { examples: result.train.examples, loss: result.train.loss, error: result.train.error },
      test: result.test && {
        examples: result.test.examples,
        loss: result.test.loss,
        error: result.test.error,
      },
    },
    barrierLoss: h.curve.barrierLoss.linear,
    barrierError: h.curve.barrierError.linear,
    barrierSplit: h.split,
    barrierConvention: 'linear',
    barriers: { train: barriers(result.train), test: barriers(result.test) },
    cka: result.cka,
    ckaKernel: 'linear',
    ckaExamples: result.ckaExamples,
    ckaSplit: result.ckaSplit,
    normalization: result.normalization,
    alignedL2: null,
    alignedBarrierLoss: null,
    alignedBarrierError: null,
    alignmentNote: ALIGNMENT_NOTE,
  };
}

/** Every number of the comparison as long-form result rows (study `compare`). */
function compareRows(result: CompareResult, step: number | null): ResultRow[] {
  const base = { study: 'compare', runA: result.a, runB: result.b, step: step ?? 0 };
  const rows: ResultRow[] = [
    { ...base, metric: 'l2', layer: null, split: null, value: result.l2, options: {} },
    ...Object.entries(result.l2PerTensor).map(([layer, value]) => ({
      ...base,
      metric: 'l2',
      layer,
      split: null,
      value,
      options: {},
    })),
    { ...base, metric: 'normalized_l2', layer: null, split: null, value: result.normalizedL2, options: {} },
    { ...base, metric: 'cosine', layer: null, split: null, value: result.cosine, options: {} },
  ];
  const normalization = result.normalization === null ? {} : { normalization: result.normalization };
  for (const [split, curve] of [
    ['train', result.train],
    ['test', result.test],
  ] as const) {
    if (!curve) continue;
    const common = {
      alphas: result.alphas.length,
      examples: curve.examples,
      data: result.data,
      ...normalization,
    };
    result.alphas.forEach((alpha, i) => {
      rows.push({
        ...base,
        metric: 'interp_loss',
        layer: null,
        split,
        value: curve.loss[i] as number,
        options: { alpha, ...common },
      });
      rows.push({
        ...base,
        metric: 'interp_error',
        layer: null,
        split,
        value: curve.error[i] as number,
        options: { alpha, ...common },
      });
    });
    for (const [metric, pair] of [
      ['loss_barrier', curve.barrierLoss],
      ['error_barrier', curve.barrierError],
    ] as const) {
      rows.push({
        ...base,
        metric,
        layer: null,
        split,
        value: pair.linear,
        options: { convention: 'linear', alphaStar: pair.alphaStar, ...common },
      });
      rows.push({
        ...base,
        metric,
        layer: null,
        split,
        value: pair.midpointMean,
        options: { convention: 'midpoint-mean', ...common },
      });
    }
  }
  for (const [layer, value] of Object.entries(result.cka)) {
    rows.push({
      ...base,
      metric: 'cka',
      layer,
      split: result.ckaSplit,
      value,
      options: { kernel: 'linear', debiased: false, examples: result.ckaExamples, data: result.data },
    });
  }
  return rows;
}

/** Write `--out`: under DIR's folder lock (a second writer exits 2), every file atomically. */
async function writeCompare(
  dir: string,
  result: CompareResult,
  step: number | null,
  summary: ReturnType<typeof summaryJson>,
): Promise<string[]> {
  const { writeMeasurement } = await import('../results/measurement-files.js');
  const { withFolderLock } = await import('../util/folder-lock.js');
  const { writeJsonAtomic } = await import('../util/atomic-file.js');
  const arrow = join(dir, 'compare.arrow');
  const json = join(dir, 'summary.json');
  await withFolderLock(dir, async () => {
    writeMeasurement(arrow, compareRows(result, step), { runA: result.a, runB: result.b });
    writeJsonAtomic(json, summary);
  });
  return [arrow, join(dir, 'compare.json'), json];
}

const num = (v: number, digits = 6) => (Number.isNaN(v) ? 'NaN' : String(Number(v.toPrecision(digits))));
const pad = (s: string, n: number) => s.padEnd(n);

/** The table printed on stdout. */
function formatCompare(r: CompareResult): string {
  const lines = [
    `A  ${r.a}`,
    `B  ${r.b}`,
    `${r.parameters} weights; data ${r.data} (train ${r.train.examples}${r.test ? `, test ${r.test.examples}` : ''} examples)`,
    '',
    `l2             ${num(r.l2)}`,
    `normalized l2  ${num(r.normalizedL2)}`,
    `cosine         ${num(r.cosine)}`,
    '',
    'interpolation (1 - alpha) A + alpha B',
    `${pad('alpha', 7)}${pad('train loss', 12)}${pad('train err', 11)}${r.test ? `${pad('test loss', 12)}test err` : ''}`,
  ];
  r.alphas.forEach((alpha, i) => {
    const t = r.test
      ? `${pad(num(r.test.loss[i] as number, 5), 12)}${num(r.test.error[i] as number, 4)}`
      : '';
    lines.push(
      `${pad(num(alpha, 3), 7)}${pad(num(r.train.loss[i] as number, 5), 12)}${pad(num(r.train.error[i] as number, 4), 11)}${t}`,
    );
  });
  lines.push(
    '',
    `${pad('barrier', 8)}${pad('loss linear', 13)}${pad('loss midpoint', 15)}${pad('error linear', 14)}error midpoint`,
  );
  for (const [split, c] of [
    ['train', r.train],
    ['test', r.test],
  ] as const) {
    if (!c) continue;
    lines.push(
      `${pad(split, 8)}${pad(num(c.barrierLoss.linear, 5), 13)}${pad(num(c.barrierLoss.midpointMean, 5), 15)}${pad(num(c.barrierError.linear, 4), 14)}${num(c.barrierError.midpointMean, 4)}`,
    );
  }
  if (r.normalization) {
    lines.push(
      '(normalization statistics interpolated like the other weights; BatchNorm-aware evaluation comes later)',
    );
  }
  const layers = Object.entries(r.cka);
  if (layers.length > 0) {
    lines.push('', `linear CKA on ${r.ckaExamples} ${r.ckaSplit} examples`);
    const w = Math.max(...layers.map(([n]) => n.length)) + 2;
    for (const [name, v] of layers) lines.push(`  ${pad(name, w)}${num(v, 5)}`);
  }
  lines.push('', `aligned: ${ALIGNMENT_NOTE}`);
  return `${lines.join('\n')}\n`;
}
