/**
 * The schema of a twin study's results: the compared pairs ({@link TwinInfo}) and the metric names of
 * results.arrow ({@link METRICS}), with the options written next to each value.
 */

import type { ResultRow } from './rows.js';

/** How twin B differs from twin A (docs/methods.md §5). */
export type PerturbationKind = 'gaussian' | 'batch' | 'seed' | 'init';

/**
 * One compared pair of a study: twin B (`runB`) against its reference twin A (`runA`). The same two
 * names are the `run_a` and `run_b` columns of its result rows ({@link ResultRow}).
 */
export interface TwinInfo {
  /** The run it is compared against: twin A, unperturbed, same data stream (a study run name). */
  readonly runA: string;
  /** The perturbed twin B's run name within the study (its directory is `runs/<runB>`). */
  readonly runB: string;
  readonly kind: PerturbationKind;
  /** Perturbation size relative to the init norm; 0 for `seed` and `init`. */
  readonly sigma: number;
  /** Step t at which B leaves A (0 for `init`). */
  readonly forkStep: number;
  /** Repeat index: different perturbation seed (or data / init seed for `seed` / `init`). */
  readonly repeat: number;
  /** Init seed of the parent both twins descend from. */
  readonly seed: number;
}

/**
 * Metric names the study writes in results.arrow (long form; see results/rows.ts). Options
 * stored next to each value say which definition produced it.
 */
export const METRICS = {
  /** ‖θ_A − θ_B‖₂; with `layer` = tensor name for the per-tensor version. No options. */
  l2: 'l2',
  /** ‖θ_A − θ_B‖₂ / sqrt(‖θ_A‖₂ ‖θ_B‖₂). No options. */
  normalizedL2: 'normalized_l2',
  /** ⟨θ_A, θ_B⟩ / (‖θ_A‖ ‖θ_B‖). No options. */
  cosine: 'cosine',
  /**
   * ‖θ_A − θ_B‖ / ‖ε‖ at every step L2 is measured, for twins whose lineage records a perturbation
   * norm ‖ε‖ > 0 (weight perturbations); options.epsNorm = ‖ε‖.
   */
  amplification: 'amplification',
  /** Loss / error of θ(α) on `split`; options: alpha (the point), alphas (grid size), examples. */
  interpLoss: 'interp_loss',
  interpError: 'interp_error',
  /**
   * Barriers on `split`; options: convention ('linear' or 'midpoint-mean'), alphaStar (the argmax),
   * alphas (grid size), examples.
   */
  lossBarrier: 'loss_barrier',
  errorBarrier: 'error_barrier',
  /**
   * After aligning B to A; options.method is 'weight' (with sweeps, converged) or 'activation' (with
   * examples, correlation: 'pearson'). The aligned barriers carry the alignment's options and the
   * barrier's; their options.examples is the barrier's evaluation set (the matching set's size is in
   * the aligned_l2 row of the same step).
   */
  alignedL2: 'aligned_l2',
  alignedLossBarrier: 'aligned_loss_barrier',
  alignedErrorBarrier: 'aligned_error_barrier',
  /**
   * CKA of a hidden layer (`layer` = 'dense{i}') on `split` (test, or train when there is no test
   * split); options: kernel, debiased, examples.
   */
  cka: 'cka',
  /**
   * Finite-time Lyapunov exponent of twin B against A, fitted to its L2 rows; `step` = toStep.
   * Options: window (consecutive L2 measurements per fit, or 'all' for the one fit over all of them),
   * fromStep, toStep, stderr (null with fewer than 3 points), points (distances > 0 in the fit).
   */
  lyapunov: 'lyapunov',
  /**
   * Earliest stable fork step per seed and σ: the mean over repeats of the linear error barrier at the
   * last step (test split, or train when there is none) is below the threshold. run_a = the seed's
   * parent, run_b null; value NaN and `step` = the last step when there is none. Options: kind, sigma,
   * threshold, repeats, found, evaluated ([t, mean barrier] pairs).
   */
  stabilityOnset: 'stability_onset',
  /**
   * A run of the pair diverged (run.json status `diverged`), so the pair is measured only at the
   * checkpoint steps both runs kept: one row per diverged run, `step` = where it diverged, value =
   * the last step measured (NaN when none). Options: run (its name), reason ('loss', 'parameters',
   * 'parent'), nonFinite (the value, e.g. 'NaN'), endSkipped (measurements taken at the end, hence
   * not at all), dropped ([{ step, measurement, error }]: measurements of kept steps that gave
   * non-finite values or failed, e.g. on the huge weights just before a divergence).
   */
  diverged: 'diverged',
  /**
   * Single-run measurements of a sweep's `measure` block (docs/methods.md §12): run_a = the run,
   * run_b null, `step` = the checkpoint measured.
   *
   * The k-th largest Hessian eigenvalue of the training loss (Lanczos on exact Hessian-vector
   * products), split `train`. Options: k (1 = the sharpness λ_max), topK, examples, steps (Lanczos
   * steps done), residual (‖Hy − θy‖ of its Ritz pair), converged, seed.
   */
  sharpness: 'sharpness',
  /**
   * Hutchinson's estimate of the Hessian trace of the training loss (mean of zᵀHz over Rademacher
   * probes), split `train`. Options: probes, stderr (standard error of the mean), examples, seed.
   */
  hessianTrace: 'hessian_trace',
  /**
   * Adam/AdamW runs only: λ_max(P⁻¹H), the top eigenvalue of the training-loss Hessian preconditioned
   * by the optimizer's state at the checkpoint (Cohen et al. 2022; docs/methods.md §12.2), split
   * `train`. Options: threshold ((2 + 2β₁)/((1 − β₁)η) at the checkpoint's η), lr, examples, steps,
   * residual, converged, seed.
   */
  preconditionedSharpness: 'preconditioned_sharpness',
  /**
   * Loss / accuracy of θ + ε over noise draws at one σ, on `split`; one row per statistic. Options:
   * sigma, noise ('iid' or 'relative'), draws, stat ('mean', 'std', 'min', 'max'), examples, seed,
   * streams ('per-sigma'). Accuracy rows only for classifiers.
   */
  sensitivityLoss: 'sensitivity_loss',
  sensitivityAccuracy: 'sensitivity_accuracy',
  /**
   * The σ at which the mean accuracy over the draws falls `drop` below the clean accuracy (bisection
   * on log σ, common random numbers), on `split`; classifiers only. Options: noise, drop, clean (the
   * clean accuracy), draws, lo, hi (the final bracket), probes (σ evaluated), examples, seed; value
   * NaN and options.error when no such σ was found.
   */
  criticalSigma: 'critical_sigma',
  /**
   * A 2-D loss surface around the run's network, stored in its own Arrow file (docs/formats.md,
   * "Surfaces"); value = the loss at θ itself on the surface's examples, on `split`. Options:
   * directions ('random' or 'pca'), points, x and y (the axes' ends), examples, seed (random),
   * file (the surface file, relative to the sweep directory), sha256, bytes (its digest).
   */
  surface: 'surface',
} as const;
