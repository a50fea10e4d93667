/**
 * `twinscope compare A B --data DATA`: on the PyTorch fixtures (fixtures/onnx/) its L2 is PyTorch's
 * to 1e-6 relative; a model compared with itself gives L2 0, barriers 0 and CKA 1; run directories
 * and the ONNX files exported from them compare alike; `--out` stores every number as long-form
 * Arrow rows; bad input exits 2 naming the problem.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { readMeasurement } from '../../src/results/measurement-files.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { fixturePath } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-cli-compare-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);
const onnx = (name: string) => fixturePath('onnx', name);
const reference = JSON.parse(readFileSync(fixturePath('onnx', 'reference.json'), 'utf8')) as {
  models: Record<string, { l2: number }>;
};

/** Small evaluation sets keep the fixture comparisons fast. */
const FAST = ['--examples', '300', '--cka-examples', '100', '--alphas', '5'];

async function json(...args: string[]) {
  const io = capture();
  expect(await cli(io, 'compare', ...args, '--json'), io.err).toBe(EXIT_OK);
  return JSON.parse(io.out);
}

const runSpec = {
  name: 'cmp',
  seed: 4,
  data: { name: 'moons', n: 200, noise: 0.2, testFraction: 0.2, standardize: true },
  model: { kind: 'mlp', hidden: [8, 6] },
  optimizer: { kind: 'adam', lr: 0.02 },
  batchSize: 40,
  steps: 20,
  checkpoints: { every: 10 },
};
const runDir = join(root, 'run');
const specFile = join(root, 'spec.json');

beforeAll(async () => {
  writeFileSync(specFile, JSON.stringify(runSpec));
  await trainRun(parseRunSpec(runSpec), runDir);
}, 60_000);

describe('twinscope compare on the PyTorch fixtures', () => {
  test.each(['mlp', 'cnn', 'resnet'])(
    '%s: L2 between the seeds matches PyTorch to 1e-6 relative',
    async (name) => {
      const out = await json(onnx(`${name}-s0.onnx`), onnx(`${name}-s1.onnx`), '--data', 'mnist', ...FAST);
      const ref = reference.models[name]?.l2 as number;
      expect(Math.abs(out.l2 - ref) / ref).toBeLessThan(1e-6);
      expect(out.cosine).toBeGreaterThan(-1);
      expect(out.cosine).toBeLessThan(1);
      for (const key of ['barrierLoss', 'barrierError']) expect(Number.isFinite(out[key])).toBe(true);
      expect(out.barrierLoss).toBeGreaterThan(0); // independently trained: not linearly connected
      // Aligned by weight matching (headline) and activation matching, spec inferred from the graph.
      expect(out.alignmentNote).toBeNull();
      expect(out.alignedMethod).toBe('weight');
      expect(out.aligned.spec).toBe('inferred');
      expect(out.alignedL2).toBeGreaterThan(0);
      expect(out.alignedL2).toBeLessThan(out.l2);
      expect(out.aligned.activation.l2).toBeLessThan(out.l2);
      expect(out.aligned.weight.converged).toBe(true);
      for (const key of ['alignedBarrierLoss', 'alignedBarrierError'])
        expect(Number.isFinite(out[key])).toBe(true);
      expect(out.aligned.weight.curves.test.loss).toHaveLength(5);
      expect(Object.keys(out.cka).length).toBeGreaterThan(0);
      for (const v of Object.values(out.cka) as number[]) {
        expect(v).toBeGreaterThan(0);
        expect(v).toBeLessThanOrEqual(1 + 1e-9);
      }
      expect(out.curves.train.loss).toHaveLength(5);
      expect(out.curves.test.examples).toBe(300);
      // BatchNorm statistics recomputed at every α on the curve's 300 train examples (the default).
      expect(out.normalization).toBe(name === 'mlp' ? null : 'recompute');
      expect(out.normExamples).toBe(name === 'mlp' ? null : 300);
    },
  );

  test('a model compared with itself: L2 0, barriers 0, CKA 1', async () => {
    const out = await json(onnx('resnet-s0.onnx'), onnx('resnet-s0.onnx'), '--data', 'mnist', ...FAST);
    expect(out.l2).toBe(0);
    expect(out.normalizedL2).toBe(0);
    expect(out.cosine).toBeCloseTo(1, 12);
    for (const split of ['train', 'test']) {
      for (const kind of ['loss', 'error']) {
        expect(out.barriers[split][kind].linear).toBe(0);
        expect(out.barriers[split][kind].midpointMean).toBe(0);
      }
    }
    expect(out.barrierLoss).toBe(0);
    expect(out.barrierError).toBe(0);
    expect(Object.keys(out.cka)).toEqual([
      'relu',
      'block1.relu1',
      'block1.relu2',
      'block2.relu1',
      'block2.relu2',
    ]);
    for (const v of Object.values(out.cka) as number[]) expect(v).toBeCloseTo(1, 9);
  });

  test('--bn copy interpolates the running statistics and says so; --bn repair on an MLP repairs its dense layers', async () => {
    const copied = await json(
      onnx('cnn-s0.onnx'),
      onnx('cnn-s1.onnx'),
      '--data',
      'mnist',
      ...FAST,
      '--bn',
      'copy',
    );
    expect(copied.normalization).toBe('copy');
    expect(copied.normExamples).toBeNull();
    const recOut = join(root, 'cmp-bn');
    const recomputed = await json(
      onnx('cnn-s0.onnx'),
      onnx('cnn-s1.onnx'),
      '--data',
      'mnist',
      ...FAST,
      '--out',
      recOut,
    );
    // Every curve and barrier row stores the mode and the examples of the statistics pass.
    const curveRows = (readMeasurement(join(recOut, 'compare.arrow')) ?? []).filter((r) =>
      ['interp_loss', 'interp_error', 'loss_barrier', 'error_barrier'].includes(r.metric),
    );
    expect(curveRows.length).toBeGreaterThan(0);
    for (const r of curveRows) {
      expect(r.options.normalization).toBe('recompute');
      expect(r.options.normExamples).toBe(300);
    }
    // The ends are the same weights; inside the path only the statistics differ.
    expect(recomputed.l2).toBe(copied.l2);
    expect(recomputed.curves.test.loss[2]).not.toBe(copied.curves.test.loss[2]);
    const repaired = await json(
      onnx('mlp-s0.onnx'),
      onnx('mlp-s1.onnx'),
      '--data',
      'mnist',
      ...FAST,
      '--bn',
      'repair',
    );
    expect(repaired.normalization).toBe('repair');
    const plain = await json(onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), '--data', 'mnist', ...FAST);
    expect(plain.normalization).toBeNull();
    // REPAIR keeps the endpoints (to float32 rounding) and lowers the midpoint's loss.
    expect(repaired.curves.test.loss[0]).toBeCloseTo(plain.curves.test.loss[0], 4);
    expect(repaired.curves.test.loss[2]).toBeLessThan(plain.curves.test.loss[2]);
  });

  test('the table names every section', async () => {
    const io = capture();
    const code = await cli(
      io,
      'compare',
      onnx('mlp-s0.onnx'),
      onnx('mlp-s1.onnx'),
      '--data',
      'mnist',
      ...FAST,
    );
    expect(code, io.err).toBe(EXIT_OK);
    for (const s of [
      'l2',
      'normalized l2',
      'cosine',
      'interpolation',
      'barrier',
      'linear CKA on 100 test examples',
      'relu1',
      'aligned B to A (permutation spec inferred from the graph: 2 groups, 64 units)',
      'weight',
      'activation',
    ]) {
      expect(io.out).toContain(s);
    }
  });
});

describe('twinscope compare on run directories', () => {
  test('DIR@STEP against the ONNX file exported from it: L2 0; --out stores the rows', async () => {
    const file = join(root, 'run20.onnx');
    const io = capture();
    expect(await cli(io, 'export', `${runDir}@20`, '--format', 'onnx', '--out', file), io.err).toBe(EXIT_OK);
    const out = join(root, 'cmp');
    const same = await json(runDir, file, '--data', specFile, '--out', out);
    expect(same.l2).toBe(0);
    expect(same.stepA).toBe(20);
    expect(same.stepB).toBeNull();
    expect(Object.keys(same.cka)).toEqual(['dense0', 'dense1']);
    const rows = readMeasurement(join(out, 'compare.arrow')) ?? [];
    const metrics = new Set(rows.map((r) => r.metric));
    for (const m of [
      'l2',
      'normalized_l2',
      'cosine',
      'interp_loss',
      'interp_error',
      'loss_barrier',
      'error_barrier',
      'cka',
    ]) {
      expect(metrics.has(m), m).toBe(true);
    }
    // 11 alphas × 2 curves × 2 splits, 2 conventions × 2 barriers × 2 splits, 1 + 6 tensors of l2, cka per layer.
    expect(rows.filter((r) => r.metric.startsWith('interp_'))).toHaveLength(44);
    expect(rows.filter((r) => /^(loss|error)_barrier$/.test(r.metric))).toHaveLength(8);
    expect(rows.filter((r) => r.metric === 'l2')).toHaveLength(7);
    // The same per alignment method (weight, activation; spec inferred from the exported graph).
    const alignedL2 = rows.filter((r) => r.metric === 'aligned_l2');
    expect(alignedL2.map((r) => [r.options.method, r.value])).toEqual([
      ['weight', 0],
      ['activation', 0],
    ]);
    expect(rows.filter((r) => r.metric.startsWith('aligned_interp_'))).toHaveLength(88);
    expect(rows.filter((r) => /^aligned_(loss|error)_barrier$/.test(r.metric))).toHaveLength(16);
    expect(rows.every((r) => r.study === 'compare' && r.step === 20)).toBe(true);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
    expect(summary.l2).toBe(0);
    // --out names a file: refused (exit 2) before any work.
    const io2 = capture();
    expect(
      await cli(io2, 'compare', runDir, file, '--data', specFile, '--alphas', '2', '--out', specFile),
    ).toBe(EXIT_USAGE);
  });

  test('two checkpoints of one run: a positive distance, endpoints evaluated exactly', async () => {
    const out = await json(`${runDir}@10`, `${runDir}@20`, '--data', specFile, '--alphas', '3');
    expect(out.l2).toBeGreaterThan(0);
    expect(out.alphas).toEqual([0, 0.5, 1]);
  });
});

describe('twinscope compare refuses bad input with exit code 2', () => {
  test.each([
    [
      [onnx('mlp-s0.onnx'), onnx('cnn-s0.onnx'), '--data', 'mnist'],
      /different weights: weight 0 is 'fc1.weight'/,
    ],
    [[onnx('cnn-s0.onnx'), onnx('cnn-s0-fused.onnx'), '--data', 'mnist'], /different weights/],
    [
      [onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), '--data', 'moons'],
      /examples have 2 features, the model takes \[784\]/,
    ],
    [[onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), '--data', 'imagenet'], /neither a dataset name/],
    [
      [onnx('cnn-s0.onnx'), onnx('cnn-s1.onnx'), '--data', 'mnist', '--bn', 'reset'],
      /--bn.*expected one of recompute, copy, repair, got 'reset'/,
    ],
    [[onnx('cnn-s0.onnx'), onnx('cnn-s1.onnx'), '--data', 'mnist', '--bn-batch', '1'], /integer ≥ 2/],
    [[onnx('mlp-s0.onnx'), join(root, 'missing.onnx'), '--data', 'mnist'], /no such file or directory/],
    [
      [onnx('mlp-s0.onnx'), `${onnx('mlp-s1.onnx')}@3`, '--data', 'mnist'],
      /@STEP applies to run directories/,
    ],
  ])('%s', async (args, message) => {
    const io = capture();
    expect(await cli(io, 'compare', ...(args as string[]))).toBe(EXIT_USAGE);
    expect(io.err).toMatch(message as RegExp);
  });
});
