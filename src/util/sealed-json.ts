/**
 * Sealed JSON: an index file (run.json, study.json, status.json, embedding.json, …) that carries the
 * sha256 of its own content, so a flipped byte that still parses (a changed digit, a changed name)
 * is found on read instead of becoming a wrong number. The seal is the field `checksum`: the sha256
 * (hex) of the canonical JSON (util/json.ts) of the document without it. Canonical JSON sorts keys
 * and JavaScript numbers round-trip through JSON exactly, so the seal survives any re-indentation.
 */
import { readFileSync } from 'node:fs';
import { writeJsonAtomic } from './atomic-file.js';
import { IntegrityError } from './errors.js';
import { configHash } from './json.js';

/** The field that holds a sealed document's checksum. */
const SEAL_FIELD = 'checksum';

/** `value` with its seal: the sha256 of its canonical JSON, in the field `checksum` (last). */
export function sealJson<T extends object>(value: T): T & { readonly checksum: string } {
  const { [SEAL_FIELD]: _old, ...rest } = value as Record<string, unknown>;
  return { ...(rest as T), [SEAL_FIELD]: configHash(rest) } as T & { readonly checksum: string };
}

/** Write `value` sealed ({@link sealJson}) to `path` atomically (2-space indent, trailing newline). */
export function writeSealedJson(path: string, value: object): void {
  writeJsonAtomic(path, sealJson(value));
}

/**
 * Check a parsed document's seal: undefined when it matches, else why not. A document without a
 * seal passes only when `unsealedOk(doc)` says it is of a format written before seals existed.
 */
function sealProblem(
  doc: unknown,
  unsealedOk: (doc: Record<string, unknown>) => boolean,
): string | undefined {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return 'not a JSON object';
  const { [SEAL_FIELD]: seal, ...rest } = doc as Record<string, unknown>;
  if (seal === undefined) {
    return unsealedOk(rest) ? undefined : `no '${SEAL_FIELD}' field (its format is sealed: it was modified)`;
  }
  const actual = configHash(rest);
  if (seal === actual) return undefined;
  return `content does not match its checksum (recorded ${String(seal).slice(0, 16)}…, content ${actual.slice(0, 16)}…): the file was modified or corrupted`;
}

/**
 * Read a sealed JSON file and check its seal ({@link sealProblem}); returns the document without the
 * seal field. Throws an {@link IntegrityError} naming the file when it is not valid JSON or the
 * seal does not match (exit code 1: a damaged file is not bad input).
 */
export function readSealedJson(
  path: string,
  unsealedOk: (doc: Record<string, unknown>) => boolean = () => false,
): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new IntegrityError(`${path}: not valid JSON (${(e as Error).message})`, path);
  }
  const problem = sealProblem(doc, unsealedOk);
  if (problem) throw new IntegrityError(`${path}: ${problem}`, path);
  const { [SEAL_FIELD]: _seal, ...rest } = doc as Record<string, unknown>;
  return rest;
}

/** For {@link readSealedJson}: documents whose `format` is below `sealedFrom` were written unsealed. */
export function formatBelow(sealedFrom: number): (doc: Record<string, unknown>) => boolean {
  return (doc) => typeof doc.format !== 'number' || doc.format < sealedFrom;
}
