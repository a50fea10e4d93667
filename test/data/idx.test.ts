import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parseIdx, readIdxFile } from '../../src/data/idx.js';
import { scratchDir } from '../helpers/scratch.js';

/** An IDX buffer: header for `type` and `shape`, then `body` bytes. */
function idx(type: number, shape: number[], body: number[]): Uint8Array {
  const head = [0, 0, type, shape.length];
  for (const d of shape) head.push((d >>> 24) & 255, (d >>> 16) & 255, (d >>> 8) & 255, d & 255);
  return Uint8Array.from([...head, ...body]);
}

describe('parseIdx', () => {
  it('parses uint8 arrays with their shape', () => {
    const a = parseIdx(idx(0x08, [2, 3], [1, 2, 3, 4, 5, 255]), 'x');
    expect(a.type).toBe('uint8');
    expect(a.shape).toEqual([2, 3]);
    expect([...a.data]).toEqual([1, 2, 3, 4, 5, 255]);
  });

  it('reads multi-byte types big-endian', () => {
    expect([...parseIdx(idx(0x0b, [2], [0x01, 0x02, 0xff, 0xfe]), 'x').data]).toEqual([258, -2]);
    expect([...parseIdx(idx(0x0c, [1], [0xff, 0xff, 0xff, 0xfd]), 'x').data]).toEqual([-3]);
    expect([...parseIdx(idx(0x0d, [1], [0x3f, 0xc0, 0, 0]), 'x').data]).toEqual([1.5]);
    expect([...parseIdx(idx(0x0e, [1], [0xc0, 0x04, 0, 0, 0, 0, 0, 0]), 'x').data]).toEqual([-2.5]);
    expect([...parseIdx(idx(0x09, [2], [0x7f, 0x80]), 'x').data]).toEqual([127, -128]);
  });

  it('names the file in errors on corrupt or truncated input', () => {
    expect(() => parseIdx(Uint8Array.from([0, 0]), 'a.idx')).toThrow(/'a\.idx'.*truncated header/);
    expect(() => parseIdx(idx(0x08, [2, 2], [1, 2, 3, 4]).subarray(0, 9), 'b.idx')).toThrow(
      /'b\.idx'.*truncated header/,
    );
    expect(() => parseIdx(idx(0x08, [2, 2], [1, 2, 3]), 'c.idx')).toThrow(/'c\.idx'.*truncated data/);
    expect(() => parseIdx(idx(0x08, [1], [1, 2]), 'd.idx')).toThrow(/'d\.idx'.*trailing bytes/);
    expect(() => parseIdx(Uint8Array.from([1, 0, 8, 0]), 'e.idx')).toThrow(/'e\.idx'.*magic/);
    expect(() => parseIdx(Uint8Array.from([0, 0, 7, 0]), 'f.idx')).toThrow(
      /'f\.idx'.*unknown element type 0x7/,
    );
  });
});

describe('readIdxFile', () => {
  it('reads plain and gzipped files', () => {
    const dir = scratchDir('idx-');
    const buf = idx(0x08, [3], [7, 8, 9]);
    writeFileSync(join(dir, 'plain'), buf);
    writeFileSync(join(dir, 'packed.gz'), gzipSync(buf));
    expect([...readIdxFile(join(dir, 'plain')).data]).toEqual([7, 8, 9]);
    expect([...readIdxFile(join(dir, 'packed.gz')).data]).toEqual([7, 8, 9]);
    writeFileSync(join(dir, 'bad.gz'), Uint8Array.from([0x1f, 0x8b, 1, 2, 3]));
    expect(() => readIdxFile(join(dir, 'bad.gz'))).toThrow(/bad\.gz'.*gzip/);
    rmSync(dir, { recursive: true, force: true });
  });
});
