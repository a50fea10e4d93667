/** Errors in run specs: one line per problem, each naming the spec file and the field. */
import { InputError } from '../util/errors.js';

/**
 * A run spec was rejected. `message` is one line per problem (`problems`), each prefixed with the
 * spec's source (usually its file name), e.g. `moons.json: optimizer.lr: must be > 0 (got -0.1)`.
 */
export class SpecError extends InputError {
  /** The problems, without the source prefix. */
  readonly problems: readonly string[];
  readonly source: string | undefined;

  constructor(problems: string | readonly string[], source?: string) {
    const list = typeof problems === 'string' ? [problems] : [...problems];
    super(list.map((p) => (source ? `${source}: ${p}` : p)).join('\n'));
    this.name = 'SpecError';
    this.problems = list;
    this.source = source;
  }

  /** The same problems attributed to `source`. */
  withSource(source: string | undefined): SpecError {
    return new SpecError(this.problems, source);
  }
}

/** A field path as written in a spec: `optimizer.lr`, `model.hidden[0]`. Empty for the top level. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** A short rendering of a JSON value for error messages. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) return String(value);
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return typeof value;
}
