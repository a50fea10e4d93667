/** Whether a run directory already holds a planned run, so that a re-run skips it. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readRunJson } from '../train/run.js';
import { canonical } from '../util/json.js';
import type { PlannedRun } from './plan.js';

/**
 * Whether `dir` holds the complete run `planned` (same spec, same perturbation, same training mode).
 * The perturbation's norm is left out: it is only known once the perturbation is drawn.
 */
export function runComplete(
  dir: string,
  planned: Pick<PlannedRun, 'spec' | 'fork'>,
  lockstep = false,
): boolean {
  if (!existsSync(join(dir, 'run.json'))) return false;
  const run = readRunJson(dir);
  if (run.status !== 'complete' || canonical(run.spec) !== canonical(planned.spec)) return false;
  const { norm: _norm, ...perturbation } = (run.lineage.perturbation ?? {}) as Record<string, unknown>;
  const expected = planned.fork?.perturbation ?? {};
  return (
    canonical(perturbation) === canonical(expected) &&
    Boolean((run.lineage as { lockstep?: boolean }).lockstep) === (lockstep && planned.fork !== undefined)
  );
}
