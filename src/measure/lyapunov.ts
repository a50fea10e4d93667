/**
 * Finite-time Lyapunov exponents of a twin pair: the slope of log ‖θ_A(t) − θ_B(t)‖ against the step t,
 * fitted by least squares over windows of consecutive measurements, with the slope's standard error.
 *
 * For d(t) = d₀ e^{λt} the fit returns λ exactly. Points with d = 0 (identical twins, e.g. before the
 * fork or the σ = 0 control) have no logarithm and are left out of the fit.
 */

/** One least-squares fit of log d against step. */
export interface LyapunovFit {
  readonly fromStep: number;
  readonly toStep: number;
  /** Slope of log d per step (natural log). */
  readonly exponent: number;
  /** Standard error of the slope: sqrt(RSS / (m − 2) / Σ(t − t̄)²); NaN with fewer than 3 points. */
  readonly stderr: number;
  /** Number of points used (d > 0). */
  readonly points: number;
}

/** Fit log d = a + λ t over all points with d > 0. Needs at least 2 such points at distinct steps. */
export function fitLogSlope(steps: readonly number[], distances: readonly number[]): LyapunovFit {
  if (steps.length !== distances.length) {
    throw new Error(`fitLogSlope: ${steps.length} steps but ${distances.length} distances`);
  }
  const t: number[] = [];
  const y: number[] = [];
  steps.forEach((s, i) => {
    const d = distances[i] as number;
    if (d > 0 && Number.isFinite(d)) {
      t.push(s);
      y.push(Math.log(d));
    }
  });
  const m = t.length;
  const tMean = t.reduce((a, b) => a + b, 0) / m;
  const yMean = y.reduce((a, b) => a + b, 0) / m;
  let sxx = 0;
  let sxy = 0;
  for (let i = 0; i < m; i++) {
    sxx += ((t[i] as number) - tMean) ** 2;
    sxy += ((t[i] as number) - tMean) * ((y[i] as number) - yMean);
  }
  if (m < 2 || sxx === 0) {
    throw new Error(`fitLogSlope: needs at least 2 positive distances at distinct steps, got ${m}`);
  }
  const slope = sxy / sxx;
  let rss = 0;
  for (let i = 0; i < m; i++) rss += ((y[i] as number) - yMean - slope * ((t[i] as number) - tMean)) ** 2;
  return {
    fromStep: Math.min(...t),
    toStep: Math.max(...t),
    exponent: slope,
    stderr: m > 2 ? Math.sqrt(rss / (m - 2) / sxx) : Number.NaN,
    points: m,
  };
}

/**
 * Exponents over windows of `window` consecutive measurements, advancing by `stride` (default:
 * non-overlapping windows). Windows with fewer than 2 positive distances are skipped.
 */
export function lyapunovExponents(
  steps: readonly number[],
  distances: readonly number[],
  options: { window?: number; stride?: number } = {},
): LyapunovFit[] {
  const window = options.window ?? 5;
  const stride = options.stride ?? window;
  if (!Number.isInteger(window) || window < 2)
    throw new Error(`lyapunov window must be an integer ≥ 2, got ${window}`);
  if (!Number.isInteger(stride) || stride < 1)
    throw new Error(`lyapunov stride must be a positive integer, got ${stride}`);
  const fits: LyapunovFit[] = [];
  for (let start = 0; start + window <= steps.length; start += stride) {
    const s = steps.slice(start, start + window);
    const d = distances.slice(start, start + window);
    const usable = new Set(s.filter((_, k) => (d[k] as number) > 0 && Number.isFinite(d[k] as number)));
    if (usable.size < 2) continue;
    fits.push(fitLogSlope(s, d));
  }
  return fits;
}
