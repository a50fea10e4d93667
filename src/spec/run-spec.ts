/**
 * Run specs: the JSON file that says what one twinscope run trains — data, model, loss, optimizer,
 * batch size, length, checkpoint schedule — validated with zod and resolved with every default filled.
 *
 * ```json
 * { "name": "moons-gd", "seed": 0,
 *   "data": { "name": "moons", "n": 2000, "noise": 0.2, "testFraction": 0.3, "standardize": true },
 *   "model": { "kind": "mlp", "hidden": [64, 64], "activation": "relu", "init": { "kind": "normal", "std": 0.1 } },
 *   "loss": "cross-entropy",
 *   "optimizer": { "kind": "adam", "lr": 0.001 },
 *   "batchSize": 32, "epochs": 200,
 *   "checkpoints": { "every": 100 },
 *   "threads": 2 }
 * ```
 *
 * Every object is strict: an unknown field is an error. Problems are reported all at once, one line
 * each, naming the field path (`optimizer.lr`, `model.hidden[0]`) and what was expected.
 *
 * This file parses and loads run specs; the parts live beside it: `schemas.ts` (the zod schemas),
 * `cross-checks.ts` (checks across fields), `issues.ts` (problem messages), `resolve.ts` (defaults and
 * the resolved types), `spec-file.ts` (reading spec files) and `run-plan.ts` (the step plan).
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { crossCheck } from './cross-checks.js';
import { formatValue, SpecError } from './errors.js';
import { formatIssue } from './issues.js';
import { type ResolvedRunSpec, resolveRunSpec } from './resolve.js';
import { RunSpecSchema } from './schemas.js';
import { readSpecJson } from './spec-file.js';

/**
 * Validate a parsed JSON run spec and fill every default. Throws a {@link SpecError} listing every
 * problem, one line each, prefixed with `source` (e.g. the file name) when given:
 * `moons.json: optimizer.lr: must be > 0 (got -0.1)`.
 */
export function parseRunSpec(json: unknown, source?: string): ResolvedRunSpec {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SpecError(`expected a JSON object at top level (got ${formatValue(json)})`, source);
  }
  const result = RunSpecSchema.safeParse(json, { reportInput: true });
  const problems = result.success ? [] : result.error.issues.flatMap(formatIssue);
  problems.push(...crossCheck(json as Record<string, unknown>));
  if (!result.success || problems.length > 0) throw new SpecError([...new Set(problems)], source);
  return resolveRunSpec(result.data);
}

/**
 * Read, parse and validate a run spec file. Errors name the file: a missing or unreadable file,
 * invalid JSON (with line and column), every spec problem, and for arrow data a `data.path` /
 * `data.testPath` that does not exist. Those paths are resolved relative to the spec file's folder
 * and returned absolute.
 */
export function loadRunSpec(path: string): ResolvedRunSpec {
  const spec = parseRunSpec(readSpecJson(path), path);
  if (spec.data.name === 'arrow') {
    const base = dirname(resolve(path));
    const data = { ...spec.data, path: resolve(base, spec.data.path) };
    if (spec.data.testPath !== undefined) data.testPath = resolve(base, spec.data.testPath);
    const problems: string[] = [];
    for (const field of ['path', 'testPath'] as const) {
      const written = spec.data[field];
      const file = data[field];
      if (written === undefined || file === undefined) continue;
      if (!existsSync(file)) {
        const shown = isAbsolute(written) ? written : `${written} (resolved to ${file})`;
        problems.push(`data.${field}: file not found: ${shown}`);
      }
    }
    if (problems.length > 0) throw new SpecError(problems, path);
    spec.data = data;
  }
  return spec;
}
