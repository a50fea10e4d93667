import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { writeFileAtomic, writeJsonAtomic } from '../../src/util/atomic-file.js';
import { scratchDir } from '../helpers/scratch.js';

const dir = scratchDir('twinscope-atomic-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('atomic writes', () => {
  test('the chunks end up concatenated; no temp file is left', () => {
    const file = join(dir, 'a.bin');
    writeFileAtomic(file, [new Uint8Array([1, 2]), new Uint8Array([]), new Uint8Array([3])]);
    expect([...readFileSync(file)]).toEqual([1, 2, 3]);
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('a failed write leaves the old file as it was and removes the temp file', () => {
    const file = join(dir, 'b.json');
    writeJsonAtomic(file, { v: 1 });
    expect(readFileSync(file, 'utf8')).toBe('{\n  "v": 1\n}\n');
    // A chunk that fails while it is written (after the first chunk reached the temp file).
    const broken = {
      get length(): number {
        throw new Error('disk on fire');
      },
    } as unknown as Uint8Array;
    expect(() => writeFileAtomic(file, [new Uint8Array([1]), broken])).toThrow('disk on fire');
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ v: 1 });
    expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('replaces an existing file whole', () => {
    const file = join(dir, 'c.txt');
    writeFileSync(file, 'old content that is longer');
    writeFileAtomic(file, [new TextEncoder().encode('new')]);
    expect(readFileSync(file, 'utf8')).toBe('new');
  });
});
