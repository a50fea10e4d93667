/**
 * Measurements along training, the contract between the training loop and the measurements: a run
 * whose spec asks for `diagnostics` or `sharpness` (docs/methods.md §12) calls a {@link RunProbe} at
 * each scheduled step and appends the rows it returns to the run's `diagnostics.arrow`.
 *
 * The probe is passed in (`TrainRunOptions.probe`, `RunContext.probe`) rather than imported: the
 * Hessian and activation measurements live in measure/, a later stage than train/
 * (docs/architecture.md, "Import rules"). `trainingProbe` (src/measure/diagnostics.ts) is the one
 * twinscope's CLI, studies and sweeps pass; training a spec with these keys without a probe is an error.
 */
import type { Dataset } from '../data/types.js';
import type { Engine, TrainState } from '../engine/types.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import type { DiagnosticRow } from '../store/index.js';

/**
 * The metric names of diagnostics.arrow (docs/formats.md, "diagnostics.arrow"; definitions in
 * docs/methods.md §12.1–12.2). `layer` is the hidden layer (`dense{i}`) for `saturation` and
 * `dead_fraction`, the tensor for `weight_norm` (null: all parameters); `rank` is the eigenvalue's
 * rank, largest first, for `eigenvalue` and `eigenvalue_residual`.
 */
export const DIAGNOSTIC_METRICS = {
  /** ‖∇L‖₂ of the mean loss over the diagnostics examples (§12.1). */
  gradNorm: 'grad_norm',
  /** Fraction of (example, unit) pairs of a ReLU layer with activation ≤ 1e-6 (§12.1). */
  saturation: 'saturation',
  /** Fraction of a ReLU layer's units with activation ≤ 1e-6 on every example (§12.1). */
  dead: 'dead_fraction',
  /** ‖θ_t‖₂ of one tensor, or of all parameters (§12.1). */
  weightNorm: 'weight_norm',
  /** Top Hessian eigenvalues of the training loss on the sharpness examples (§12.2). */
  eigenvalue: 'eigenvalue',
  /** ‖Hy − θy‖ of each eigenvalue's Ritz (or power-iteration) vector (§12.2). */
  eigenvalueResidual: 'eigenvalue_residual',
  /** λ_max(P⁻¹H) with Adam's preconditioner at that step (Adam/AdamW, from step 1; §12.2). */
  preconditioned: 'preconditioned_sharpness',
  /** The optimizer's stability threshold at the step's learning rate (§12.2). */
  threshold: 'threshold',
  /** The learning rate η the threshold is computed with (§12.2). */
  lr: 'lr',
  /** Hutchinson's estimate of tr(H) and its standard error (with `probes` > 0; §12.2). */
  trace: 'trace',
  traceStderr: 'trace_stderr',
} as const;

/** What a {@link RunProbe} measures at one step: the state after `step` updates and the run around it. */
export interface ProbeInput {
  readonly spec: ResolvedRunSpec;
  /** The run's evaluation engine (for a lock-step group: the single-run engine of its evaluations). */
  readonly engine: Engine;
  readonly data: Dataset;
  /** The state after `step` updates; read it, never modify it (training goes on from it). */
  readonly state: Readonly<TrainState>;
  readonly step: number;
  readonly epoch: number;
  /** The learning rate of the update taken from this state (at the last step: of the last update). */
  readonly lr: number;
  /** Measure the spec's `diagnostics` at this step. */
  readonly diagnostics: boolean;
  /** Measure the spec's `sharpness` at this step. */
  readonly sharpness: boolean;
}

/**
 * Measures a run along training: the rows of diagnostics.arrow for one step. It must be
 * deterministic (the same state gives the same rows, bit for bit) so that a resumed run writes
 * the same file as an uninterrupted one.
 */
export type RunProbe = (input: ProbeInput) => Promise<DiagnosticRow[]>;
