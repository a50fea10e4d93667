/**
 * A study's measurement files: `measurements/KEY.arrow` (the result rows of one pair, docs/formats.md)
 * and its index `measurements/KEY.json`, sealed (util/sealed-json.ts), recording the Arrow file's
 * digest and the pair. The Arrow file is written first and the index last, so a pair is measured
 * exactly when its index exists and matches: a re-run measures again a pair whose files are missing
 * or damaged, and the study reads the rows only after checking them.
 */
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { IntegrityError } from '../util/errors.js';
import { checkDigest, type FileDigest, isFileDigest } from '../util/file-digest.js';
import { readSealedJson, writeSealedJson } from '../util/sealed-json.js';
import { type ResultRow, readResults, writeResults } from './rows.js';

/** The index of the measurement file at `arrowPath` (`KEY.arrow` → `KEY.json`). */
function indexPath(arrowPath: string): string {
  return arrowPath.replace(/\.arrow$/, '.json');
}

/** Write the rows of pair (runA, runB) to `arrowPath`, then its sealed index. */
export function writeMeasurement(
  arrowPath: string,
  rows: readonly ResultRow[],
  pair: { runA: string; runB: string },
) {
  const digest = writeResults(arrowPath, rows);
  writeSealedJson(indexPath(arrowPath), {
    format: 1,
    files: { [basename(arrowPath)]: digest },
    rows: rows.length,
    ...pair,
  });
}

/**
 * The digest the index of `arrowPath` records, with the index's path; undefined when there is no
 * index. Throws an IntegrityError naming the index when it is damaged.
 */
function recorded(arrowPath: string): { digest: FileDigest; where: string } | undefined {
  const where = indexPath(arrowPath);
  if (!existsSync(where)) return undefined;
  const json = readSealedJson(where) as { files?: Record<string, unknown> };
  const digest = json.files?.[basename(arrowPath)];
  if (!isFileDigest(digest))
    throw new IntegrityError(`${where}: no digest of ${basename(arrowPath)} in 'files'`, where);
  return { digest, where };
}

/**
 * The rows of the measurement file at `arrowPath`, checked against its index; undefined when the
 * pair has no index (not measured, or interrupted before its index was written). Throws an
 * IntegrityError naming the file when the index or the Arrow file is damaged.
 */
export function readMeasurement(arrowPath: string): ResultRow[] | undefined {
  const index = recorded(arrowPath);
  return index && readResults(arrowPath, index);
}

/**
 * Whether the pair of `arrowPath` is measured: its index exists, its seal and the Arrow file's
 * digest match. A damaged pair counts as not measured (a re-run measures it again).
 */
export function measurementRecorded(arrowPath: string): boolean {
  try {
    const index = recorded(arrowPath);
    if (index) checkDigest(arrowPath, index.digest, index.where);
    return index !== undefined;
  } catch (e) {
    if (e instanceof IntegrityError) return false;
    throw e;
  }
}
