/**
 * Atomic file writes: a finalized file is either the old one or the complete new one, never a torn
 * mix, whatever kills the process (temp file in the same folder, fsync, rename, fsync of the folder).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { digestBytes, type FileDigest } from './file-digest.js';

/**
 * Write the concatenation of `chunks` to `file` atomically: temp file `FILE.tmp-PID`, fsync,
 * rename, fsync of the directory. A failed write removes the temp file and leaves `file` as it was.
 * Returns the digest of what was written, for the index that records it.
 */
export function writeFileAtomic(file: string, chunks: Uint8Array[]): FileDigest {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    const fd = fs.openSync(tmp, 'w');
    try {
      for (const c of chunks) writeAll(fd, c);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(path.dirname(file));
  return digestBytes(chunks);
}

function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, 'r');
    fs.fsyncSync(fd);
  } catch {
    // Some platforms cannot fsync directories; the rename is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

export function writeAll(fd: number, bytes: Uint8Array): void {
  let done = 0;
  while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
}

/** Write JSON (2-space indent, trailing newline) atomically; see {@link writeFileAtomic}. */
export function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, [new TextEncoder().encode(`${JSON.stringify(value, null, 2)}\n`)]);
}
