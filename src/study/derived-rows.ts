/**
 * Rows a study derives from its pair measurements once they are all in: finite-time Lyapunov
 * exponents of every twin (from its L2 rows), and the σ = 0 control.
 */
import { fitLogSlope, lyapunovExponents } from '../measure/lyapunov.js';
import { METRICS, type TwinInfo } from '../results/metrics.js';
import type { ResultRow } from '../results/rows.js';

/** Lyapunov exponents of every twin from its L2 rows: per window, and one fit over all steps. */
export function lyapunovRows(
  study: string,
  twins: readonly TwinInfo[],
  rows: readonly ResultRow[],
  window: number,
) {
  const out: ResultRow[] = [];
  for (const twin of twins) {
    const l2 = rows
      .filter((r) => r.runB === twin.runB && r.metric === METRICS.l2 && r.layer === null)
      .sort((a, b) => a.step - b.step);
    const steps = l2.map((r) => r.step);
    const d = l2.map((r) => r.value);
    if (d.filter((v) => v > 0).length < 2) continue;
    const base = {
      study,
      runA: twin.runA,
      runB: twin.runB,
      metric: METRICS.lyapunov,
      layer: null,
      split: null,
    };
    const fits = [
      ...lyapunovExponents(steps, d, { window }).map((f) => ({ f, window: window as number | 'all' })),
      { f: fitLogSlope(steps, d), window: 'all' as const },
    ];
    for (const { f, window: w } of fits) {
      out.push({
        ...base,
        step: f.toStep,
        value: f.exponent,
        // JSON has no NaN: an undefined standard error (fewer than 3 points) is stored as null.
        options: {
          window: w,
          fromStep: f.fromStep,
          toStep: f.toStep,
          stderr: Number.isFinite(f.stderr) ? f.stderr : null,
          points: f.points,
        },
      });
    }
  }
  return out;
}

/** σ = 0 weight twins must have L2 exactly 0 at every measured step. */
export function controlFailures(twins: readonly TwinInfo[], rows: readonly ResultRow[]): string[] {
  const out: string[] = [];
  for (const twin of twins) {
    if (twin.sigma !== 0 || (twin.kind !== 'gaussian' && twin.kind !== 'batch')) continue;
    for (const r of rows) {
      if (r.runB === twin.runB && r.metric === METRICS.l2 && r.layer === null && r.value !== 0) {
        out.push(`${twin.runB}: L2 = ${r.value} at step ${r.step}`);
      }
    }
  }
  return out;
}
