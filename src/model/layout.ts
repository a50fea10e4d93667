/**
 * Parameter layouts: the named tensors of a model and where each lives in the flat parameter
 * vector. Every measurement that acts on weights works on the flat Float32Array through this
 * layout; nothing re-creates a model to change its weights.
 */
import type { DenseLayer, InitSpec } from './spec.js';

/** One named tensor inside the flat parameter vector. */
export interface TensorSlot {
  /** `dense{i}.weight` ([out, in], row-major) or `dense{i}.bias` ([out]). */
  readonly name: string;
  readonly shape: readonly number[];
  /** Offset of the first element in the flat vector. */
  readonly offset: number;
  /** Number of elements (product of shape). */
  readonly size: number;
  readonly role: 'weight' | 'bias';
  /** Fan-in and fan-out of the layer the tensor belongs to. */
  readonly fanIn: number;
  readonly fanOut: number;
  /** Standard deviation of the tensor's initial entries under the model's init scheme
   * (perturbations are scaled by it; 0 for zero-initialized tensors). */
  readonly initStd: number;
}

/** All tensors of a model, in order, with the total parameter count. */
export interface ParameterLayout {
  readonly tensors: readonly TensorSlot[];
  readonly size: number;
}

/** Build the layout of a list of dense layers: weight then bias for each layer, in order. */
export function layoutOf(layers: readonly DenseLayer[], init: InitSpec): ParameterLayout {
  const tensors: TensorSlot[] = [];
  let offset = 0;
  for (const layer of layers) {
    const common = { fanIn: layer.inputs, fanOut: layer.outputs };
    const wSize = layer.inputs * layer.outputs;
    tensors.push({
      name: `${layer.name}.weight`,
      shape: [layer.outputs, layer.inputs],
      offset,
      size: wSize,
      role: 'weight',
      initStd: initStd(init, 'weight', layer.inputs, layer.outputs),
      ...common,
    });
    offset += wSize;
    if (layer.bias) {
      tensors.push({
        name: `${layer.name}.bias`,
        shape: [layer.outputs],
        offset,
        size: layer.outputs,
        role: 'bias',
        initStd: initStd(init, 'bias', layer.inputs, layer.outputs),
        ...common,
      });
      offset += layer.outputs;
    }
  }
  return { tensors, size: offset };
}

/** The tensor named `name`, or an error listing the names the layout has. */
export function tensorSlot(layout: ParameterLayout, name: string): TensorSlot {
  const slot = layout.tensors.find((t) => t.name === name);
  if (!slot) {
    throw new Error(`no tensor '${name}' in layout (has ${layout.tensors.map((t) => t.name).join(', ')})`);
  }
  return slot;
}

/** A view (no copy) of one tensor's entries inside a flat parameter vector. */
export function tensorView<T extends Float32Array | Float64Array>(flat: T, slot: TensorSlot): T {
  return flat.subarray(slot.offset, slot.offset + slot.size) as T;
}

/** Standard deviation of a tensor's entries under an init scheme (see {@link InitSpec}). */
export function initStd(init: InitSpec, role: 'weight' | 'bias', fanIn: number, fanOut: number): number {
  switch (init.kind) {
    case 'zeros':
      return 0;
    case 'pytorch':
      return 1 / Math.sqrt(3 * fanIn);
    case 'normal':
      return role === 'weight' ? init.std : (init.biasStd ?? 0);
    case 'he':
      return role === 'weight' ? Math.sqrt(2 / fanIn) : (init.biasStd ?? 0);
    case 'glorot':
      return role === 'weight' ? Math.sqrt(2 / (fanIn + fanOut)) : (init.biasStd ?? 0);
  }
}
