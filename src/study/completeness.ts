/**
 * Whether a run directory already holds a planned run that has ended, so that a re-run skips it.
 * A diverged run has ended too: its divergence is deterministic, so it is not retrained.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DivergedRun } from '../results/study-files.js';
import { readRunJson } from '../train/run.js';
import { canonical } from '../util/json.js';
import type { PlannedRun } from './plan.js';

/**
 * Whether `dir` holds the run `planned` (same spec, same perturbation, same training mode), complete
 * or diverged. The perturbation's norm is left out: it is only known once the perturbation is drawn
 * (and a twin whose parent diverged before its fork step has none).
 */
export function runComplete(
  dir: string,
  planned: Pick<PlannedRun, 'spec' | 'fork'>,
  lockstep = false,
): boolean {
  if (!existsSync(join(dir, 'run.json'))) return false;
  const run = readRunJson(dir);
  const ended = run.status === 'complete' || run.status === 'diverged';
  if (!ended || canonical(run.spec) !== canonical(planned.spec)) return false;
  const { norm: _norm, ...perturbation } = (run.lineage.perturbation ?? {}) as Record<string, unknown>;
  const expected = planned.fork?.perturbation ?? {};
  return (
    canonical(perturbation) === canonical(expected) &&
    Boolean((run.lineage as { lockstep?: boolean }).lockstep) === (lockstep && planned.fork !== undefined)
  );
}

/** The runs among `names` (directories under `runsDir`) whose run.json says they diverged. */
export function divergedRuns(runsDir: string, names: readonly string[]): DivergedRun[] {
  const out: DivergedRun[] = [];
  for (const run of names) {
    if (!existsSync(join(runsDir, run, 'run.json'))) continue;
    const d = readRunJson(join(runsDir, run)).diverged;
    if (d) out.push({ run, step: d.step, reason: d.reason });
  }
  return out;
}
