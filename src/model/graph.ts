/** Resolve a model spec, data shape and loss into the {@link ModelGraphSpec} engines consume. */
import type { LossKind, ModelGraphSpec } from '../engine/types.js';
import { layoutOf } from './layout.js';
import { defaultInit, denseLayers, type ModelSpec } from './spec.js';

export function modelGraphSpec(
  spec: ModelSpec,
  inputDim: number,
  outputDim: number,
  loss: LossKind,
): ModelGraphSpec {
  const layers = denseLayers(spec, inputDim, outputDim);
  return { layers, layout: layoutOf(layers, spec.init ?? defaultInit(spec)), loss, inputDim, outputDim };
}
