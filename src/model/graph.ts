/** The model as engines consume it ({@link ModelGraphSpec}): layers, parameter layout, loss and shapes. */
import { layoutOf, netLayoutOf, type ParameterLayout } from './layout.js';
import { cnnNet, type Net, resnetNet } from './net.js';
import { type DenseLayer, defaultInit, denseLayers, type ModelSpec } from './spec.js';

/** Training loss. `cross-entropy` is softmax cross-entropy on one-hot targets, averaged over the batch;
 * `mse` is the mean over the batch of the squared error summed over outputs, times ½. */
export type LossKind = 'cross-entropy' | 'mse';

/** A model as engines see it: dense layers (or a layer graph), their parameter layout and the loss. */
export interface ModelGraphSpec {
  /** The dense chain of an MLP, deep linear chain or linear model; empty for a `net`. */
  readonly layers: readonly DenseLayer[];
  /** The layer graph of a CNN or ResNet (absent for dense chains). */
  readonly net?: Net;
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
  const init = spec.init ?? defaultInit(spec);
  if (spec.kind === 'cnn' || spec.kind === 'resnet') {
    const net =
      spec.kind === 'cnn' ? cnnNet(spec, inputDim, outputDim) : resnetNet(spec, inputDim, outputDim);
    return { layers: [], net, layout: netLayoutOf(net, init), loss, inputDim, outputDim };
  }
  const layers = denseLayers(spec, inputDim, outputDim);
  return { layers, layout: layoutOf(layers, init), loss, inputDim, outputDim };
}

/** The hidden outputs `Engine.activations` returns, by name, with their per-example width. */
export function hiddenOutputs(
  model: Pick<ModelGraphSpec, 'layers' | 'net'>,
): { name: string; width: number }[] {
  const { net } = model;
  if (net) {
    return net.hidden.map((h) => ({
      name: h.name,
      width: (net.nodes[h.node]?.shape ?? []).reduce((a, b) => a * b, 1),
    }));
  }
  return model.layers.slice(0, -1).map((l) => ({ name: l.name, width: l.outputs }));
}

/** Floats per example in the largest activation of the forward pass (for sizing evaluation chunks). */
export function largestActivation(model: Pick<ModelGraphSpec, 'layers' | 'net' | 'inputDim'>): number {
  if (model.net) return Math.max(...model.net.nodes.map((n) => n.shape.reduce((a, b) => a * b, 1)));
  return Math.max(model.inputDim, ...model.layers.map((l) => l.outputs));
}

/** Whether the model has BatchNorm running statistics (layout tensors of role `buffer`). */
export function hasNormBuffers(model: Pick<ModelGraphSpec, 'layout'>): boolean {
  return model.layout.tensors.some((t) => t.role === 'buffer');
}
