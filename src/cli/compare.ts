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
import type { AlignedComparison, AlignMethod, CompareResult, SplitCurve } from '../onnx/compare.js';
import { NORM_MODES, type NormMode } from '../onnx/norm-stats.js';
import type { ResultRow } from '../results/rows.js';
import { type CliIo, parsePositiveInt, UsageError } from './io.js';

interface CompareCliOptions {
  data: string;
  dataSeed: number;
  alphas: number;
  examples?: number;
  ckaExamples: number;
  threads: number;
  bn: NormMode;
  bnExamples?: number;
  bnBatch: number;
  align: AlignMethod[];
  permSpec?: string;
  alignExamples: number;
  json?: boolean;
  out?: string;
  report: boolean;
}

/** `--bn`: one of the normalization modes. */
export function parseNormMode(value: string): NormMode {
  if (!(NORM_MODES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${NORM_MODES.join(', ')}, got '${value}'`);
  }
  return value as NormMode;
}

/** `--bn-batch`: an integer ≥ 2 (a batch of one has no variance). */
export function parseNormBatch(value: string): number {
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || n < 2)
    throw new InvalidArgumentError(`expected an integer ≥ 2, got '${value}'`);
  return n;
}

/** Datasets `--data` accepts by name, with the spec each stands for. */
const NAMED_DATA: Readonly<Record<string, DatasetSpec>> = {
  mnist: { name: 'mnist' },
  'fashion-mnist': { name: 'fashion-mnist' },
  moons: { name: 'moons', n: 1000 },
};

/** `--align`: a comma-separated list of `weight` and `activation`, or `none`. */
function parseAlignMethods(value: string): AlignMethod[] {
  if (value.trim() === 'none') return [];
  const methods = value.split(',').map((m) => m.trim());
  for (const m of methods) {
    if (m !== 'weight' && m !== 'activation') {
      throw new InvalidArgumentError(
        `expected weight, activation, both comma-separated, or none; got '${m}'`,
      );
    }
  }
  return [...new Set(methods)] as AlignMethod[];
}

/** A non-negative integer option. */
export function parseNonNegativeInt(value: string): number {
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
    .option(
      '--bn <mode>',
      'BatchNorm statistics at each point: recompute (on the train split), copy (interpolated like the other weights), or repair (REPAIR; also repairs dense layers of nets without BatchNorm)',
      parseNormMode,
      'recompute',
    )
    .option(
      '--bn-examples <n>',
      'train examples of the statistics pass (default: those of the curve, --examples)',
      parsePositiveInt,
    )
    .option('--bn-batch <n>', 'examples per batch of the recompute pass', parseNormBatch, 128)
    .option(
      '--align <methods>',
      'align B to A before measuring again: weight, activation, weight,activation, or none',
      parseAlignMethods,
      ['weight', 'activation'],
    )
    .option(
      '--perm-spec <file>',
      'permutation spec JSON for alignment (default: inferred from the graph; docs/merging.md, "Permutation specs")',
    )
    .option('--align-examples <n>', 'train examples of activation matching', parsePositiveInt, 1000)
    .option('--json', 'print the result as JSON')
    .option(
      '--out <dir>',
      'write compare.arrow (long-form rows), its index compare.json, summary.json and the HTML report (report/index.html, report/plots/) here',
    )
    .option('--no-report', 'with --out: do not write the HTML report and its figures (DIR/report/)')
    .addHelpText(
      'after',
      '\nFlat features are reshaped to the model input shape when the counts agree (784 -> 1x28x28).\n' +
        'The model output is read as logits: loss is softmax cross-entropy, error is 1 - accuracy.\n' +
        'JSON keys: l2, normalizedL2, cosine, l2PerTensor, alphas, curves {train, test}, barrierLoss and\n' +
        'barrierError (linear convention, test split; train when there is none), barriers (both splits,\n' +
        'both conventions), cka {layer: value}, alignedL2 / alignedBarrierLoss / alignedBarrierError (after\n' +
        'weight matching, else activation matching; null without a permutation spec: see alignmentNote),\n' +
        'aligned {weight, activation} (each: l2, curves, barriers), normalization (the --bn mode;\n' +
        'null for a graph without BatchNorm unless --bn repair).\n' +
        'Exit code 2 for models of different architectures, unsupported ONNX files, or data that does not fit.\n' +
        '\nExamples:\n  twinscope compare fixtures/onnx/mlp-s0.onnx fixtures/onnx/mlp-s1.onnx --data mnist\n' +
        '  twinscope compare runs/a@500 runs/b@500 --data spec.json --json\n' +
        '  twinscope compare a.onnx b.onnx --data mnist --examples 2000 --out cmp/\n' +
        '\nWith --out it also writes DIR/report/index.html (curves, barriers, distances, CKA; figures as SVG,\n' +
        'PNG and Vega-Lite JSON under DIR/report/plots/) and prints its path last: report   DIR/report/index.html\n',
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
      let permutationSpec: import('../measure/align.js').PermutationSpec | undefined;
      if (options.permSpec) {
        const { checkPermutationSpec, readPermutationSpecFile } = await import('../onnx/permutation-spec.js');
        permutationSpec = readPermutationSpecFile(options.permSpec, A.model);
        await checkPermutationSpec(A.model, permutationSpec); // refused before any heavy work
      }
      const data = await loadCompareData(options.data, options.dataSeed);
      const result = await compareModels(A.model, B.model, data, {
        alphas: options.alphas,
        ...(options.examples !== undefined && { examples: options.examples }),
        ckaExamples: options.ckaExamples,
        threads: options.threads,
        normalization: options.bn,
        ...(options.bnExamples !== undefined && { normExamples: options.bnExamples }),
        normBatch: options.bnBatch,
        align: options.align,
        ...(permutationSpec && { permutationSpec }),
        alignExamples: options.alignExamples,
      });
      const summary = summaryJson(result, A.step, B.step);
      let report: string | null = null;
      if (options.out) {
        const written = await writeCompare(options.out, result, A.step, summary, options.report);
        report = written.report;
        if (!options.json) io.stderr(`${written.files.join('\n')}\n`);
      }
      io.stdout(options.json ? `${JSON.stringify(summary, null, 2)}\n` : formatCompare(result));
      // As `twinscope run` does, the report's path comes last (on stderr with --json: stdout is the JSON).
      if (report && options.json) io.stderr(`report   ${report}\n`);
      else if (report) io.stdout(`report   ${report}\n`);
    });
}

/** The dataset of `--data`: a name, or a JSON file holding a data spec or a run spec (also `merge`'s). */
export async function loadCompareData(data: string, seed: number) {
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
    normExamples: result.normExamples,
    ...alignedJson(result, h.split),
  };
}

/** The aligned keys of the summary: the headline (weight matching, else activation) and each method. */
function alignedJson(result: CompareResult, split: 'train' | 'test') {
  const al = result.alignment;
  const head = al ? (al.weight ?? al.activation) : null;
  const curveOf = (c: AlignedComparison) => (split === 'test' && c.test ? c.test : c.train);
  const method = (c: AlignedComparison | null) =>
    c && {
      l2: c.l2,
      normalizedL2: c.normalizedL2,
      barrierLoss: curveOf(c).barrierLoss.linear,
      barrierError: curveOf(c).barrierError.linear,
      curves: {
        train: { examples: c.train.examples, loss: c.train.loss, error: c.train.error },
        test: c.test && { examples: c.test.examples, loss: c.test.loss, error: c.test.error },
      },
      barriers: {
        train: { loss: c.train.barrierLoss, error: c.train.barrierError },
        test: c.test && { loss: c.test.barrierLoss, error: c.test.barrierError },
      },
      ...(c.sweeps !== undefined && { sweeps: c.sweeps, converged: c.converged }),
      ...(c.examples !== undefined && { examples: c.examples }),
    };
  return {
    alignedL2: head ? head.l2 : null,
    alignedBarrierLoss: head ? curveOf(head).barrierLoss.linear : null,
    alignedBarrierError: head ? curveOf(head).barrierError.linear : null,
    alignedMethod: head ? head.method : null,
    aligned: al && {
      spec: al.spec,
      groups: al.groups,
      units: al.units,
      weight: method(al.weight),
      activation: method(al.activation),
    },
    alignmentNote: result.alignmentNote,
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
  const normalization =
    result.normalization === null
      ? {}
      : {
          normalization: result.normalization,
          ...(result.normExamples !== null && { normExamples: result.normExamples }),
        };
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
    rows.push(...barrierRows(base, split, curve, ['loss_barrier', 'error_barrier'], common));
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
  rows.push(...alignedRows(result, base, normalization));
  return rows;
}

/** A curve's loss and error barrier rows under both conventions (linear with its α*, midpoint-mean). */
function barrierRows(
  base: Pick<ResultRow, 'study' | 'runA' | 'runB' | 'step'>,
  split: 'train' | 'test',
  curve: Pick<SplitCurve, 'barrierLoss' | 'barrierError'>,
  metrics: readonly [string, string],
  common: Record<string, unknown>,
): ResultRow[] {
  return (
    [
      [metrics[0], curve.barrierLoss],
      [metrics[1], curve.barrierError],
    ] as const
  ).flatMap(([metric, pair]) => [
    {
      ...base,
      metric,
      layer: null,
      split,
      value: pair.linear,
      options: { convention: 'linear', alphaStar: pair.alphaStar, ...common },
    },
    {
      ...base,
      metric,
      layer: null,
      split,
      value: pair.midpointMean,
      options: { convention: 'midpoint-mean', ...common },
    },
  ]);
}

/**
 * The rows of each alignment method: `aligned_l2`, the aligned curve (`aligned_interp_loss`,
 * `aligned_interp_error`) and its barriers (`aligned_loss_barrier`, `aligned_error_barrier`, both
 * conventions), every row's options naming the method (and weight matching's sweeps, activation
 * matching's examples) and the spec's origin.
 */
function alignedRows(
  result: CompareResult,
  base: Pick<ResultRow, 'study' | 'runA' | 'runB' | 'step'>,
  normalization: Record<string, unknown>,
): ResultRow[] {
  const al = result.alignment;
  if (!al) return [];
  const rows: ResultRow[] = [];
  for (const c of [al.weight, al.activation]) {
    if (!c) continue;
    const tag = {
      method: c.method,
      spec: al.spec,
      ...(c.sweeps !== undefined && { sweeps: c.sweeps, converged: c.converged }),
      ...(c.examples !== undefined && { alignExamples: c.examples }),
    };
    rows.push({ ...base, metric: 'aligned_l2', layer: null, split: null, value: c.l2, options: tag });
    for (const [split, curve] of [
      ['train', c.train],
      ['test', c.test],
    ] as const) {
      if (!curve) continue;
      const common = {
        ...tag,
        alphas: result.alphas.length,
        examples: curve.examples,
        data: result.data,
        ...normalization,
      };
      result.alphas.forEach((alpha, i) => {
        for (const [metric, values] of [
          ['aligned_interp_loss', curve.loss],
          ['aligned_interp_error', curve.error],
        ] as const) {
          rows.push({
            ...base,
            metric,
            layer: null,
            split,
            value: values[i] as number,
            options: { alpha, ...common },
          });
        }
      });
      rows.push(
        ...barrierRows(base, split, curve, ['aligned_loss_barrier', 'aligned_error_barrier'], common),
      );
    }
  }
  return rows;
}

/**
 * Write `--out`: under DIR's folder lock (a second writer exits 2), every file atomically; then,
 * unless `--no-report`, the HTML report drawn from the same result (src/report/compare-report.ts).
 * Returns the data files and the report's index.html (null when not written).
 */
async function writeCompare(
  dir: string,
  result: CompareResult,
  step: number | null,
  summary: ReturnType<typeof summaryJson>,
  withReport: boolean,
): Promise<{ files: string[]; report: string | null }> {
  const { writeMeasurement } = await import('../results/measurement-files.js');
  const { withFolderLock } = await import('../util/folder-lock.js');
  const { writeJsonAtomic } = await import('../util/atomic-file.js');
  const { writeCompareReport } = await import('../report/compare-report.js');
  const arrow = join(dir, 'compare.arrow');
  const json = join(dir, 'summary.json');
  const report = await withFolderLock(dir, async () => {
    writeMeasurement(arrow, compareRows(result, step), { runA: result.a, runB: result.b });
    writeJsonAtomic(json, summary);
    return withReport ? (await writeCompareReport(dir, result)).html : null;
  });
  return { files: [arrow, join(dir, 'compare.json'), json], report };
}

const num = (v: number, digits = 6) => (Number.isNaN(v) ? 'NaN' : String(Number(v.toPrecision(digits))));
const pad = (s: string, n: number) => s.padEnd(n);

/** What the table says about normalization statistics. */
function normalizationLine(r: CompareResult): string {
  if (r.normalization === 'copy') return '(BatchNorm statistics copied: interpolated like the other weights)';
  if (r.normalization === 'recompute') {
    return `(BatchNorm statistics recomputed at every point on ${r.normExamples} train examples)`;
  }
  return `(REPAIR at every point: channel statistics set from the endpoints' on ${r.normExamples} train examples)`;
}

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
  if (r.normalization) lines.push(normalizationLine(r));
  const layers = Object.entries(r.cka);
  if (layers.length > 0) {
    lines.push('', `linear CKA on ${r.ckaExamples} ${r.ckaSplit} examples`);
    const w = Math.max(...layers.map(([n]) => n.length)) + 2;
    for (const [name, v] of layers) lines.push(`  ${pad(name, w)}${num(v, 5)}`);
  }
  lines.push('', ...alignedLines(r));
  return `${lines.join('\n')}\n`;
}

/** The table's alignment lines: per method, aligned L2 and barriers; or the note. */
function alignedLines(r: CompareResult): string[] {
  const al = r.alignment;
  if (!al) return [`aligned: ${r.alignmentNote ?? 'not measured'}`];
  const lines = [
    `aligned B to A (${al.spec === 'file' ? 'permutation spec from --perm-spec' : 'permutation spec inferred from the graph'}: ${al.groups} groups, ${al.units} units)`,
    `${pad('method', 12)}${pad('l2', 12)}${pad('split', 7)}${pad('loss barrier', 14)}error barrier (linear)`,
  ];
  for (const c of [al.weight, al.activation]) {
    if (!c) continue;
    const curve = c.test ?? c.train;
    const what =
      c.sweeps !== undefined
        ? ` (${c.sweeps} sweeps)`
        : c.examples !== undefined
          ? ` (${c.examples} examples)`
          : '';
    lines.push(
      `${pad(c.method, 12)}${pad(num(c.l2), 12)}${pad(c.test ? 'test' : 'train', 7)}${pad(num(curve.barrierLoss.linear, 5), 14)}${num(curve.barrierError.linear, 4)}${what}`,
    );
  }
  return lines;
}
