/** The model as engines consume it ({@link ModelGraphSpec}): layers, parameter layout, loss and shapes. */
import { layoutOf, type ParameterLayout } from './layout.js';
import { type DenseLayer, defaultInit, denseLayers, type ModelSpec } from './spec.js';

/** Training loss. `cross-entropy` is softmax cross-entropy on one-hot targets, averaged over the batch;
 * `mse` is the mean over the batch of the squared error summed over outputs, times ½. */
export type LossKind = 'cross-entropy' | 'mse';

/** A model as engines see it: dense layers, their parameter layout and the loss. */
export interface ModelGraphSpec {
  readonly layers: readonly DenseLayer[];
  readonly layout: ParameterLayout;
  readonly loss: LossKind;
  readonly inputDim: number;
  readonly outputDim: number;
}

/**
 * Whether evaluation counts argmax hits (`EvalResult.correct`): models with two or more outputs,
 * whatever their loss (a classifier trained with squared error on one-hot targets included).
 */
export function countsCorrect(model: Pick<ModelGraphSpec, 'outputDim'>): boolean {
  return model.outputDim >= 2;
}

/** Resolve a model spec, data shape and loss into the {@link ModelGraphSpec} engines consume. */
export function modelGraphSpec(
  spec: ModelSpec,
  inputDim: number,
  outputDim: number,
  loss: LossKind,
): ModelGraphSpec {
  const layers = denseLayers(spec, inputDim, outputDim);
  return { layers, layout: layoutOf(layers, spec.init ?? defaultInit(spec)), loss, inputDim, outputDim };
}
