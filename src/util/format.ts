/** Number formatting shared by command output, reports and plot labels. */

/**
 * `v` (a fraction) as a percentage with `digits` decimals, e.g. `formatPercent(0.1234)` = `12.3%`;
 * `missing` for null, undefined or a non-finite value.
 */
export function formatPercent(v: number | null | undefined, digits = 1, missing = '—'): string {
  return v === null || v === undefined || !Number.isFinite(v) ? missing : `${(100 * v).toFixed(digits)}%`;
}
