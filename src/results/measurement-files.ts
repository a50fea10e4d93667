/**
 * A study's or sweep's measurement files: `measurements/KEY.arrow` (the result rows of one pair, or
 * of one run of a sweep, docs/formats.md), any further files of the same measurement next to it (a
 * sweep's loss surfaces, `KEY.surface-…arrow`), and the index `measurements/KEY.json`, sealed
 * (util/sealed-json.ts), recording the digest of every one of them and the pair (runB null for a
 * single run). The data files are written first and the index last, so a pair (or run) is measured
 * exactly when its index exists and every file matches: a re-run measures again a pair whose files
 * are missing or damaged, and the study reads the rows only after checking them.
 */
import { existsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { IntegrityError } from '../util/errors.js';
import { checkDigest, type FileDigest, isFileDigest } from '../util/file-digest.js';
import { readSealedJson, writeSealedJson } from '../util/sealed-json.js';
import { type ResultRow, readResults, writeResults } from './rows.js';

/** The index of the measurement file at `arrowPath` (`KEY.arrow` → `KEY.json`). */
function indexPath(arrowPath: string): string {
  return arrowPath.replace(/\.arrow$/, '.json');
}

/**
 * Write the rows of pair (runA, runB) (runB null: one run) to `arrowPath`, then its sealed index,
 * recording the rows' file and the `extra` files already written next to it (file names in the same
 * folder, with their digests).
 */
export function writeMeasurement(
  arrowPath: string,
  rows: readonly ResultRow[],
  pair: { runA: string; runB: string | null },
  extra: Readonly<Record<string, FileDigest>> = {},
) {
  const digest = writeResults(arrowPath, rows);
  writeSealedJson(indexPath(arrowPath), {
    format: 1,
    files: { ...extra, [basename(arrowPath)]: digest },
    rows: rows.length,
    ...pair,
  });
}

/**
 * The digests the index of `arrowPath` records (by file name, the rows' file included), with the
 * index's path; undefined when there is no index. Throws an IntegrityError naming the index when it
 * is damaged.
 */
function recorded(arrowPath: string): { files: Record<string, FileDigest>; where: string } | undefined {
  const where = indexPath(arrowPath);
  if (!existsSync(where)) return undefined;
  const json = readSealedJson(where) as { files?: Record<string, unknown> };
  const files = json.files ?? {};
  if (!isFileDigest(files[basename(arrowPath)]))
    throw new IntegrityError(`${where}: no digest of ${basename(arrowPath)} in 'files'`, where);
  for (const [name, digest] of Object.entries(files)) {
    if (!isFileDigest(digest) || basename(name) !== name) {
      throw new IntegrityError(`${where}: 'files' has a bad entry '${name}'`, where);
    }
  }
  return { files: files as Record<string, FileDigest>, where };
}

/**
 * The rows of the measurement file at `arrowPath`, checked against its index (as is every other
 * file the index lists); undefined when the pair has no index (not measured, or interrupted before
 * its index was written). Throws an IntegrityError naming the file when the index or a file it
 * lists is damaged.
 */
export function readMeasurement(arrowPath: string): ResultRow[] | undefined {
  const index = recorded(arrowPath);
  if (!index) return undefined;
  const name = basename(arrowPath);
  for (const [file, digest] of Object.entries(index.files)) {
    if (file !== name) checkDigest(join(dirname(arrowPath), file), digest, index.where);
  }
  return readResults(arrowPath, { digest: index.files[name] as FileDigest, where: index.where });
}

/**
 * Whether the pair of `arrowPath` is measured: its index exists, its seal and the digest of every
 * file it lists match. A damaged pair counts as not measured (a re-run measures it again).
 */
export function measurementRecorded(arrowPath: string): boolean {
  try {
    const index = recorded(arrowPath);
    if (!index) return false;
    for (const [file, digest] of Object.entries(index.files)) {
      checkDigest(join(dirname(arrowPath), file), digest, index.where);
    }
    return true;
  } catch (e) {
    if (e instanceof IntegrityError) return false;
    throw e;
  }
}
