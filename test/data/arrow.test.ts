import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  Field,
  FixedSizeList,
  Float32,
  Float64,
  Int32,
  Int64,
  List,
  Table,
  tableFromArrays,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import { afterAll, describe, expect, it } from 'vitest';
import { loadArrow, readArrowExamples } from '../../src/data/arrow.js';
import { loadDataset } from '../../src/data/load.js';
import { Rng } from '../../src/rng/rng.js';
import { scratchDir } from '../helpers/scratch.js';

const dir = scratchDir('arrow-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, columns: Record<string, Vector>): string {
  const path = join(dir, name);
  writeFileSync(path, tableToIPC(new Table(columns), 'file'));
  return path;
}

const rows = [
  [1, 2, 3],
  [4, 5, 6],
  [7, 8, 9],
  [10, 11, 12],
  [13, 14, 15],
];

const fixed = write('fixed.arrow', {
  feat: vectorFromArray(rows, new FixedSizeList(3, new Field('item', new Float32()))),
  cls: vectorFromArray([0, 2, 1, 2, 0], new Int32()),
});

describe('readArrowExamples', () => {
  it('reads FixedSizeList<Float32> features and Int32 labels', () => {
    const e = readArrowExamples(fixed, 'feat', 'cls');
    expect(e.dim).toBe(3);
    expect([...e.x]).toEqual(rows.flat());
    expect([...e.labels]).toEqual([0, 2, 1, 2, 0]);
  });

  it('reads List<Float64> features and Int64 labels', () => {
    const path = write('list.arrow', {
      feat: vectorFromArray(
        rows.map((r) => r.slice(0, 2)),
        new List(new Field('item', new Float64())),
      ),
      cls: vectorFromArray([1n, 0n, 1n, 0n, 1n], new Int64()),
    });
    const e = readArrowExamples(path, 'feat', 'cls');
    expect([e.dim, ...e.x.subarray(0, 4), ...e.labels]).toEqual([2, 1, 2, 4, 5, 1, 0, 1, 0, 1]);
  });

  it('names the file, the column and what was expected', () => {
    expect(() => readArrowExamples(fixed, 'nope', 'cls')).toThrow(
      /fixed\.arrow.*no column 'nope' \(has feat, cls\)/,
    );
    expect(() => readArrowExamples(fixed, 'cls', 'cls')).toThrow(/column 'cls'.*expected FixedSizeList/);
    const strings = join(dir, 'strings.arrow');
    writeFileSync(strings, tableToIPC(tableFromArrays({ feat: [1, 2], cls: ['a', 'b'] }), 'file'));
    expect(() => readArrowExamples(strings, 'feat', 'cls')).toThrow(/expected FixedSizeList/);
    const ragged = write('ragged.arrow', {
      feat: vectorFromArray([[1, 2], [3]], new List(new Field('item', new Float32()))),
      cls: vectorFromArray([0, 1], new Int32()),
    });
    expect(() => readArrowExamples(ragged, 'feat', 'cls')).toThrow(
      /ragged\.arrow.*row 1 has 1 values, expected 2/,
    );
    const badLabel = write('badlabel.arrow', {
      feat: vectorFromArray([[1], [2]], new FixedSizeList(1, new Field('item', new Float32()))),
      cls: vectorFromArray(['x', 'y'], new Utf8()),
    });
    expect(() => readArrowExamples(badLabel, 'feat', 'cls')).toThrow(
      /column 'cls'.*expected an integer type/,
    );
    const garbage = join(dir, 'garbage.arrow');
    writeFileSync(garbage, 'not arrow at all');
    expect(() => readArrowExamples(garbage, 'feat', 'cls')).toThrow(/garbage\.arrow/);
    expect(() => readArrowExamples(join(dir, 'missing.arrow'), 'feat', 'cls')).toThrow(
      /missing\.arrow.*cannot read/,
    );
  });
});

describe('loadArrow', () => {
  it('splits one file by testFraction, or uses a separate test file', () => {
    const d = loadArrow(
      { name: 'arrow', path: fixed, features: 'feat', label: 'cls', testFraction: 0.4 },
      Rng.fromSeed(1),
    );
    expect([d.inputDim, d.outputDim, d.train.n, d.test.n]).toEqual([3, 3, 3, 2]);
    const t = loadArrow(
      { name: 'arrow', path: fixed, testPath: fixed, features: 'feat', label: 'cls' },
      Rng.fromSeed(1),
    );
    expect([t.train.n, t.test.n]).toEqual([5, 5]);
    expect([...t.train.y.subarray(3, 6)]).toEqual([0, 0, 1]);
  });

  it('reads the file again on every loadDataset call (it may have changed)', () => {
    const path = write('changing.arrow', {
      feat: vectorFromArray(rows, new FixedSizeList(3, new Field('item', new Float32()))),
      cls: vectorFromArray([0, 1, 0, 1, 0], new Int32()),
    });
    const spec = { name: 'arrow', path, features: 'feat', label: 'cls', testFraction: 0.4 } as const;
    const before = loadDataset(spec, 1);
    write('changing.arrow', {
      feat: vectorFromArray(
        rows.map((r) => r.map((v) => -v)),
        new FixedSizeList(3, new Field('item', new Float32())),
      ),
      cls: vectorFromArray([0, 1, 0, 1, 0], new Int32()),
    });
    const after = loadDataset(spec, 1);
    expect([...after.train.x]).toEqual([...before.train.x].map((v) => -v));
  });

  it('checks the class count', () => {
    expect(
      loadArrow({ name: 'arrow', path: fixed, features: 'feat', label: 'cls', classes: 5 }, Rng.fromSeed(1))
        .outputDim,
    ).toBe(5);
    expect(() =>
      loadArrow({ name: 'arrow', path: fixed, features: 'feat', label: 'cls', classes: 2 }, Rng.fromSeed(1)),
    ).toThrow(/row 1 has label 2, beyond data\.classes = 2 \(labels 0 to 1\)/);
  });
});
