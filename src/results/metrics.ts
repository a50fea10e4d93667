/**
 * What a twin study is made of, as the planner, the executor, the measurements and the plots see it.
 */

/** How twin B differs from twin A (METHODS §1). */
export type PerturbationKind = 'gaussian' | 'batch' | 'seed' | 'init';

/** One compared pair of a study: twin B (`name`) against its reference twin A (`reference`). */
export interface TwinInfo {
  /** The twin's run name within the study (its directory is `runs/<name>`). */
  readonly name: string;
  /** The run it is compared against (twin A, unperturbed, same data stream). */
  readonly reference: string;
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
 * Metric names the study writes in results.arrow (long form; see measure/results.ts). Options
 * stored next to each value say which definition produced it.
 */
export const METRICS = {
  /** ‖θ_A − θ_B‖₂; with `layer` = tensor name for the per-tensor version. */
  l2: 'l2',
  normalizedL2: 'normalized_l2',
  cosine: 'cosine',
  /** ‖θ_A(T) − θ_B(T)‖ / ‖ε‖ (weight perturbations only). */
  amplification: 'amplification',
  /** Loss / error of θ(α) on `split`; options.alpha is the point, options.alphas the grid size. */
  interpLoss: 'interp_loss',
  interpError: 'interp_error',
  /** Barriers; options.convention is 'linear' or 'midpoint-mean', options.alphaStar the argmax. */
  lossBarrier: 'loss_barrier',
  errorBarrier: 'error_barrier',
  /** After aligning B to A; options.method is 'weight' or 'activation'. */
  alignedL2: 'aligned_l2',
  alignedLossBarrier: 'aligned_loss_barrier',
  alignedErrorBarrier: 'aligned_error_barrier',
  /** CKA of a hidden layer (`layer` = 'dense{i}') on `split`; options: kernel, debiased, n. */
  cka: 'cka',
  /** Finite-time Lyapunov exponent of a twin over a window; options: window, fitError. */
  lyapunov: 'lyapunov',
  /** Earliest fork step with error barrier below threshold, per kind and σ (run_a = parent). */
  stabilityOnset: 'stability_onset',
} as const;
