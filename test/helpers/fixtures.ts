/**
 * Committed test data and golden values in the top-level `fixtures/` folder (see fixtures/README.md),
 * resolved from the repository root so a test finds them whatever the working directory.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root (this file is test/helpers/fixtures.ts). */
const REPO_ROOT = join(import.meta.dirname, '../..');

/** Absolute path of `fixtures/<parts…>`. */
export function fixturePath(...parts: string[]): string {
  return join(REPO_ROOT, 'fixtures', ...parts);
}

/** Parse `fixtures/<parts…>` as JSON. */
function readFixtureJson<T>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath(...parts), 'utf8')) as T;
}

/** One Random123 known-answer vector of Philox4x32-10, words as numbers. */
export interface PhiloxKat {
  /** Line of Random123's tests/kat_vectors it comes from. */
  readonly line: number;
  readonly counter: number[];
  readonly key: number[];
  readonly output: number[];
}

/** The vectors of fixtures/philox4x32-10-kat.json, hex words parsed. */
export function philoxKat(): PhiloxKat[] {
  const file = readFixtureJson<{
    vectors: { line: number; counter: string[]; key: string[]; output: string[] }[];
  }>('philox4x32-10-kat.json');
  const words = (hex: string[]) => hex.map((w) => Number.parseInt(w, 16));
  return file.vectors.map((v) => ({
    line: v.line,
    counter: words(v.counter),
    key: words(v.key),
    output: words(v.output),
  }));
}
