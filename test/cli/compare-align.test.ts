/**
 * `twinscope compare --perm-spec FILE` and `--align`: a user permutation spec (JSON) is used and
 * reported; a malformed or wrong one exits 2 naming the field or tensor; `--align none` skips it.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { type CliIo, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { importOnnxFile } from '../../src/onnx/import-model.js';
import { inferPermutationSpec, permutationSpecJson } from '../../src/onnx/permutation-spec.js';
import { capture } from '../helpers/cli-io.js';
import { fixturePath } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-cli-compare-align-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', 'compare', ...args], io);
const onnx = (name: string) => fixturePath('onnx', name);
const FAST = [
  '--data',
  'mnist',
  '--examples',
  '200',
  '--cka-examples',
  '50',
  '--alphas',
  '3',
  '--align-examples',
  '200',
];

describe('twinscope compare --perm-spec', () => {
  test('a spec file is checked and used; --align weight runs weight matching only', async () => {
    const spec = permutationSpecJson(inferPermutationSpec(importOnnxFile(onnx('cnn-s0.onnx'))));
    const file = join(root, 'cnn-spec.json');
    writeFileSync(file, JSON.stringify(spec));
    const io = capture();
    const code = await cli(
      io,
      onnx('cnn-s0.onnx'),
      onnx('cnn-s1.onnx'),
      ...FAST,
      '--perm-spec',
      file,
      '--align',
      'weight',
      '--json',
    );
    expect(code, io.err).toBe(EXIT_OK);
    const out = JSON.parse(io.out);
    expect(out.aligned.spec).toBe('file');
    expect(out.aligned.groups).toBe(2);
    expect(out.aligned.activation).toBeNull();
    expect(out.alignedMethod).toBe('weight');
    expect(out.alignedL2).toBeLessThan(out.l2);
    expect(out.aligned.weight.sweeps).toBeGreaterThan(0);
  });

  test('bad specs exit 2 naming the field or the tensor; --align none needs no spec', async () => {
    const bad = join(root, 'bad.json');
    writeFileSync(
      bad,
      JSON.stringify({ perms: [{ name: 'p', axes: [{ tensor: 'conv7.weight', axis: 0 }] }] }),
    );
    let io = capture();
    expect(await cli(io, onnx('cnn-s0.onnx'), onnx('cnn-s1.onnx'), ...FAST, '--perm-spec', bad)).toBe(
      EXIT_USAGE,
    );
    expect(io.err).toMatch(
      /bad\.json: perms\[0\]\.axes\[0\]\.tensor: the model has no tensor 'conv7\.weight'/,
    );
    const spec = permutationSpecJson(inferPermutationSpec(importOnnxFile(onnx('mlp-s0.onnx'))));
    const fc1 = spec.perms[0] as (typeof spec.perms)[number];
    fc1.axes = fc1.axes.filter((a) => a.tensor !== 'fc1.bias');
    const wrong = join(root, 'wrong.json');
    writeFileSync(wrong, JSON.stringify(spec));
    io = capture();
    expect(await cli(io, onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), ...FAST, '--perm-spec', wrong)).toBe(
      EXIT_USAGE,
    );
    expect(io.err).toMatch(/axis 0 of 'fc1\.bias' is missing from 'fc1'/);
    io = capture();
    expect(
      await cli(
        io,
        onnx('mlp-s0.onnx'),
        onnx('mlp-s1.onnx'),
        ...FAST,
        '--perm-spec',
        join(root, 'none.json'),
      ),
    ).toBe(EXIT_USAGE);
    expect(io.err).toMatch(/none\.json: no such file/);
    io = capture();
    expect(await cli(io, onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), ...FAST, '--align', 'sideways')).toBe(
      EXIT_USAGE,
    );
    expect(io.err).toMatch(/--align/);
    io = capture();
    expect(
      await cli(io, onnx('mlp-s0.onnx'), onnx('mlp-s1.onnx'), ...FAST, '--align', 'none', '--json'),
    ).toBe(EXIT_OK);
    const out = JSON.parse(io.out);
    expect(out.alignedL2).toBeNull();
    expect(out.alignmentNote).toMatch(/--align none/);
  });
});
