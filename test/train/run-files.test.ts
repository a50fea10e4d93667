/**
 * Finished run files are checked against run.json's checksums before their data is used: a flipped
 * byte in checkpoints.arrow stops every reader (checkpoints for measurements, embeddings and forks;
 * inspect; export) with an error naming the file, while `verify` lists it as a problem.
 */
import {
  closeSync,
  copyFileSync,
  cpSync,
  openSync,
  readFileSync,
  readSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { exportParquet } from '../../src/export/parquet.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints, StoreError } from '../../src/store/index.js';
import { embedRuns } from '../../src/study/embed-runs.js';
import { inspectRun, verifyRun } from '../../src/train/inspect.js';
import { trainRun } from '../../src/train/run.js';
import { checkRunFiles, readRunCheckpoints } from '../../src/train/run-files.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const root = scratchDir('run-files-');
const good = join(root, 'good');
const bad = join(root, 'bad');

beforeAll(async () => {
  await trainRun(parseRunSpec({ ...tinyBase, name: 'files' }), good);
  cpSync(good, bad, { recursive: true });
  // One flipped byte in the middle of the checkpoint data; the Arrow framing stays intact.
  const file = join(bad, 'checkpoints.arrow');
  const bytes = readFileSync(file);
  const at = Math.floor(bytes.length / 2);
  bytes[at] = (bytes[at] as number) ^ 0x40;
  writeFileSync(file, bytes);
}, 60_000);

describe('run files are checked against run.json on read', () => {
  test('an intact run reads as before', () => {
    expect(() => checkRunFiles(good)).not.toThrow();
    const direct = readCheckpoints(good);
    const checked = readRunCheckpoints(good);
    expect(checked.map((c) => c.step)).toEqual(direct.map((c) => c.step));
    expect(checked.at(-1)?.params).toEqual(direct.at(-1)?.params);
  });

  test('a flipped byte: the unchecked reader would use it, the checked readers name the file', () => {
    // Without the check the corrupted checkpoints decode (silently wrong weights).
    expect(readCheckpoints(bad).length).toBe(readCheckpoints(good).length);
    const named = new RegExp(
      `^${join(bad, 'checkpoints.arrow').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: sha256 [0-9a-f]{64} does not match the recorded [0-9a-f]{64}`,
    );
    expect(() => readRunCheckpoints(bad)).toThrow(named);
    expect(() => readRunCheckpoints(bad)).toThrow(StoreError);
    expect(() => inspectRun(bad)).toThrow(named);
    expect(verifyRun(bad).ok).toBe(false);
  });

  test('export and embed refuse the corrupted run', async () => {
    await expect(exportParquet(bad, join(root, 'export'))).rejects.toThrow(/checkpoints\.arrow: sha256/);
    await expect(embedRuns([good, bad], { method: 'pca', components: 2 })).rejects.toThrow(
      /checkpoints\.arrow: sha256/,
    );
  });

  test('a file checked once is not hashed again while unchanged, and a byte flipped in place after the check is still found', () => {
    const dir = join(root, 'flip-later');
    cpSync(good, dir, { recursive: true });
    const file = join(dir, 'checkpoints.arrow');
    expect(() => readRunCheckpoints(dir)).not.toThrow();
    expect(() => readRunCheckpoints(dir)).not.toThrow(); // the cached check
    // The same size, the same inode: only the byte and the file's times change.
    const fd = openSync(file, 'r+');
    const at = Math.floor(statSync(file).size / 2);
    const one = Buffer.alloc(1);
    readSync(fd, one, 0, 1, at);
    one[0] = (one[0] as number) ^ 0x01;
    writeSync(fd, one, 0, 1, at);
    closeSync(fd);
    expect(() => readRunCheckpoints(dir)).toThrow(/checkpoints\.arrow: sha256 [0-9a-f]{64} does not match/);
  });

  test('metrics.arrow is checked too', () => {
    const dir = join(root, 'bad-metrics');
    cpSync(good, dir, { recursive: true });
    const file = join(dir, 'metrics.arrow');
    copyFileSync(join(bad, 'checkpoints.arrow'), file);
    expect(() => checkRunFiles(dir)).toThrow(/metrics\.arrow: sha256/);
    expect(() => readRunCheckpoints(dir)).not.toThrow();
  });
});
