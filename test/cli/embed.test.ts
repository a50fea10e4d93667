/**
 * `twinscope embed`: a successful PCA and InPCA embedding of two tiny runs (printed summary, written
 * files), InPCA of two regression runs with --sigma, and exit code 2 with one clear line on bad input.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import type { CliIo } from '../../src/cli/io.js';
import { EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase, tinyLinear } from '../helpers/study.js';

const root = scratchDir('twinscope-cli-embed-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);

const tinyRun = { ...tinyBase, name: 'tiny', epochs: 1, checkpoints: { every: 2 } };
const a = join(root, 'a');
const b = join(root, 'b');
const wide = join(root, 'wide');

beforeAll(async () => {
  await trainRun(parseRunSpec(tinyRun), a);
  await trainRun(parseRunSpec({ ...tinyRun, seed: 1, dataSeed: 0 }), b);
  await trainRun(parseRunSpec({ ...tinyRun, model: { ...tinyRun.model, hidden: [12] } }), wide);
}, 60_000);

describe('twinscope embed', () => {
  test('inpca: prints the explained stress of the top 1, 2, 3 axes and writes the files', async () => {
    const out = join(root, 'out-inpca');
    const io = capture();
    expect(await cli(io, 'embed', a, b, '--method', 'inpca', '--out', out, '--examples', '40')).toBe(EXIT_OK);
    expect(io.err).toBe('');
    expect(io.out).toMatch(/^inpca: \d+ checkpoints of 2 runs on 40 test examples, 3 axes$/m);
    expect(io.out).toMatch(/^explained stress +top 1: [\d.]+% +top 2: [\d.]+% +top 3: [\d.]+%$/m);
    for (const f of ['embedding.arrow', 'embedding.json']) {
      expect(existsSync(join(out, f))).toBe(true);
      expect(io.out).toContain(join(out, f));
    }
    for (const f of ['embedding.svg', 'embedding.png', 'embedding-pairs.svg', 'embedding-pairs.vl.json'])
      expect(existsSync(join(out, 'plots', f))).toBe(true);
    const json = JSON.parse(readFileSync(join(out, 'embedding.json'), 'utf8'));
    expect(json.method).toBe('inpca');
    expect(json.explainedStress).toHaveLength(3);
  });

  test('pca: prints the explained variance', async () => {
    const out = join(root, 'out-pca');
    const io = capture();
    expect(await cli(io, 'embed', a, b, '--method', 'pca', '--out', out, '--components', '2')).toBe(EXIT_OK);
    expect(io.out).toMatch(/^explained variance +top 1: [\d.]+% +top 2: [\d.]+%$/m);
    expect(existsSync(join(out, 'plots', 'embedding.svg'))).toBe(true);
    expect(existsSync(join(out, 'plots', 'embedding-pairs.svg'))).toBe(false);
  });

  test.each([
    ['no run directories', ['--method', 'pca', '--out', 'x'], /missing required argument/],
    ['not a run directory', [root, '--method', 'pca', '--out', join(root, 'x')], /no run\.json/],
    [
      'mismatched layouts',
      [a, wide, '--method', 'pca', '--out', join(root, 'x')],
      /parameter layout differs/,
    ],
    ['unknown method', [a, '--method', 'tsne', '--out', join(root, 'x')], /invalid/],
    ['no --method', [a, '--out', join(root, 'x')], /--method/],
    [
      'bad --components',
      [a, '--method', 'pca', '--out', join(root, 'x'), '--components', '0'],
      /positive integer/,
    ],
    ['bad --sigma', [a, '--method', 'inpca', '--out', join(root, 'x'), '--sigma', '-1'], /positive number/],
  ])('%s exits 2 with one line', async (_what, args, message) => {
    const io = capture();
    expect(await cli(io, 'embed', ...args)).toBe(EXIT_USAGE);
    expect(io.err.split('\n')[0]).toMatch(message);
    expect(io.out).toBe('');
  });

  test('inpca of regression runs: Gaussian outputs, distances scale as 1 / sigma²', async () => {
    const la = join(root, 'lin-a');
    const lb = join(root, 'lin-b');
    await trainRun(parseRunSpec(tinyLinear), la);
    await trainRun(parseRunSpec({ ...tinyLinear, seed: 1 }), lb);
    const eigen = async (sigma: string) => {
      const out = join(root, `out-lin-${sigma}`);
      const io = capture();
      expect(await cli(io, 'embed', la, lb, '--method', 'inpca', '--out', out, '--sigma', sigma)).toBe(
        EXIT_OK,
      );
      expect(io.out).toMatch(/^eigenvalue signs +\+ \+ \+$/m);
      return JSON.parse(readFileSync(join(out, 'embedding.json'), 'utf8'));
    };
    const one = await eigen('1');
    const two = await eigen('2');
    expect(one.options).toMatchObject({ likelihood: 'gaussian', sigma: 1 });
    expect(two.options.sigma).toBe(2);
    one.eigenvalues.forEach((l: number, k: number) => {
      expect(two.eigenvalues[k]).toBeCloseTo(l / 4, 12);
    });
  });

  test('a mismatched run is named in the error', async () => {
    const io = capture();
    expect(await cli(io, 'embed', a, wide, '--method', 'pca', '--out', join(root, 'x'))).toBe(EXIT_USAGE);
    expect(io.err).toBe(
      `error: ${wide}: parameter layout differs from ${a} (${io.err.match(/\((\d+ vs \d+)/)?.[1]} parameters); PCA of weights needs one model layout\n`,
    );
  });

  test('help lists examples', async () => {
    const io = capture();
    await cli(io, 'embed', '--help');
    expect(io.out).toContain('Examples:');
    expect(io.out).toContain('twinscope embed');
  });
});
