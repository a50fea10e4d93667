/**
 * Spec files (run, study or sweep): reading the JSON, with line and column for bad JSON, and
 * validating a top-level object against a strict zod schema. Every error names the file.
 */
import { readFileSync } from 'node:fs';
import type { z } from 'zod';
import { formatValue, SpecError } from './errors.js';
import { formatIssue } from './issues.js';

/** Read a JSON spec file (run, study or sweep), naming the file in errors (with line and column for bad JSON). */
export function readSpecJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : `cannot read file (${(err as Error).message})`;
    throw new SpecError(why, path);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SpecError(`invalid JSON: ${jsonErrorMessage(err as Error, text)}`, path);
  }
}

/**
 * Check that `json` is an object and validate it with a strict zod `schema`; throws a
 * {@link SpecError} with every problem, one line each, naming the field.
 */
export function parseSpecObject<T>(schema: z.ZodType<T>, json: unknown, source?: string): T {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SpecError(`expected a JSON object at top level (got ${formatValue(json)})`, source);
  }
  const result = schema.safeParse(json, { reportInput: true });
  if (!result.success) throw new SpecError([...new Set(result.error.issues.flatMap(formatIssue))], source);
  return result.data;
}

/** A `JSON.parse` error message with the line and column of its position in `text`. */
function jsonErrorMessage(err: Error, text: string): string {
  const match = /position (\d+)/.exec(err.message);
  if (!match) return err.message;
  const pos = Number(match[1]);
  const before = text.slice(0, pos).split('\n');
  const line = before.length;
  const column = (before[before.length - 1]?.length ?? 0) + 1;
  return `${err.message.replace(/\s*\(line \d+ column \d+\)/, '')} (line ${line}, column ${column})`;
}
