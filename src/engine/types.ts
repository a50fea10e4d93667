/**
 * The engine contract: what every training/evaluation engine (ONNX Runtime, tfjs) provides.
 *
 * Weights are always a flat Float32Array in the order of the model's {@link ParameterLayout};
 * engines never own weights between calls, so one engine evaluates any point in weight space.
 */
import type { Batch } from '../data/types.js';
import type { ModelGraphSpec } from '../model/graph.js';

/** Optimizers with PyTorch's update equations (torch.optim.SGD / Adam / AdamW, defaults alike). */
export type OptimizerSpec =
  | {
      kind: 'sgd';
      lr: number;
      momentum?: number;
      dampening?: number;
      nesterov?: boolean;
      weightDecay?: number;
    }
  | {
      kind: 'adam' | 'adamw';
      lr: number;
      beta1?: number;
      beta2?: number;
      eps?: number;
      weightDecay?: number;
    };

/** Optimizer state: the step count (number of updates done) and flat slot vectors.
 * SGD with momentum has one slot (the momentum buffer); Adam/AdamW have two (exp_avg, exp_avg_sq). */
export interface OptimizerState {
  step: number;
  slots: Float32Array[];
}

/** What a training step changes: parameters and optimizer state. */
export interface TrainState {
  params: Float32Array;
  opt: OptimizerState;
}

/** Summed loss and correct count over a set of examples, and their number. */
export interface EvalResult {
  /** Mean loss over the examples (same definition as the training loss). */
  readonly loss: number;
  /**
   * Number of examples whose argmax output equals the argmax target, for models with two or more
   * outputs whatever their loss (a classifier trained with squared error on one-hot targets
   * included); 0 for single-output models.
   */
  readonly correct: number;
  readonly count: number;
}

/**
 * Linear combinations of a few weight vectors: point b is Σ_k coefficients[b][k] · vectors[k]
 * (e.g. vectors [θ, d₁, d₂] and rows [1, a, b] for the plane of a loss surface; [θ_A, θ_B] and
 * rows [1 − α, α] for an interpolation curve).
 */
export interface ParamsCombination {
  /** K vectors, each in the model's {@link ParameterLayout} order (float64 or float32). */
  readonly vectors: readonly (Float32Array | Float64Array)[];
  /** One row of K coefficients per point. */
  readonly coefficients: readonly (readonly number[])[];
}

/** The weight vectors of {@link Engine.evaluateMany}: a list of points, or combinations of a few vectors. */
export type ParamsBatch = readonly Float32Array[] | ParamsCombination;

/** Options of {@link Engine.evaluateMany}. */
export interface EvaluateManyOptions {
  /** Called as points are finished (the ORT engine: after each group of points) with the number done and the total. */
  readonly onProgress?: (done: number, total: number) => void;
}

/** Options every engine accepts. */
export interface EngineOptions {
  readonly optimizer: OptimizerSpec;
  /** Intra-op threads (ORT) — results are bit-identical across runs at a fixed count. Default 1. */
  readonly threads?: number;
}

/** One training/evaluation engine bound to one model and optimizer. */
export interface Engine {
  /** `ort` or `tfjs`. */
  readonly name: string;
  /** What actually executes: e.g. `onnxruntime-node 1.30.0 cpu` or `tfjs cpu`. */
  readonly backend: string;
  readonly model: ModelGraphSpec;
  /** Fresh optimizer state (step 0, zeroed slots) for this engine's optimizer. */
  initOptimizerState(): OptimizerState;
  /**
   * One optimizer step at learning rate `lr` on `batch`; replaces `state.params` and the slots.
   * Returns the batch's loss before the update.
   */
  trainStep(state: TrainState, batch: Batch, lr: number): Promise<number>;
  /**
   * Several optimizer steps in one call (batches of equal size), bit-identical to the same
   * {@link trainStep} calls; returns each step's loss. Engines that lack it loop over trainStep.
   */
  trainSteps?(state: TrainState, batches: readonly Batch[], lrs: readonly number[]): Promise<Float64Array>;
  /** Loss and correct count over n examples (any n; evaluated in chunks). */
  evaluate(params: Float32Array, x: Float32Array, y: Float32Array, n: number): Promise<EvalResult>;
  /**
   * {@link evaluate} of many weight vectors on the same n examples, batched into few native calls
   * where that pays off; one result per point, in order.
   *
   * A list of points gives exactly the results of evaluate, point by point (the ORT engine runs a
   * small model's points as one batched graph with the same arithmetic, and a large model's as one
   * evaluate call each, where batching gains nothing; the tfjs engine loops). A
   * {@link ParamsCombination} is formed point by point as Σ_k c_k v_k in float64, left to right,
   * and rounded once to float32 (so [1, a, b] · [θ, d₁, d₂] is θ + a d₁ + b d₂ as the loss
   * surfaces form it), and then evaluated as a list, except that the ORT engine, when a group of
   * points has more points than there are vectors, computes the first layer's product as the same
   * combination of the vectors' products (x·W_kᵀ, a few wide GEMMs instead of one per point) and the
   * other weights as float32 combinations: equal to evaluate within float32 rounding (relative
   * loss difference below 1e-5; a correct count may differ where two logits tie to rounding).
   */
  evaluateMany(
    points: ParamsBatch,
    x: Float32Array,
    y: Float32Array,
    n: number,
    options?: EvaluateManyOptions,
  ): Promise<EvalResult[]>;
  /** Mean loss on the batch and its gradient with respect to the flat parameters. */
  gradient(params: Float32Array, batch: Batch): Promise<{ loss: number; grad: Float32Array }>;
  /** Hessian-vector product H(params) · v of the batch's mean loss. */
  hvp(params: Float32Array, batch: Batch, v: Float32Array): Promise<Float32Array>;
  /**
   * Post-activation outputs of every hidden layer on n examples, keyed by layer name
   * (`dense0`, `dense1`, …; the output layer is not included), each row-major [n, width].
   */
  activations(params: Float32Array, x: Float32Array, n: number): Promise<Map<string, Float32Array>>;
  /**
   * Softmax outputs of a cross-entropy model on n examples, row-major [n, outputDim] (each row a
   * distribution over the classes). Optional: the ORT engine has it, tfjs does not.
   * @throws for an mse model.
   */
  probabilities?(params: Float32Array, x: Float32Array, n: number): Promise<Float32Array>;
  /**
   * Raw model outputs on n examples, row-major [n, outputDim]: a classifier's logits, an mse
   * model's predictions. Optional: the ORT engine has it, tfjs does not.
   */
  predictions?(params: Float32Array, x: Float32Array, n: number): Promise<Float32Array>;
  /**
   * `params` with BatchNorm's running statistics recomputed on n examples in batches of `batch`
   * rows (PyTorch's `update_bn`: train-mode passes, equal-weight averages of batch means and unbiased
   * batch variances); a copy for models without BatchNorm. Optional: the ORT engine has it.
   */
  normStatistics?(params: Float32Array, x: Float32Array, n: number, batch: number): Promise<Float32Array>;
  /** Release native resources. */
  dispose(): Promise<void>;
}

/** Resolved optimizer hyper-parameters with PyTorch's defaults filled in. */
export interface ResolvedOptimizer {
  readonly kind: 'sgd' | 'adam' | 'adamw';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
}

/** Fill in PyTorch's defaults (SGD: momentum 0; Adam: betas (0.9, 0.999), eps 1e-8; AdamW: weight decay 0.01). */
export function resolveOptimizer(spec: OptimizerSpec): ResolvedOptimizer {
  if (spec.kind === 'sgd') {
    const momentum = spec.momentum ?? 0;
    const nesterov = spec.nesterov ?? false;
    const dampening = spec.dampening ?? 0;
    if (nesterov && (momentum <= 0 || dampening !== 0)) {
      throw new Error('optimizer.nesterov requires momentum > 0 and dampening 0');
    }
    return {
      kind: 'sgd',
      momentum,
      dampening,
      nesterov,
      weightDecay: spec.weightDecay ?? 0,
      beta1: 0,
      beta2: 0,
      eps: 0,
    };
  }
  return {
    kind: spec.kind,
    momentum: 0,
    dampening: 0,
    nesterov: false,
    weightDecay: spec.weightDecay ?? (spec.kind === 'adamw' ? 0.01 : 0),
    beta1: spec.beta1 ?? 0.9,
    beta2: spec.beta2 ?? 0.999,
    eps: spec.eps ?? 1e-8,
  };
}

/** Number of flat slot vectors the optimizer keeps. */
export function optimizerSlotCount(opt: ResolvedOptimizer): number {
  if (opt.kind === 'sgd') return opt.momentum > 0 ? 1 : 0;
  return 2;
}

/** A zeroed optimizer state for `paramCount` parameters. */
export function zeroOptimizerState(opt: ResolvedOptimizer, paramCount: number): OptimizerState {
  return {
    step: 0,
    slots: Array.from({ length: optimizerSlotCount(opt) }, () => new Float32Array(paramCount)),
  };
}
