/**
 * `twinscope merge`: on the PyTorch fixtures (fixtures/onnx/), merging two independently trained
 * MLPs after weight matching and REPAIR scores far above the unaligned merge (issue 15's
 * done-when); the written ONNX file imports back to the merged weights bit for bit and scores what
 * merge.json says; closed forms (midpoint, task arithmetic to an endpoint); greedy soup adds and
 * leaves out as the accuracies dictate; twinscope runs align through their exported layout; bad
 * input exits 2 naming the option.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { loadDataset } from '../../src/data/load.js';
import { importOnnxFile } from '../../src/onnx/import-model.js';
import { ImportedSession } from '../../src/onnx/session.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { fixturePath } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-cli-merge-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);
const onnx = (name: string) => fixturePath('onnx', name);

interface Score {
  examples: number;
  loss: number;
  accuracy: number;
}
interface MergeJson {
  method: string;
  models: string[];
  align: string;
  normalization: string | null;
  normExamples: number | null;
  coefficients: number[];
  endpoints: { source: string; train: Score; test: Score }[];
  merged: { train: Score; test: Score };
  alignment: { sweeps: number | null; converged: boolean | null }[];
  soup: { split: string; ingredients: number[]; steps: { model: number; added: boolean }[] } | null;
}

let n = 0;
async function merge(...args: string[]): Promise<{ json: MergeJson; out: string; table: string }> {
  const out = join(root, `m${n++}.onnx`);
  const io = capture();
  expect(await cli(io, 'merge', ...args, '--out', out), io.err).toBe(EXIT_OK);
  const json = JSON.parse(readFileSync(join(root, `m${n - 1}.merge.json`), 'utf8')) as MergeJson;
  return { json, out, table: io.out };
}

describe('merging the two PyTorch MLPs', () => {
  test('--align weight --repair scores far above the unaligned merge (test accuracy 0.8845 vs 0.485)', async () => {
    const mlps = [onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx')];
    const plain = await merge(...mlps, '--data', 'mnist');
    const aligned = await merge(...mlps, '--data', 'mnist', '--align', 'weight');
    const repaired = await merge(...mlps, '--data', 'mnist', '--align', 'weight', '--repair');
    const repairOnly = await merge(...mlps, '--data', 'mnist', '--repair');
    // The endpoints as PyTorch trained them (test split: 2,000 digits).
    expect(plain.json.endpoints.map((e) => e.test.accuracy)).toEqual([0.8935, 0.871]);
    expect(plain.json.normalization).toBeNull();
    expect(repaired.json.normalization).toBe('repair');
    expect(repaired.json.normExamples).toBe(8000);
    expect(repaired.json.align).toBe('weight');
    expect(repaired.json.alignment[0]?.converged).toBe(true);
    // The unaligned midpoint is compare's α = ½ (test error 0.515).
    expect(plain.json.merged.test.accuracy).toBe(0.485);
    expect(repairOnly.json.merged.test.accuracy).toBe(0.615);
    expect(aligned.json.merged.test.accuracy).toBe(0.877);
    expect(repaired.json.merged.test.accuracy).toBe(0.8845);
    expect(repaired.json.merged.test.loss).toBeCloseTo(0.45085, 4);
    expect(repaired.json.merged.test.accuracy).toBeGreaterThan(plain.json.merged.test.accuracy + 0.3);
    expect(repaired.table).toMatch(/merged\s+0\.45278\s+0\.8799\s+0\.45085\s+0\.8845/);
  });

  test('the written ONNX file imports back to the merged weights and scores what merge.json says', async () => {
    const a = importOnnxFile(onnx('mlp-s0.onnx'));
    const b = importOnnxFile(onnx('mlp-s1.onnx'));
    const { json, out } = await merge(
      onnx('mlp-s0.onnx'),
      onnx('mlp-s1.onnx'),
      '--data',
      'mnist',
      '--weights',
      '0.5,0.5',
    );
    const m = importOnnxFile(out);
    expect(m.architecture.layout.tensors.map((t) => [t.name, t.shape])).toEqual(
      a.architecture.layout.tensors.map((t) => [t.name, t.shape]),
    );
    expect(m.producer).toMatch(/^twinscope /);
    // The midpoint, entry by entry.
    const mid = a.weights.map((v, i) => Math.fround(0.5 * v + 0.5 * (b.weights[i] as number)));
    expect(Buffer.from(m.weights.buffer).equals(Buffer.from(mid.buffer))).toBe(true);
    const ds = loadDataset({ name: 'mnist' }, 0);
    const session = await ImportedSession.create(m.architecture);
    const r = await session.evaluate(m.weights, ds.test.x, ds.test.y, ds.test.n);
    await session.dispose();
    expect(r.loss).toBe(json.merged.test.loss);
    expect(r.correct / r.count).toBe(json.merged.test.accuracy);
    // onnxruntime runs the file unchanged (initializers, input 'input', output 'logits'), and
    // gives the logits twinscope's session gives.
    const raw = await ort.InferenceSession.create(readFileSync(out));
    expect(raw.inputNames).toEqual(['input']);
    expect(raw.outputNames).toEqual(['logits']);
    const x = ds.test.x.subarray(0, 10 * 784);
    const z = (await raw.run({ input: new ort.Tensor('float32', Float32Array.from(x), [10, 784]) }))
      .logits as ort.Tensor;
    const s2 = await ImportedSession.create(m.architecture);
    const want = await s2.logits(m.weights, x, 10);
    await s2.dispose();
    await raw.release();
    // (Not bit for bit: with the weights as initializers onnxruntime prepacks them.)
    (z.data as Float32Array).forEach((v, i) => {
      expect(Math.abs(v - (want.data[i] as number))).toBeLessThan(1e-5);
    });
  });

  test('task arithmetic from base s0 with s1 at λ = 1 gives s1 bit for bit', async () => {
    const { out, json } = await merge(
      onnx('mlp-s1.onnx'),
      '--base',
      onnx('mlp-s0.onnx'),
      '--method',
      'task-arithmetic',
      '--data',
      'mnist',
      '--examples',
      '200',
    );
    const s1 = importOnnxFile(onnx('mlp-s1.onnx')).weights;
    expect(Buffer.from(importOnnxFile(out).weights.buffer).equals(Buffer.from(s1.buffer))).toBe(true);
    expect(json.merged.test).toEqual(json.endpoints[0]?.test);
  });

  test('greedy soup: s0 first, its identical export joins, s1 is left out', async () => {
    const { json, table } = await merge(
      onnx('mlp-s1.onnx'),
      onnx('mlp-s0.onnx'),
      onnx('mlp-s0-fused.onnx'),
      '--method',
      'greedy-soup',
      '--data',
      'mnist',
    );
    expect(json.soup?.split).toBe('test');
    expect(json.soup?.steps.map((s) => [s.model, s.added])).toEqual([
      [1, true],
      [2, true],
      [0, false],
    ]);
    expect(json.soup?.ingredients).toEqual([1, 2]);
    expect(json.merged.test.accuracy).toBe(0.8935);
    expect(table).toMatch(/left out/);
  });
});

describe('merging BatchNorm networks', () => {
  test('the CNN midpoint with recomputed statistics; copied statistics are the plain midpoint', async () => {
    const cnn = [onnx('cnn-s0.onnx'), onnx('cnn-s1.onnx'), '--data', 'mnist', '--examples', '500'];
    const copied = await merge(...cnn, '--bn', 'copy');
    const recomputed = await merge(...cnn);
    const repaired = await merge(...cnn, '--repair');
    expect([copied.json.normalization, recomputed.json.normalization, repaired.json.normalization]).toEqual([
      'copy',
      'recompute',
      'repair',
    ]);
    const a = importOnnxFile(onnx('cnn-s0.onnx'));
    const b = importOnnxFile(onnx('cnn-s1.onnx'));
    const mid = a.weights.map((v, i) => Math.fround(0.5 * v + 0.5 * (b.weights[i] as number)));
    expect(Buffer.from(importOnnxFile(copied.out).weights.buffer).equals(Buffer.from(mid.buffer))).toBe(true);
    // Recomputing changes only the running statistics.
    const rec = importOnnxFile(recomputed.out);
    for (const t of rec.architecture.layout.tensors) {
      const same = rec.weights.subarray(t.offset, t.offset + t.size).every((v, i) => v === mid[t.offset + i]);
      expect(same, t.name).toBe(!/running_(mean|var)$/.test(t.name));
    }
    // Unaligned, the midpoint is poor whatever the statistics (test accuracy on 500 digits).
    expect([copied, recomputed, repaired].map((m) => m.json.merged.test.accuracy)).toEqual([
      0.36, 0.31, 0.312,
    ]);
  });

  test('the CNN aligned by weight matching (inferred spec): 94.6 % against 28.05 % unaligned', async () => {
    const cnn = [onnx('cnn-s0.onnx'), onnx('cnn-s1.onnx'), '--data', 'mnist'];
    const aligned = await merge(...cnn, '--align', 'weight');
    expect(aligned.json.normalization).toBe('recompute');
    expect(aligned.json.alignment[0]?.converged).toBe(true);
    expect(aligned.json.endpoints.map((e) => e.test.accuracy)).toEqual([0.959, 0.9565]);
    expect(aligned.json.merged.test.accuracy).toBe(0.946);
    const plain = await merge(...cnn);
    expect(plain.json.merged.test.accuracy).toBe(0.2805);
  });
});

const runSpec = (seed: number) => ({
  name: `m${seed}`,
  seed,
  data: { name: 'moons', n: 200, noise: 0.2, testFraction: 0.2, standardize: true },
  model: { kind: 'mlp', hidden: [8, 6] },
  optimizer: { kind: 'adam', lr: 0.02 },
  batchSize: 40,
  steps: 20,
  checkpoints: { every: 10 },
});
const specFile = join(root, 'spec.json');
writeFileSync(specFile, JSON.stringify(runSpec(1)));
// A wrong permutation spec of the PyTorch MLP: fc1's units without their bias and fc2's inputs.
writeFileSync(
  join(root, 'bad-spec.json'),
  JSON.stringify({ perms: [{ name: 'P', axes: [{ tensor: 'fc1.weight', axis: 0 }] }] }),
);

describe('merging twinscope runs', () => {
  beforeAll(async () => {
    await trainRun(parseRunSpec(runSpec(1)), join(root, 'r1'));
    await trainRun(parseRunSpec(runSpec(2)), join(root, 'r2'));
  }, 60_000);

  test('DIR@STEP inputs align by weight and by activation', async () => {
    for (const how of ['weight', 'activation']) {
      const { json } = await merge(
        join(root, 'r1@20'),
        join(root, 'r2'),
        '--data',
        specFile,
        '--align',
        how,
        '--repair',
      );
      expect(json.models).toEqual([`${join(root, 'r1')}@20`, `${join(root, 'r2')}@20`]);
      expect(json.align).toBe(how);
      expect(json.merged.test.examples).toBe(40);
    }
  });
});

describe('twinscope merge refuses bad input with exit code 2', () => {
  const two = [onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), '--data', 'mnist'];
  test.each([
    [[...two, onnx('mlp-s0.onnx'), '--method', 'slerp'], /slerp merges exactly two models, got 3/],
    [[...two, '--method', 'ties'], /--method ties merges task vectors relative to a base model: give --base/],
    [[...two, '--base', onnx('mlp-s0.onnx')], /--base applies to task-arithmetic/],
    [[...two, '--t', '0.3'], /--t applies to --method slerp only/],
    [[...two, '--method', 'slerp', '--t', '1.5'], /--t must be in \[0, 1\], got 1.5/],
    [[...two, '--weights', '1,2,3'], /--weights: 3 values for 2 models/],
    [[...two, '--weights', '1,-1'], /sum to 0/],
    [
      [...two, '--method', 'dare', '--base', onnx('mlp-s0.onnx'), '--density', '0'],
      /--density must be in \(0, 1\]/,
    ],
    [[...two, '--method', 'average'], /--method.*expected one of linear, slerp/],
    [[...two, '--repair', '--bn', 'copy'], /--repair and --bn copy contradict/],
    [
      [...two, '--perm-spec', join(root, 'bad-spec.json')],
      /--perm-spec applies with --align weight or activation/,
    ],
    [
      [...two, '--align', 'weight', '--perm-spec', join(root, 'bad-spec.json')],
      /--align: .*mlp-s0.onnx: the permutation spec is wrong: axis 0 of 'fc1.weight'/,
    ],
    [[onnx('mlp-s0.onnx'), onnx('cnn-s0.onnx'), '--data', 'mnist'], /different weights/],
    [[...two, '--data', 'moons'], /examples have 2 features/],
  ])('%s', async (args, message) => {
    const io = capture();
    expect(await cli(io, 'merge', ...(args as string[]), '--out', join(root, 'bad.onnx'))).toBe(EXIT_USAGE);
    expect(io.err).toMatch(message as RegExp);
  });

  test('--out a folder', async () => {
    const io = capture();
    expect(
      await cli(io, 'merge', onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), '--data', 'mnist', '--out', root),
    ).toBe(EXIT_USAGE);
    expect(io.err).toMatch(/is a folder/);
  });

  test('--repair on a graph without normalization or hidden dense layers (a linear model)', async () => {
    const linear = { ...runSpec(3), model: { kind: 'linear' } };
    const dir = join(root, 'linear');
    await trainRun(parseRunSpec(linear), dir);
    const io = capture();
    const code = await cli(
      io,
      'merge',
      dir,
      dir,
      '--data',
      specFile,
      '--repair',
      '--out',
      join(root, 'lin.onnx'),
    );
    expect(code).toBe(EXIT_USAGE);
    const aligned = capture();
    expect(
      await cli(
        aligned,
        'merge',
        dir,
        dir,
        '--data',
        specFile,
        '--align',
        'weight',
        '--out',
        join(root, 'lin.onnx'),
      ),
    ).toBe(EXIT_USAGE);
    expect(aligned.err).toMatch(/--align: .*linear@20 has no hidden units or channels to permute/);
    expect(io.err).toMatch(
      /--repair needs normalization layers \(BatchNormalization\) or dense\/convolutional layers with a bias before an activation/,
    );
  });

  test('--repair on the MatMul + Add export repairs its dense layers', async () => {
    const { json } = await merge(
      onnx('mlp-s0-matmul.onnx'),
      onnx('mlp-s0.onnx').replace('s0', 's0-matmul'),
      '--data',
      'mnist',
      '--examples',
      '200',
      '--repair',
    );
    // The model merged with itself and repaired to its own statistics: the model itself.
    expect(json.normalization).toBe('repair');
    expect(json.merged.test.accuracy).toBe(json.endpoints[0]?.test.accuracy);
    expect(json.merged.test.loss).toBeCloseTo(json.endpoints[0]?.test.loss as number, 5);
  });
});
