/**
 * Zod issues as spec problems: one line each, naming the field path (`optimizer.lr`,
 * `model.hidden[0]`), what was expected and what was given, e.g. `optimizer.lr: must be > 0 (got -0.1)`.
 */
import type { z } from 'zod';
import { formatPath, formatValue } from './errors.js';

export type Issue = z.core.$ZodIssue;

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
};

function quote(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

function got(issue: Issue): string {
  return 'input' in issue ? ` (got ${formatValue(issue.input)})` : '';
}

/** One line per problem in a zod issue. */
export function formatIssue(issue: Issue): string[] {
  const path = formatPath(issue.path);
  const at = (msg: string) => (path ? `${path}: ${msg}` : msg);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) =>
        path ? `${path}: unknown field '${k}'` : `unknown field '${k}' at top level`,
      );
    case 'invalid_type': {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      if (!('input' in issue) || issue.input === undefined) return [at(`missing (expected ${expected})`)];
      return [at(`expected ${expected}${got(issue)}`)];
    }
    case 'too_small': {
      if (issue.origin === 'array') return [at(`must have at least ${issue.minimum} entries${got(issue)}`)];
      if (issue.origin === 'string') {
        return [
          at(
            Number(issue.minimum) === 1
              ? 'must not be empty'
              : `must have at least ${issue.minimum} characters`,
          ),
        ];
      }
      return [at(`must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}${got(issue)}`)];
    }
    case 'too_big': {
      if (issue.origin === 'array') return [at(`must have at most ${issue.maximum} entries`)];
      if (issue.origin === 'string') return [at(`must have at most ${issue.maximum} characters`)];
      return [at(`must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}${got(issue)}`)];
    }
    case 'invalid_value': {
      const values = issue.values.map(quote);
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`;
      return [at(`expected ${expected}${got(issue)}`)];
    }
    case 'invalid_union': {
      const disc = (issue as { discriminator?: string }).discriminator;
      const options = (issue as { options?: unknown[] }).options;
      if (disc !== undefined) {
        const expected = `one of ${(options ?? []).map(quote).join(', ')}`;
        const parent = 'input' in issue ? issue.input : undefined;
        const value = isRecord(parent) ? parent[disc] : undefined;
        // zod reports the discriminator's path; a non-object parent is reported at the parent.
        if (!isRecord(parent)) {
          return [`${formatPath(issue.path.slice(0, -1))}: expected an object${got(issue)}`];
        }
        if (value === undefined) return [at(`missing (expected ${expected})`)];
        return [at(`expected ${expected} (got ${formatValue(value)})`)];
      }
      return [at(`${issue.message}${got(issue)}`)];
    }
    case 'invalid_format':
      return [at(`${issue.message}${got(issue)}`)];
    default:
      return [at(issue.message)];
  }
}

/** A JSON object: not null, not an array. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
