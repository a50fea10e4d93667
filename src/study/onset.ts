/** The stability-onset search of a twin study (`onset` in the spec): a bisection over fork steps. */
import { METRICS } from '../results/metrics.js';
import type { ResultRow } from '../results/rows.js';
import { runNames, type StudyPlan } from './plan.js';
import type { ResolvedStudySpec } from './spec.js';

/**
 * Stability onset (per seed and σ): bisection over the parent's checkpoint steps before the last
 * for the earliest fork step t whose twins stay linearly connected — mean error barrier (linear
 * convention, at the last step, test split or train when there is none) below the threshold.
 * Assumes stability is monotone in t; the evaluated (t, barrier) pairs are stored in the options.
 * A fork step whose twins have no such barrier row (their measurement failed, or a run diverged, so
 * the pair has no end) has no value: it counts as unstable, so the search stays conservative (it
 * can only move the onset later), keeps NaN as its barrier in `evaluated` (null in the results
 * file), and is listed in the options' `missing`.
 */
export async function searchOnset(
  study: ResolvedStudySpec,
  grid: StudyPlan,
  ensure: (extraForkSteps: number[]) => Promise<StudyPlan>,
  rowsOf: ReadonlyMap<string, ResultRow[]>,
): Promise<ResultRow[]> {
  const onset = study.onset as NonNullable<ResolvedStudySpec['onset']>;
  const candidates = grid.checkpoints.filter((c) => c < grid.totalSteps);
  const extra = new Set<number>();
  const out: ResultRow[] = [];
  const sigmas = onset.kind === 'seed' ? [0] : onset.sigmas;
  for (const seed of study.seeds) {
    for (const sigma of sigmas) {
      const evaluated = new Map<number, number>();
      const missing: number[] = [];
      const barrierAt = async (t: number): Promise<number> => {
        const known = evaluated.get(t);
        if (known !== undefined) return known;
        extra.add(t);
        const plan = await ensure([...extra].sort((a, b) => a - b));
        const twins = plan.twins.filter(
          (w) =>
            w.seed === seed &&
            w.forkStep === t &&
            w.kind === onset.kind &&
            w.sigma === sigma &&
            w.repeat < onset.repeats,
        );
        const values = twins.flatMap((w) =>
          (rowsOf.get(w.runB) ?? []).filter(
            (r) =>
              r.metric === METRICS.errorBarrier &&
              r.options.convention === 'linear' &&
              r.step === plan.totalSteps,
          ),
        );
        const test = values.filter((r) => r.split === 'test');
        const use = test.length > 0 ? test : values;
        if (use.length === 0) missing.push(t);
        const mean = use.length === 0 ? Number.NaN : use.reduce((s, r) => s + r.value, 0) / use.length;
        evaluated.set(t, mean);
        return mean;
      };
      // NaN (no barrier) is not below the threshold: unstable.
      const stable = async (i: number) => (await barrierAt(candidates[i] as number)) < onset.threshold;
      let onsetStep = Number.NaN;
      let lo = 0;
      let hi = candidates.length - 1;
      if (await stable(0)) onsetStep = candidates[0] as number;
      else if (await stable(hi)) {
        // invariant: candidates[lo] unstable, candidates[hi] stable
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if (await stable(mid)) hi = mid;
          else lo = mid;
        }
        onsetStep = candidates[hi] as number;
      }
      out.push({
        study: study.name,
        runA: runNames.parent(seed),
        runB: null,
        step: Number.isNaN(onsetStep) ? grid.totalSteps : onsetStep,
        metric: METRICS.stabilityOnset,
        layer: null,
        split: null,
        value: onsetStep,
        options: {
          kind: onset.kind,
          sigma,
          threshold: onset.threshold,
          repeats: onset.repeats,
          found: !Number.isNaN(onsetStep),
          evaluated: [...evaluated].sort(([a], [b]) => a - b),
          missing: missing.sort((a, b) => a - b),
        },
      });
    }
  }
  return out;
}
