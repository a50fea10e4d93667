/**
 * Spearman's rank correlation (docs/methods.md §12.6): the Pearson correlation of the ranks of two
 * samples, ties given their average rank, with the two-sided p-value of the t-test SciPy's
 * `scipy.stats.spearmanr` reports (t = ρ √((n − 2) / (1 − ρ²)) on n − 2 degrees of freedom).
 * Used across the runs of a sweep: does sharpness predict sensitivity?
 */

/** Ranks 1…n of `values` (ties: the mean of the ranks they share), in the input order. */
export function averageRanks(values: readonly number[]): Float64Array {
  const order = values.map((_, i) => i).sort((a, b) => (values[a] as number) - (values[b] as number));
  const out = new Float64Array(values.length);
  let i = 0;
  while (i < order.length) {
    let j = i;
    while (j + 1 < order.length && values[order[j + 1] as number] === values[order[i] as number]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) out[order[k] as number] = rank;
    i = j + 1;
  }
  return out;
}

/** A rank correlation and the sample it was computed on. */
export interface RankCorrelation {
  /** Spearman's ρ in [−1, 1]; NaN with fewer than 2 pairs or when a sample is constant. */
  readonly rho: number;
  /** Pairs used (those where both values are finite). */
  readonly n: number;
  /** Two-sided p-value of the t-test (as SciPy); NaN when ρ is NaN or n < 3. */
  readonly pValue: number;
}

/**
 * Spearman's rank correlation of the pairs (x[i], y[i]) whose two values are finite (the others are
 * left out; `n` says how many were used).
 * @throws when x and y have different lengths.
 */
export function spearman(x: readonly number[], y: readonly number[]): RankCorrelation {
  if (x.length !== y.length) throw new Error(`spearman: x has ${x.length} values, y has ${y.length}`);
  const keep = x.map((_, i) => i).filter((i) => Number.isFinite(x[i]) && Number.isFinite(y[i]));
  const n = keep.length;
  if (n < 2) return { rho: Number.NaN, n, pValue: Number.NaN };
  const rx = averageRanks(keep.map((i) => x[i] as number));
  const ry = averageRanks(keep.map((i) => y[i] as number));
  const mean = (n + 1) / 2;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = (rx[i] as number) - mean;
    const dy = (ry[i] as number) - mean;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return { rho: Number.NaN, n, pValue: Number.NaN };
  const rho = Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
  return { rho, n, pValue: tTestPValue(rho, n) };
}

/** Two-sided p-value of ρ under H₀: ρ = 0 by the t-distribution with n − 2 degrees of freedom. */
function tTestPValue(rho: number, n: number): number {
  if (n < 3) return Number.NaN;
  const df = n - 2;
  if (Math.abs(rho) >= 1) return 0;
  const t2 = (rho * rho * df) / (1 - rho * rho);
  // P(|T| > t) = I_{df/(df+t²)}(df/2, 1/2).
  return regularizedBeta(df / (df + t2), df / 2, 0.5);
}

/** ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ~1e-15). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  const z = x - 1;
  let a = c[0] as number;
  const t = z + 7.5;
  for (let i = 1; i < 9; i++) a += (c[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

/** The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz's method). */
function regularizedBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  // The continued fraction converges fast for x < (a + 1) / (a + b + 2); use the symmetry otherwise.
  if (x > (a + 1) / (a + b + 2)) return 1 - regularizedBeta(1 - x, b, a);
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let f = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let num = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    f *= d * c;
    num = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + num * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + num / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = d * c;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-15) break;
  }
  return (front * f) / a;
}
