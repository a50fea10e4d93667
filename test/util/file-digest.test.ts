/** File digests: what an index records of a file, and the check a reader makes. */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import { IntegrityError } from '../../src/util/errors.js';
import { checkDigest, digestFile, digestProblem } from '../../src/util/file-digest.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-digest-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('file digests', () => {
  // 3 MiB + 5 bytes: more than one 1 MiB read chunk.
  const bytes = new Uint8Array((3 << 20) + 5).map((_, i) => (i * 7919) % 251);

  test('writeFileAtomic returns the digest of what it wrote; digestFile reads the same', () => {
    const path = join(root, 'a.bin');
    const written = writeFileAtomic(path, [bytes.subarray(0, 1000), bytes.subarray(1000)]);
    expect(written).toEqual({
      sha256: createHash('sha256').update(bytes).digest('hex'),
      bytes: bytes.length,
    });
    expect(digestFile(path)).toEqual(written);
    expect(digestProblem(path, written, 'index.json')).toBeUndefined();
  });

  test('another size, another byte, or no file: named, with the index that recorded it', () => {
    const path = join(root, 'b.bin');
    const recorded = writeFileAtomic(path, [bytes]);
    writeFileSync(path, bytes.subarray(0, 100));
    expect(digestProblem(path, recorded, 'index.json')).toBe(
      `${path}: 100 bytes, index.json records ${bytes.length} (the file was modified or truncated)`,
    );
    const flipped = bytes.slice();
    flipped[2_000_000] = (flipped[2_000_000] as number) ^ 0x10;
    writeFileSync(path, flipped);
    expect(digestProblem(path, recorded, 'index.json')).toMatch(
      new RegExp(
        `^${path}: sha256 [0-9a-f]{16}… does not match the ${recorded.sha256.slice(0, 16)}… index\\.json records`,
      ),
    );
    expect(() => checkDigest(path, recorded, 'index.json')).toThrow(IntegrityError);
    rmSync(path);
    expect(digestProblem(path, recorded, 'index.json')).toBe(`${path}: missing, but index.json lists it`);
  });
});
