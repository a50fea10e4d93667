/**
 * Parameter layouts: the named tensors of a model and where each lives in the flat parameter
 * vector. Every measurement that acts on weights works on the flat Float32Array through this
 * layout; nothing re-creates a model to change its weights.
 */
import type { Net } from './net.js';
import type { DenseLayer, InitSpec } from './spec.js';

/** One named tensor inside the flat parameter vector. */
export interface TensorSlot {
  /** `dense{i}.weight` ([out, in], row-major), `dense{i}.bias` ([out]), or a conv net's tensors
   * (`conv{i}.weight` [out, in, kh, kw], `norm{i}.weight`, …: see {@link ../model/net.ts}). */
  readonly name: string;
  readonly shape: readonly number[];
  /** Offset of the first element in the flat vector. */
  readonly offset: number;
  /** Number of elements (product of shape). */
  readonly size: number;
  /**
   * `weight` and `bias` of dense and conv layers; `scale` (a norm layer's affine weight, initialized
   * to 1); `buffer` (BatchNorm's running mean and variance: state, not parameters — no gradient, no
   * optimizer update, no perturbation; training updates them from batch statistics).
   */
  readonly role: TensorRole;
  /** Fan-in and fan-out of the layer the tensor belongs to. */
  readonly fanIn: number;
  readonly fanOut: number;
  /** Standard deviation of the tensor's initial entries under the model's init scheme
   * (perturbations are scaled by it; 0 for zero-initialized tensors). */
  readonly initStd: number;
}

/** What a tensor of a layout is (see {@link TensorSlot.role}). */
export type TensorRole = 'weight' | 'bias' | 'scale' | 'buffer';

/** Whether a tensor is trained (every role but `buffer`). */
export function isTrainable(slot: Pick<TensorSlot, 'role'>): boolean {
  return slot.role !== 'buffer';
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

/**
 * The layout of a {@link Net}, node by node in PyTorch's `state_dict` order: a conv's weight
 * [out, in, k, k] (fan-in in·k², fan-out out·k²) and bias; a norm's scale and bias [C], then, for
 * BatchNorm, its running mean and running variance [C] (buffers); a dense layer's weight [out, in]
 * and bias.
 */
export function netLayoutOf(net: Net, init: InitSpec): ParameterLayout {
  const tensors: TensorSlot[] = [];
  let offset = 0;
  const add = (name: string, shape: number[], role: TensorRole, fanIn: number, fanOut: number) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const affine = role === 'weight' || (role === 'bias' && !name.startsWith('norm'));
    const std = affine ? initStd(init, role as 'weight' | 'bias', fanIn, fanOut) : 0;
    tensors.push({ name, shape, offset, size, role, fanIn, fanOut, initStd: std });
    offset += size;
  };
  for (const node of net.nodes) {
    if (node.op === 'conv') {
      const k2 = node.kernel * node.kernel;
      const fans = [node.inChannels * k2, node.outChannels * k2] as const;
      add(
        `${node.name}.weight`,
        [node.outChannels, node.inChannels, node.kernel, node.kernel],
        'weight',
        ...fans,
      );
      if (node.bias) add(`${node.name}.bias`, [node.outChannels], 'bias', ...fans);
    } else if (node.op === 'norm') {
      const c = node.channels;
      add(`${node.name}.weight`, [c], 'scale', c, c);
      add(`${node.name}.bias`, [c], 'bias', c, c);
      if (node.kind === 'batch') {
        add(`${node.name}.running_mean`, [c], 'buffer', c, c);
        add(`${node.name}.running_var`, [c], 'buffer', c, c);
      }
    } else if (node.op === 'dense') {
      add(`${node.name}.weight`, [node.outputs, node.inputs], 'weight', node.inputs, node.outputs);
      if (node.bias) add(`${node.name}.bias`, [node.outputs], 'bias', node.inputs, node.outputs);
    }
  }
  return { tensors, size: offset };
}

/**
 * The entries of the trainable tensors of `flat` (every tensor but BatchNorm's running statistics),
 * in layout order: `flat` itself when the layout has no buffers, else a copy without them.
 */
export function trainableEntries<T extends Float32Array | Float64Array>(flat: T, layout: ParameterLayout): T {
  const kept = layout.tensors.filter(isTrainable);
  if (kept.length === layout.tensors.length) return flat;
  const out = new (flat.constructor as new (n: number) => T)(kept.reduce((s, t) => s + t.size, 0));
  let at = 0;
  for (const t of kept) {
    out.set(tensorView(flat, t), at);
    at += t.size;
  }
  return out;
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
