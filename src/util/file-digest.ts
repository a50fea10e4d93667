/**
 * Digests of finalized files: the sha256 and size that the JSON indexing a file records (run.json for
 * a run's Arrow files, status.json for results.arrow, embedding.json for embedding.arrow, …), and
 * the check every reader makes before using the file.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { IntegrityError } from './errors.js';

/** What an index records of one finalized file. */
export interface FileDigest {
  /** sha256 of the file's bytes (hex). */
  readonly sha256: string;
  /** The file's size in bytes. */
  readonly bytes: number;
}

/** sha256 (hex) of a file, read in 1 MiB chunks. */
export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** The digest of `bytes` as they were written to a file. */
export function digestBytes(chunks: readonly Uint8Array[]): FileDigest {
  const h = createHash('sha256');
  let bytes = 0;
  for (const c of chunks) {
    h.update(c);
    bytes += c.byteLength;
  }
  return { sha256: h.digest('hex'), bytes };
}

/** The digest of the file at `path`. */
export function digestFile(path: string): FileDigest {
  return { sha256: sha256File(path), bytes: fs.statSync(path).size };
}

/**
 * Why the file at `path` does not match `expected` (missing, another size, another sha256), or
 * undefined when it matches. `where` names the index that recorded the digest.
 */
export function digestProblem(path: string, expected: FileDigest, where: string): string | undefined {
  const stat = fs.statSync(path, { throwIfNoEntry: false });
  if (!stat?.isFile()) return `${path}: missing, but ${where} lists it`;
  if (stat.size !== expected.bytes) {
    return `${path}: ${stat.size} bytes, ${where} records ${expected.bytes} (the file was modified or truncated)`;
  }
  const sha = sha256File(path);
  if (sha !== expected.sha256) {
    return `${path}: sha256 ${sha.slice(0, 16)}… does not match the ${expected.sha256.slice(0, 16)}… ${where} records (the file was modified or corrupted)`;
  }
  return undefined;
}

/** Throw an {@link IntegrityError} naming `path` unless it matches `expected` ({@link digestProblem}). */
export function checkDigest(path: string, expected: FileDigest, where: string): void {
  const problem = digestProblem(path, expected, where);
  if (problem) throw new IntegrityError(problem, path);
}

/** Whether `value` has the shape of a {@link FileDigest}. */
export function isFileDigest(value: unknown): value is FileDigest {
  const d = value as Partial<FileDigest> | null;
  return typeof d === 'object' && d !== null && typeof d.sha256 === 'string' && typeof d.bytes === 'number';
}
