/**
 * One exit-code rule (README): 0 success, 1 the work failed, 2 bad input, including bad data files
 * and wrong folders, through main(). Every refused command prints one `error:` line, nothing on
 * stdout, and leaves no new folder behind.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Field, FixedSizeList, Float32, Int32, Table, tableToIPC, vectorFromArray } from 'apache-arrow';
import { beforeAll, describe, expect, test } from 'vitest';
import { type CliIo, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase, tinyLinear } from '../helpers/study.js';

const root = scratchDir('twinscope-cli-exit-');
const cli = (io: CliIo, ...args: string[]) => main(['node', 'twinscope', ...args], io);

/** A JSON file in the test folder. */
function json(name: string, value: unknown): string {
  const path = join(root, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

/** 20 rows of 2 features with labels 0 / 1; `edit` changes them first. */
function arrowFile(name: string, edit: (rows: number[][], labels: number[]) => void = () => {}) {
  const rows = Array.from({ length: 20 }, (_, i) => [i / 20, 1 - i / 20]);
  const labels = rows.map((_, i) => i % 2);
  edit(rows, labels);
  const path = join(root, name);
  const x = vectorFromArray(rows, new FixedSizeList(2, new Field('item', new Float32())));
  writeFileSync(path, tableToIPC(new Table({ x, y: vectorFromArray(labels, new Int32()) }), 'file'));
  return path;
}

const arrowRun = (path: string, data: Record<string, unknown> = {}) => ({
  ...tinyBase,
  name: 'arrow',
  data: { name: 'arrow', path, features: 'x', label: 'y', testFraction: 0.2, ...data },
  batchSize: 4,
  epochs: 1,
});

/** `twinscope ARGS` exits 2 with one error line matching `message`, and `out` does not exist after. */
async function refused(args: string[], message: RegExp | string, out?: string) {
  const io = capture();
  expect(await cli(io, ...args), io.err).toBe(EXIT_USAGE);
  const lines = io.err.trimEnd().split('\n');
  expect(lines, io.err).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  if (typeof message === 'string') expect(lines[0]).toBe(`error: ${message}`);
  else expect(lines[0]).toMatch(message);
  expect(io.out).toBe('');
  if (out) expect(existsSync(out), `${out} left behind`).toBe(false);
}

describe('bad data and specs exit 2 before any folder is created', () => {
  test('a batch larger than the train split (train, run, sweep)', async () => {
    const spec = json('big-batch.json', { ...tinyLinear, batchSize: 97 }); // 96 train examples
    const out = join(root, 'big', 'run');
    const message = 'batchSize: must be at most the 96 examples of the train split (got 97)';
    await refused(['train', spec, '--out', out, '--no-progress'], message, join(root, 'big'));

    const study = json('big-study.json', {
      name: 'big',
      base: { ...tinyLinear, batchSize: 97 },
      perturbations: [{ kind: 'gaussian', sigmas: [0], forkSteps: [0] }],
      measure: { distance: {} },
      workers: 1,
    });
    await refused(['run', study, '--out', out, '--no-progress', '--no-report'], message, join(root, 'big'));

    const sweep = json('big-sweep.json', {
      name: 'big',
      sweep: { base: tinyLinear, grid: { batchSize: [32, 97] } },
      embed: { method: 'pca', components: 2 },
      workers: 1,
    });
    await refused(
      ['run', sweep, '--out', out, '--no-progress', '--no-report'],
      `run 1-batchSize97: ${message}`,
      join(root, 'big'),
    );
  });

  test.each([
    [
      'a NaN feature',
      (rows: number[][]) => {
        (rows[17] as number[])[1] = Number.NaN;
      },
      {},
      /column 'x': row 17, feature 1 is NaN$/,
    ],
    [
      'labels all 0',
      (_r: number[][], labels: number[]) => labels.fill(0),
      {},
      /a classifier needs at least two classes$/,
    ],
    [
      'a label beyond classes',
      (_r: number[][], labels: number[]) => {
        labels[3] = 4;
      },
      { classes: 2 },
      /column 'y': row 3 has label 4, beyond data.classes = 2 \(labels 0 to 1\)$/,
    ],
    ['a missing column', () => {}, { label: 'class' }, /no column 'class' \(has x, y\)$/],
  ])('bad Arrow data: %s (train and run)', async (name, edit, data, message) => {
    const path = arrowFile(`${name.replaceAll(' ', '-')}.arrow`, edit);
    const out = join(root, 'data-out');
    const spec = json('arrow-run.json', arrowRun(path, data));
    await refused(['train', spec, '--out', out, '--no-progress'], message, out);
    const study = json('arrow-study.json', {
      name: 'arrow',
      base: arrowRun(path, data),
      perturbations: [{ kind: 'gaussian', sigmas: [0], forkSteps: [0] }],
      measure: { distance: {} },
      workers: 1,
    });
    await refused(['run', study, '--out', out, '--no-progress', '--no-report'], message, out);
  });

  test('a good Arrow file trains (exit 0)', async () => {
    const spec = json('arrow-good.json', arrowRun(arrowFile('good.arrow')));
    const io = capture();
    expect(await cli(io, 'train', spec, '--out', join(root, 'arrow-good'), '--no-progress'), io.err).toBe(
      EXIT_OK,
    );
  });
});

describe('wrong folders exit 2; problems found in a run exit 1', () => {
  const run = join(root, 'run');
  const file = join(root, 'a-file');
  const notRun = join(root, 'not-a-run');
  beforeAll(async () => {
    await trainRun(parseRunSpec(tinyLinear), run);
    writeFileSync(file, 'keep me');
    mkdirSync(notRun);
  }, 60_000);

  test('inspect, verify, export on a folder that is not a run (or study, sweep, embedding) directory', async () => {
    for (const command of ['inspect', 'export']) {
      await refused([command, notRun], `${notRun}: not a run directory (no run.json)`);
      await refused(
        [command, join(root, 'nowhere')],
        `${join(root, 'nowhere')}: not a run directory (no such folder)`,
      );
      await refused([command, file], `${file}: not a run directory (a file, not a folder)`);
    }
    // verify takes runs, studies, sweeps and embeddings.
    const what =
      'not a run, study, sweep or embedding directory (no run.json, study.json, sweep.json or embedding.json)';
    await refused(['verify', notRun], `${notRun}: ${what}`);
    await refused(['verify', notRun, '--json'], `${notRun}: ${what}`);
    await refused(
      ['verify', join(root, 'nowhere')],
      `${join(root, 'nowhere')}: not a directory (no such folder)`,
    );
    await refused(['verify', file], `${file}: not a directory (a file, not a folder)`);
    expect(readdirSync(notRun)).toEqual([]);
  });

  test('train --out an existing file, or below one', async () => {
    const spec = json('lin.json', tinyLinear);
    await refused(['train', spec, '--out', file, '--no-progress'], `${file}: exists and is not a folder`);
    await refused(
      ['train', spec, '--out', join(file, 'sub'), '--no-progress'],
      `${join(file, 'sub')}: cannot be a folder (part of its path is a file)`,
    );
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  test('train into a folder that holds another run', async () => {
    const spec = json('other.json', { ...tinyLinear, seed: 5 });
    await refused(['train', spec, '--out', run, '--no-progress'], /holds a different run \('lin'/);
  });

  test('embed: a bad run directory leaves no --out folder', async () => {
    const out = join(root, 'embed-out');
    await refused(['embed', run, notRun, '--method', 'pca', '--out', out], /not a run directory/, out);
  });

  test('verify finds a problem in a run: exit 1', async () => {
    const broken = join(root, 'broken');
    await trainRun(parseRunSpec(tinyLinear), broken);
    writeFileSync(join(broken, 'metrics.arrow'), 'garbage');
    const io = capture();
    expect(await cli(io, 'verify', broken)).toBe(EXIT_FAILURE);
    expect(io.out).toMatch(/metrics\.arrow/);
  });
});
