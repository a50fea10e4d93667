/**
 * Sharpness measurements of one network (the shared METHODS.md §6, "Sharpness" and "Preconditioned
 * sharpness"; docs/methods.md has no section for them yet): the top Hessian eigenvalue by power
 * iteration or by Lanczos with full reorthogonalization, the Hessian trace by Hutchinson's estimator,
 * Adam's preconditioned sharpness λ_max(P⁻¹H) (Cohen et al. 2022), and the stability thresholds they
 * are compared with (2/η for gradient descent, Cohen et al. 2021).
 *
 * Every algorithm sees the Hessian only through an {@link HvpFn}, a symmetric operator v ↦ H v on
 * float64 vectors: {@link engineHvp} builds one from an engine's exact Hessian-vector products on fixed
 * batches (float32 inside the engine), tests build them from explicit matrices. The Krylov vectors,
 * dot products and the small eigenproblems are float64. Random start vectors and probes come from the
 * project's Philox streams (`Rng.fromSeed(seed).stream('power' | 'lanczos' | 'hutchinson', …)`), so
 * a seed gives the same numbers on every machine.
 */
import type { Batch } from '../data/types.js';
import { type Engine, type OptimizerSpec, type OptimizerState, resolveOptimizer } from '../engine/types.js';
import { Rng } from '../rng/rng.js';
import { symmetricEigen } from './eigen.js';

/**
 * A symmetric linear operator v ↦ H v on R^dim (a Hessian), in float64: it must return a new array
 * of length dim and must not modify `v`. See {@link engineHvp} for the operator of a network's loss.
 */
export type HvpFn = (v: Float64Array) => Promise<Float64Array>;

/**
 * The Hessian of the mean loss over the examples of `batches` at `params`, as an {@link HvpFn}
 * (shared METHODS.md §6, "Sharpness"). One batch: `engine.hvp` on it. Several batches (a subset
 * larger than one batch): the loss is the mean over all examples, so the products are averaged with
 * weights size_b / Σ size, in float64. Each call rounds v to float32 for the engine, whose float32
 * products are exact up to rounding (~1e-7 of ‖H v‖; symmetric to that level). The Hessian is the
 * data loss's only: L2 weight decay λ would add λI. Batches are run one after another.
 */
export function engineHvp(
  engine: Pick<Engine, 'hvp'>,
  params: Float32Array,
  batches: Batch | readonly Batch[],
): HvpFn {
  const list: readonly Batch[] = Array.isArray(batches) ? batches : [batches as Batch];
  if (list.length === 0) throw new Error('engineHvp: no batches');
  const total = list.reduce((s, b) => s + b.size, 0);
  if (!(total > 0)) throw new Error('engineHvp: the batches hold no examples');
  return async (v) => {
    if (v.length !== params.length) {
      throw new Error(`engineHvp: v has ${v.length} values, expected ${params.length}`);
    }
    const v32 = Float32Array.from(v);
    const out = new Float64Array(params.length);
    for (const b of list) {
      const hv = await engine.hvp(params, b, v32);
      const w = b.size / total;
      for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + w * (hv[i] as number);
    }
    return out;
  };
}

/** Options of {@link powerIteration}. */
export interface PowerIterationOptions {
  /** Most Hessian-vector products (iterations). Default 100 (METHODS.md §6). */
  readonly iterations?: number;
  /** Stop when the Rayleigh quotient changes by less than tol · |λ| between iterations. Default 1e-3
   * (METHODS.md §6). */
  readonly tol?: number;
  /** Seed of the start vector: N(0, I) from `Rng.fromSeed(seed).stream('power')`, normalized. Default 0. */
  readonly seed?: number;
}

/** Result of {@link powerIteration}. */
export interface PowerIterationResult {
  /** The Rayleigh quotient vᵀHv of the last unit vector v: the eigenvalue of largest magnitude, with its sign. */
  readonly eigenvalue: number;
  /** The last unit vector v (the eigenvector estimate). */
  readonly vector: Float64Array;
  /** ‖Hv − λv‖ for that v (an eigenvalue of H lies within it of λ). */
  readonly residual: number;
  /** Iterations done (= Hessian-vector products). */
  readonly iterations: number;
  /** Whether the relative change fell below `tol` within `iterations`. */
  readonly converged: boolean;
}

/**
 * Power iteration (shared METHODS.md §6, "Sharpness"): v ← Hv/‖Hv‖ from a seeded random unit vector,
 * λ = vᵀHv, stopping when λ changes by less than tol · |λ| (default 1e-3) or after `iterations`
 * (default 100) products.
 *
 * It converges to the eigenvalue of largest **magnitude**, with its sign, at the rate
 * (|λ₂|/|λ₁|)² per iteration for λ: the sharpness λ_max when no negative eigenvalue is larger in
 * magnitude. If ±λ both occur at the top, the Rayleigh quotient stalls at a mixture and `residual`
 * stays large; use {@link lanczos} when the spectrum may be like that or the gap is small. The stopping
 * rule bounds the error only through the rate: with ratio r = |λ₂/λ₁| the remaining error is about
 * tol · |λ| / (1 − r²).
 */
export async function powerIteration(
  hvp: HvpFn,
  dim: number,
  options: PowerIterationOptions = {},
): Promise<PowerIterationResult> {
  const iterations = options.iterations ?? 100;
  const tol = options.tol ?? 1e-3;
  checkDim('powerIteration', dim);
  if (!Number.isInteger(iterations) || iterations < 1) {
    throw new Error(`powerIteration: iterations must be a positive integer, got ${iterations}`);
  }
  let v = randomUnit(Rng.fromSeed(options.seed ?? 0).stream('power'), dim);
  let lambda = Number.NaN;
  let residual = Number.NaN;
  for (let it = 1; it <= iterations; it++) {
    const w = await apply(hvp, v, dim, 'powerIteration');
    const next = dot(v, w);
    residual = residualNorm(w, next, v);
    const nw = norm(w);
    const done = it > 1 && Math.abs(next - lambda) <= tol * Math.abs(next);
    lambda = next;
    // Hv = 0 for a random v means H = 0 (almost surely): λ = 0 exactly.
    if (done || nw === 0) return { eigenvalue: lambda, vector: v, residual, iterations: it, converged: true };
    if (it === iterations) break;
    v = scaled(w, 1 / nw);
  }
  return { eigenvalue: lambda, vector: v, residual, iterations, converged: false };
}

/** Options of {@link lanczos}. */
export interface LanczosOptions {
  /** Number of top eigenvalues wanted. Default 1. */
  readonly k?: number;
  /** Most Lanczos steps (= Hessian-vector products, = stored basis vectors); capped at dim. Default 50. */
  readonly steps?: number;
  /**
   * Stop early once each of the top k Ritz pairs (θ, y) has residual ‖Hy − θy‖ ≤ tol · |θ| (0: only
   * at an exact invariant subspace). Default 1e-4. The eigenvalue error is at most the residual, and about residual² / gap when
   * θ is separated from the rest of the spectrum by gap.
   */
  readonly tol?: number;
  /** Seed of the start (and restart) vectors: N(0, I) from `Rng.fromSeed(seed).stream('lanczos', r)`
   * for the r-th start. Default 0. */
  readonly seed?: number;
  /** Also return the top Ritz vectors (unit, length dim). Default false. */
  readonly vectors?: boolean;
}

/** Result of {@link lanczos}. */
export interface LanczosResult {
  /** The top min(k, steps done) Ritz values, largest (algebraic) first. */
  readonly values: Float64Array;
  /** For each value, the residual ‖Hy − θy‖ of its Ritz vector (= |β_m s_m|). */
  readonly residuals: Float64Array;
  /** Ritz vectors of `values` (unit, in the same order) when `vectors` was set; otherwise empty. */
  readonly vectors: Float64Array[];
  /** Lanczos steps done (= Hessian-vector products). */
  readonly steps: number;
  /** Restarts after a breakdown (an invariant Krylov subspace: rank deficiency or repeated eigenvalues). */
  readonly restarts: number;
  /** Whether every returned pair met the residual test (always true when the basis spans R^dim). */
  readonly converged: boolean;
}

/** β below this fraction of the running ‖T‖ estimate is a breakdown (an invariant subspace). Float64
 * operators leave ~1e-15 ‖H‖ after full reorthogonalization; float32 engine products never get there. */
const BREAKDOWN = 1e-10;

/**
 * Top-k eigenvalues (largest algebraic first) by the Lanczos method with full reorthogonalization
 * (shared METHODS.md §6, "Sharpness"): q₁ a seeded random unit vector; each step w = Hq_j,
 * α_j = q_jᵀw, w −= α_j q_j + β_{j−1} q_{j−1}, then w is orthogonalized against every stored q twice
 * (classical Gram–Schmidt, "twice is enough"), β_j = ‖w‖, q_{j+1} = w/β_j. The values are the Ritz
 * values of the tridiagonal T (eigenvalues by {@link symmetricEigen}, this folder's float64 solver,
 * tested against NumPy; mathjs would box every entry), with residuals |β_m · s_m| from the last
 * components of T's eigenvectors.
 *
 * Breakdown (β_j ≤ 1e-10 ‖T‖: the Krylov space is invariant, as for a rank-deficient H, or one whose
 * top eigenvalue is repeated) restarts from a fresh random vector orthogonal to the basis, with β = 0
 * in T. A Krylov space holds one vector per distinct eigenvalue, and residuals cannot tell how often
 * an eigenvalue repeats, so after a breakdown the iteration runs all min(steps, dim) steps; with
 * steps ≥ dim the basis spans R^dim and T has exactly H's eigenvalues, multiplicities included.
 * Without breakdown a tight cluster can still show fewer copies than it has (a Krylov method's limit).
 *
 * Memory: min(steps, dim) vectors of dim float64. Cost per step: one product plus O(j · dim) for the
 * reorthogonalization and O(j³) for the convergence test (every step up to 64, then every 8th).
 */
export async function lanczos(hvp: HvpFn, dim: number, options: LanczosOptions = {}): Promise<LanczosResult> {
  const k = options.k ?? 1;
  const steps = options.steps ?? 50;
  const tol = options.tol ?? 1e-4;
  checkDim('lanczos', dim);
  if (!Number.isInteger(k) || k < 1) throw new Error(`lanczos: k must be a positive integer, got ${k}`);
  if (!Number.isInteger(steps) || steps < k) {
    throw new Error(`lanczos: steps must be an integer ≥ k = ${k}, got ${steps}`);
  }
  if (!(tol >= 0)) throw new Error(`lanczos: tol must be ≥ 0, got ${tol}`);
  const m = Math.min(steps, dim);
  const rng = Rng.fromSeed(options.seed ?? 0).stream('lanczos');
  const basis: Float64Array[] = [];
  const alpha: number[] = [];
  const beta: number[] = [];
  let restarts = 0;
  let normT = 0;
  let q = randomUnit(rng.stream('start', 0), dim);
  let ritz: Ritz | undefined;
  for (let j = 0; j < m; j++) {
    basis.push(q);
    const w = await apply(hvp, q, dim, 'lanczos');
    const a = dot(q, w);
    alpha.push(a);
    axpy(w, -a, q);
    const prev = j > 0 ? (beta[j - 1] as number) : 0;
    if (j > 0) axpy(w, -prev, basis[j - 1] as Float64Array);
    orthogonalize(w, basis);
    orthogonalize(w, basis);
    const b = norm(w);
    normT = Math.max(normT, Math.abs(a) + b + prev);
    const last = j + 1 === m;
    const broke = b <= BREAKDOWN * normT;
    const test = restarts === 0 && !broke && j + 1 >= k && (j < 64 || (j + 1) % 8 === 0);
    if (last || test) {
      ritz = ritzPairs(alpha, beta, b, k);
      if (last || allConverged(ritz, tol)) break;
    }
    if (broke) {
      restarts++;
      beta.push(0);
      q = restartVector(rng.stream('start', restarts), dim, basis);
    } else {
      beta.push(b);
      q = scaled(w, 1 / b);
    }
  }
  const r = ritz as Ritz;
  const n = alpha.length;
  const converged = n === dim || allConverged(r, tol);
  const vectors = options.vectors
    ? r.coefficients.map((s) => {
        const y = new Float64Array(dim);
        s.forEach((c, i) => axpy(y, c, basis[i] as Float64Array));
        return scaled(y, 1 / norm(y));
      })
    : [];
  return { values: r.values, residuals: r.residuals, vectors, steps: n, restarts, converged };
}

/** Options of {@link hutchinsonTrace}. */
export interface HutchinsonOptions {
  /** Number of Rademacher probes (= Hessian-vector products). Default 100. */
  readonly probes?: number;
  /** Seed of the probes: probe p's signs are the bits of `Rng.fromSeed(seed).stream('hutchinson', p)`. Default 0. */
  readonly seed?: number;
}

/** Result of {@link hutchinsonTrace}. */
export interface HutchinsonResult {
  /** Mean of zᵀHz over the probes: an unbiased estimate of tr(H). */
  readonly mean: number;
  /** Standard error of the mean: sample standard deviation (n − 1) / √n; NaN with one probe. */
  readonly stderr: number;
  readonly probes: number;
  /** zᵀHz of each probe, in order. */
  readonly samples: Float64Array;
}

/**
 * Hutchinson's trace estimator (shared METHODS.md §6, "Sharpness"): tr(H) ≈ mean of zᵀHz over
 * Rademacher probes z (entries ±1 with probability ½). Entry i of probe p is +1 when bit (i mod 32)
 * of the ⌊i/32⌋-th uint32 of `Rng.fromSeed(seed).stream('hutchinson', p)` is set, −1 otherwise.
 * Var(zᵀHz) = 2 Σ_{i≠j} H_ij², so a diagonal H gives the trace exactly with stderr 0.
 */
export async function hutchinsonTrace(
  hvp: HvpFn,
  dim: number,
  options: HutchinsonOptions = {},
): Promise<HutchinsonResult> {
  const probes = options.probes ?? 100;
  checkDim('hutchinsonTrace', dim);
  if (!Number.isInteger(probes) || probes < 1) {
    throw new Error(`hutchinsonTrace: probes must be a positive integer, got ${probes}`);
  }
  const root = Rng.fromSeed(options.seed ?? 0);
  const samples = new Float64Array(probes);
  for (let p = 0; p < probes; p++) {
    const rng = root.stream('hutchinson', p);
    const z = new Float64Array(dim);
    let word = 0;
    for (let i = 0; i < dim; i++) {
      if (i % 32 === 0) word = rng.uint32();
      z[i] = (word >>> (i % 32)) & 1 ? 1 : -1;
    }
    samples[p] = dot(z, await apply(hvp, z, dim, 'hutchinsonTrace'));
  }
  let mean = 0;
  for (const s of samples) mean += s;
  mean /= probes;
  let ss = 0;
  for (const s of samples) ss += (s - mean) ** 2;
  const stderr = probes > 1 ? Math.sqrt(ss / (probes - 1) / probes) : Number.NaN;
  return { mean, stderr, probes, samples };
}

/**
 * Adam's preconditioner P = diag(√v̂ + ε) at an optimizer state (shared METHODS.md §6, "Preconditioned
 * sharpness"; Cohen et al. 2022): v̂ = v / (1 − β₂ᵗ) is the bias-corrected second moment `exp_avg_sq`
 * (slot 1) after t = `state.step` updates, so P is the preconditioner the last update used, exactly as
 * PyTorch's denominator √v / √(1 − β₂ᵗ) + ε (here in float64). Returns P's diagonal.
 * @throws for an SGD optimizer, or a state before the first update (v̂ undefined at t = 0).
 */
export function adamPreconditioner(state: OptimizerState, optimizer: OptimizerSpec): Float64Array {
  const opt = resolveOptimizer(optimizer);
  if (opt.kind === 'sgd') throw new Error('adamPreconditioner: needs an adam or adamw optimizer, got sgd');
  if (!(state.step >= 1)) {
    throw new Error(`adamPreconditioner: the state has made no update (step ${state.step})`);
  }
  const v = state.slots[1];
  if (v === undefined) throw new Error('adamPreconditioner: the state has no exp_avg_sq slot');
  const c = Math.sqrt(1 - opt.beta2 ** state.step);
  return Float64Array.from(v, (x) => Math.sqrt(x) / c + opt.eps);
}

/**
 * The symmetric operator P^{-1/2} H P^{-1/2} for a positive diagonal preconditioner P (its diagonal
 * `pDiag`). It is similar to P⁻¹H (P^{-1/2} (P^{-1/2} H P^{-1/2}) P^{1/2} = P⁻¹H), so both have the
 * same real eigenvalues, and an eigenvector u of this operator gives the eigenvector P^{-1/2} u of P⁻¹H.
 * Shared METHODS.md §6, "Preconditioned sharpness".
 */
export function preconditionedHvp(hvp: HvpFn, pDiag: ArrayLike<number>): HvpFn {
  const d = Float64Array.from(pDiag, (p) => {
    if (!(p > 0) || !Number.isFinite(p)) throw new Error(`preconditionedHvp: P must be positive, got ${p}`);
    return 1 / Math.sqrt(p);
  });
  return async (v) => {
    if (v.length !== d.length) {
      throw new Error(`preconditionedHvp: v has ${v.length} values, expected ${d.length}`);
    }
    const hv = await hvp(Float64Array.from(v, (x, i) => x * (d[i] as number)));
    return Float64Array.from(hv, (x, i) => x * (d[i] as number));
  };
}

/**
 * Preconditioned sharpness λ_max(P⁻¹H) (Cohen et al. 2022, "Adaptive Gradient Methods at the Edge of
 * Stability"; shared METHODS.md §6): {@link lanczos} (options as there, default k = 1) on the symmetric
 * P^{-1/2} H P^{-1/2} of {@link preconditionedHvp}; `values[0]` is the preconditioned sharpness, to be
 * compared with {@link stabilityThreshold} of the Adam optimizer. Ritz vectors, if requested, are
 * those of the symmetric operator. Use {@link adamPreconditioner} for P.
 */
export function preconditionedSharpness(
  hvp: HvpFn,
  pDiag: ArrayLike<number>,
  options: LanczosOptions = {},
): Promise<LanczosResult> {
  return lanczos(preconditionedHvp(hvp, pDiag), pDiag.length, options);
}

/**
 * The largest (preconditioned) sharpness at which the optimizer's update is stable on the quadratic
 * ½ θᵀHθ (shared METHODS.md §6): the line that edge-of-stability curves are drawn against. At
 * learning rate η (default `optimizer.lr`), with PyTorch's update equations (docs/methods.md §3):
 *
 * - SGD without momentum (gradient descent): λ_max(H) < 2/η (Cohen et al. 2021).
 * - SGD with heavy-ball momentum μ and dampening d: b ← μb + (1 − d)g, θ ← θ − ηb is Polyak's method
 *   with step (1 − d)η, stable for λ_max(H) < (2 + 2μ) / ((1 − d) η) (Cohen et al. 2021, App. on
 *   momentum; (2 + 2μ)/η for d = 0).
 * - Nesterov (d = 0): θ ← θ − η(g + μb) has characteristic polynomial z² − (1 + μ − ηλ(1 + μ))z +
 *   μ(1 − ηλ), which reaches z = −1 at λ = (2 + 2μ) / ((1 + 2μ) η) (Cohen et al. 2021, same appendix).
 * - Adam / AdamW: λ_max(P⁻¹H) < (2 + 2β₁) / ((1 − β₁) η), 38/η at β₁ = 0.9 (Cohen et al. 2022, with a
 *   frozen preconditioner: m ← β₁m + (1 − β₁)g is heavy-ball with step (1 − β₁)η). The first-moment
 *   bias correction 1/(1 − β₁ᵗ) is left out, as in the paper (it tends to 1).
 *
 * Weight decay is not included: L2 decay λ makes the optimizer see H + λI (compare λ_max(H) + λ with the
 * threshold), AdamW's decoupled decay shrinks θ by (1 − ηλ) per step.
 */
export function stabilityThreshold(optimizer: OptimizerSpec, lr: number = optimizer.lr): number {
  if (!(lr > 0)) throw new Error(`stabilityThreshold: lr must be positive, got ${lr}`);
  const opt = resolveOptimizer(optimizer);
  if (opt.kind !== 'sgd') return (2 + 2 * opt.beta1) / ((1 - opt.beta1) * lr);
  const mu = opt.momentum;
  if (mu === 0) return 2 / lr;
  if (opt.nesterov) return (2 + 2 * mu) / ((1 + 2 * mu) * lr);
  return (2 + 2 * mu) / ((1 - opt.dampening) * lr);
}

// ---------------------------------------------------------------------------------------------------

/** Top Ritz values of T, their residuals and their eigenvectors' coefficients in the basis. */
interface Ritz {
  values: Float64Array;
  residuals: Float64Array;
  coefficients: Float64Array[];
}

/** Ritz pairs of the n × n tridiagonal T (diagonal alpha, off-diagonal beta[0..n−2]); `next` = β_n. */
function ritzPairs(alpha: readonly number[], beta: readonly number[], next: number, k: number): Ritz {
  const n = alpha.length;
  const t = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    t[i * n + i] = alpha[i] as number;
    if (i > 0) t[i * n + i - 1] = t[(i - 1) * n + i] = beta[i - 1] as number;
  }
  const kk = Math.min(k, n);
  const eig = symmetricEigen(t, n, () => Array.from({ length: kk }, (_, i) => n - 1 - i));
  const values = Float64Array.from(eig.selected, (i) => eig.values[i] as number);
  const residuals = Float64Array.from(eig.vectors, (s) => Math.abs(next * (s[n - 1] as number)));
  return { values, residuals, coefficients: eig.vectors };
}

/** Whether every Ritz pair has residual ≤ tol · |θ|. */
function allConverged(r: Ritz, tol: number): boolean {
  return r.values.every((t, i) => (r.residuals[i] as number) <= tol * Math.abs(t));
}

function checkDim(fn: string, dim: number): void {
  if (!Number.isInteger(dim) || dim < 1) throw new Error(`${fn}: dim must be a positive integer, got ${dim}`);
}

async function apply(hvp: HvpFn, v: Float64Array, dim: number, fn: string): Promise<Float64Array> {
  const w = await hvp(v);
  if (w.length !== dim) throw new Error(`${fn}: the operator returned ${w.length} values, expected ${dim}`);
  return Float64Array.from(w);
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

const norm = (a: Float64Array) => Math.sqrt(dot(a, a));

/** y += c x. */
function axpy(y: Float64Array, c: number, x: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i] = (y[i] as number) + c * (x[i] as number);
}

const scaled = (a: Float64Array, c: number) => Float64Array.from(a, (x) => x * c);

function residualNorm(w: Float64Array, lambda: number, v: Float64Array): number {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += ((w[i] as number) - lambda * (v[i] as number)) ** 2;
  return Math.sqrt(s);
}

/** One pass of classical Gram–Schmidt of w against the orthonormal basis. */
function orthogonalize(w: Float64Array, basis: readonly Float64Array[]): void {
  for (const q of basis) axpy(w, -dot(q, w), q);
}

function randomUnit(rng: Rng, dim: number): Float64Array {
  const v = rng.fillNormal(new Float64Array(dim));
  const n = norm(v);
  // dim ≥ 1 normal deviates are all 0 with probability 0; Box–Muller never returns exactly 0 twice.
  return scaled(v, 1 / n);
}

/** A random unit vector orthogonal to the basis (which has fewer than dim vectors). */
function restartVector(rng: Rng, dim: number, basis: readonly Float64Array[]): Float64Array {
  for (let attempt = 0; attempt < 8; attempt++) {
    const v = rng.fillNormal(new Float64Array(dim));
    const before = norm(v);
    orthogonalize(v, basis);
    orthogonalize(v, basis);
    const after = norm(v);
    if (after > 1e-8 * before) return scaled(v, 1 / after);
  }
  throw new Error('lanczos: could not find a restart vector orthogonal to the basis');
}
