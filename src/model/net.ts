/**
 * Layer graphs: convolutional networks and ResNets as a small graph of layers.
 *
 * MLPs stay chains of {@link DenseLayer}s. A `cnn` or `resnet` model spec resolves into a
 * {@link Net}: nodes in topological order, each with its per-example output shape ([C, H, W] for
 * images, [F] for features). Engines build their graphs from it, and permutation specs over
 * channels are read off it.
 *
 * Tensor names follow PyTorch's `state_dict` layout: `conv{i}.weight` [out, in, kh, kw],
 * `conv{i}.bias` [out], `norm{i}.weight` / `norm{i}.bias` [C] (the affine scale and shift),
 * `norm{i}.running_mean` / `norm{i}.running_var` [C] (BatchNorm's running statistics, non-trainable
 * buffers), `dense{i}.weight` [out, in] and `dense{i}.bias` [out]. Layers are numbered in the order
 * they appear in the net.
 */

/** Normalization after a convolution: BatchNorm, GroupNorm with one group (LayerNorm over C, H, W
 * with a per-channel affine, as `nn.GroupNorm(1, C)`), GroupNorm with `groups` groups, or none. */
export type NormKind = 'batch' | 'layer' | 'group' | 'none';

/** The image shape a conv net reads its flat input features as: [channels, height, width]. */
export type ImageShape = readonly [number, number, number];

/** Fields every {@link NetNode} has. `shape` is the per-example output shape. */
export interface NetNodeBase {
  readonly id: number;
  readonly shape: readonly number[];
}

/** One node of a {@link Net}. `input` / `inputs` are ids of earlier nodes. */
export type NetNode =
  | (NetNodeBase & { readonly op: 'input' })
  | (NetNodeBase & {
      readonly op: 'conv';
      readonly name: string;
      readonly input: number;
      readonly inChannels: number;
      readonly outChannels: number;
      readonly kernel: number;
      readonly stride: number;
      readonly pad: number;
      readonly bias: boolean;
    })
  | (NetNodeBase & {
      readonly op: 'norm';
      readonly name: string;
      readonly input: number;
      readonly kind: Exclude<NormKind, 'none'>;
      readonly channels: number;
      /** Channel groups whose statistics are shared (GroupNorm); 1 for `layer`, unused for `batch`. */
      readonly groups: number;
      readonly eps: number;
      /** BatchNorm's running-statistics momentum (PyTorch's default 0.1). */
      readonly momentum: number;
    })
  | (NetNodeBase & { readonly op: 'relu'; readonly input: number })
  | (NetNodeBase & {
      readonly op: 'pool';
      readonly input: number;
      readonly kind: 'max' | 'avg';
      readonly size: number;
    })
  | (NetNodeBase & { readonly op: 'gap'; readonly input: number })
  | (NetNodeBase & { readonly op: 'flatten'; readonly input: number })
  | (NetNodeBase & {
      readonly op: 'dense';
      readonly name: string;
      readonly input: number;
      readonly inputs: number;
      readonly outputs: number;
      readonly bias: boolean;
    })
  | (NetNodeBase & { readonly op: 'add'; readonly inputs: readonly [number, number] });

/** A layer graph: nodes in topological order, the output node and the named hidden outputs. */
export interface Net {
  readonly nodes: readonly NetNode[];
  /** The image shape of node 0 (the input). */
  readonly image: ImageShape;
  /** Id of the logits node. */
  readonly output: number;
  /**
   * Hidden outputs reported by `Engine.activations` (CKA, activation matching): the post-ReLU output
   * of every conv block (CNN) or residual block (ResNet) and of every hidden dense layer, by name.
   */
  readonly hidden: readonly { readonly name: string; readonly node: number }[];
}

/**
 * A convolutional network: blocks of conv 3×3 (padding 1) → norm → ReLU → 2×2 pool (stride 2; an odd
 * trailing row or column is dropped, as PyTorch does), then flatten and a dense head.
 */
export interface CnnSpec {
  readonly kind: 'cnn';
  /** Output channels of each conv block. */
  readonly channels: readonly number[];
  /** Hidden widths of the dense head after flattening. Default none (one dense layer to the outputs). */
  readonly dense?: readonly number[];
  /** Pooling after each block. Default `max`. */
  readonly pool?: 'max' | 'avg';
  /** Normalization after each conv. Default `none`. */
  readonly norm?: NormKind;
  /** Channel groups of `norm: "group"`. Default 4. */
  readonly groups?: number;
  /** How flat inputs are read as images. Default: [1, s, s] for inputDim = s². */
  readonly image?: ImageShape;
}

/**
 * A ResNet for small images (He et al. 2016, §4.2): a 3×3 stem conv with 16·width channels, three
 * stages of n basic blocks (16, 32, 64 channels times `width`; stride 2 at the start of stages 2
 * and 3), global average pooling and a dense layer; depth = 6n + 2 (8, 14, 20, …). A block is
 * conv → norm → ReLU → conv → norm, plus the shortcut, then ReLU; where the shape changes the
 * shortcut is a 1×1 conv with stride 2 and a norm (option B).
 */
export interface ResnetSpec {
  readonly kind: 'resnet';
  /** 6n + 2. */
  readonly depth: number;
  /** Channel multiplier of 16 / 32 / 64. Default 1. */
  readonly width?: number;
  /** Default `batch`. */
  readonly norm?: NormKind;
  /** Channel groups of `norm: "group"`. Default 4. */
  readonly groups?: number;
  readonly image?: ImageShape;
}

/** The image shape of flat inputs with `inputDim` features: `given` if set, else [1, s, s]. */
export function imageShape(inputDim: number, given: ImageShape | undefined): ImageShape {
  if (given) {
    if (given.length !== 3 || given.some((d) => !Number.isInteger(d) || d < 1)) {
      throw new Error(`model.image must be [channels, height, width] of positive integers, got [${given}]`);
    }
    const size = given[0] * given[1] * given[2];
    if (size !== inputDim) {
      throw new Error(`model.image [${given}] has ${size} elements, but the data has ${inputDim} features`);
    }
    return given;
  }
  const s = Math.round(Math.sqrt(inputDim));
  if (s * s !== inputDim) {
    throw new Error(
      `model.image is required: ${inputDim} input features are not a square image (give [channels, height, width])`,
    );
  }
  return [1, s, s];
}

/** Builds a {@link Net} node by node, computing shapes and numbering layers. */
class NetBuilder {
  readonly nodes: NetNode[] = [];
  readonly hidden: { name: string; node: number }[] = [];
  private convs = 0;
  private norms = 0;
  private denses = 0;

  constructor(readonly image: ImageShape) {
    this.nodes.push({ id: 0, op: 'input', shape: [...image] });
  }

  private shapeOf(id: number): readonly number[] {
    return (this.nodes[id] as NetNode).shape;
  }

  private push<T extends Omit<NetNode, 'id'>>(node: T): number {
    const id = this.nodes.length;
    this.nodes.push({ ...node, id } as unknown as NetNode);
    return id;
  }

  conv(input: number, outChannels: number, kernel: number, stride: number, pad: number): number {
    const [c, h, w] = this.shapeOf(input) as [number, number, number];
    const out = (d: number) => Math.floor((d + 2 * pad - kernel) / stride) + 1;
    if (out(h) < 1 || out(w) < 1) {
      throw new Error(`conv${this.convs}: a ${kernel}×${kernel} kernel does not fit a ${h}×${w} input`);
    }
    return this.push({
      op: 'conv',
      name: `conv${this.convs++}`,
      input,
      inChannels: c,
      outChannels,
      kernel,
      stride,
      pad,
      bias: false,
      shape: [outChannels, out(h), out(w)],
    });
  }

  /** A conv with a bias (when no norm follows it). */
  convWithBias(input: number, outChannels: number, kernel: number, stride: number, pad: number): number {
    const id = this.conv(input, outChannels, kernel, stride, pad);
    const node = this.nodes[id] as NetNode & { op: 'conv' };
    this.nodes[id] = { ...node, bias: true };
    return id;
  }

  norm(input: number, kind: NormKind, groups: number): number {
    if (kind === 'none') return input;
    const shape = this.shapeOf(input);
    const channels = shape[0] as number;
    const g = kind === 'batch' ? 1 : kind === 'layer' ? 1 : groups;
    if (kind === 'group' && (!Number.isInteger(g) || g < 1 || channels % g !== 0)) {
      throw new Error(`model.groups ${g} must divide the ${channels} channels of norm${this.norms}`);
    }
    return this.push({
      op: 'norm',
      name: `norm${this.norms++}`,
      input,
      kind,
      channels,
      groups: g,
      eps: 1e-5,
      momentum: 0.1,
      shape,
    });
  }

  relu(input: number): number {
    return this.push({ op: 'relu', input, shape: this.shapeOf(input) });
  }

  pool(input: number, kind: 'max' | 'avg', size: number): number {
    const [c, h, w] = this.shapeOf(input) as [number, number, number];
    if (h < size || w < size) throw new Error(`a ${size}×${size} pool does not fit a ${h}×${w} input`);
    // PyTorch's pooling without padding: trailing rows and columns that do not fill a window are dropped.
    return this.push({
      op: 'pool',
      input,
      kind,
      size,
      shape: [c, Math.floor(h / size), Math.floor(w / size)],
    });
  }

  gap(input: number): number {
    return this.push({ op: 'gap', input, shape: [this.shapeOf(input)[0] as number] });
  }

  flatten(input: number): number {
    const size = this.shapeOf(input).reduce((a, b) => a * b, 1);
    return this.push({ op: 'flatten', input, shape: [size] });
  }

  dense(input: number, outputs: number): number {
    const shape = this.shapeOf(input);
    if (shape.length !== 1) throw new Error('a dense layer needs a flat input');
    return this.push({
      op: 'dense',
      name: `dense${this.denses++}`,
      input,
      inputs: shape[0] as number,
      outputs,
      bias: true,
      shape: [outputs],
    });
  }

  add(a: number, b: number): number {
    const sa = this.shapeOf(a);
    const sb = this.shapeOf(b);
    if (sa.length !== sb.length || sa.some((d, i) => d !== sb[i])) {
      throw new Error(`residual addition of shapes [${sa}] and [${sb}]`);
    }
    return this.push({ op: 'add', inputs: [a, b], shape: sa });
  }

  markHidden(name: string, node: number): void {
    this.hidden.push({ name, node });
  }

  build(output: number): Net {
    return { nodes: this.nodes, image: this.image, output, hidden: this.hidden };
  }
}

function checkWidth(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${field} must be a positive integer, got ${value}`);
  }
}

/** Resolve a `cnn` spec for data with `inputDim` features and `outputDim` outputs. */
export function cnnNet(spec: CnnSpec, inputDim: number, outputDim: number): Net {
  if (!Array.isArray(spec.channels) || spec.channels.length === 0) {
    throw new Error('model.channels must list the output channels of at least one conv block');
  }
  spec.channels.forEach((c, i) => checkWidth(`model.channels[${i}]`, c));
  (spec.dense ?? []).forEach((w, i) => checkWidth(`model.dense[${i}]`, w));
  const norm = spec.norm ?? 'none';
  const b = new NetBuilder(imageShape(inputDim, spec.image));
  let h = 0;
  spec.channels.forEach((c) => {
    const conv = norm === 'none' ? b.convWithBias(h, c, 3, 1, 1) : b.conv(h, c, 3, 1, 1);
    h = b.relu(b.norm(conv, norm, spec.groups ?? 4));
    b.markHidden((b.nodes[conv] as { name: string }).name, h);
    h = b.pool(h, spec.pool ?? 'max', 2);
  });
  h = b.flatten(h);
  for (const w of spec.dense ?? []) {
    h = b.relu(b.dense(h, w));
    b.markHidden((b.nodes[h - 1] as { name: string }).name, h);
  }
  return b.build(b.dense(h, outputDim));
}

/** Resolve a `resnet` spec for data with `inputDim` features and `outputDim` outputs. */
export function resnetNet(spec: ResnetSpec, inputDim: number, outputDim: number): Net {
  const n = (spec.depth - 2) / 6;
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`model.depth must be 6n + 2 (8, 14, 20, …), got ${spec.depth}`);
  }
  const width = spec.width ?? 1;
  checkWidth('model.width', width);
  const norm = spec.norm ?? 'batch';
  const groups = spec.groups ?? 4;
  const b = new NetBuilder(imageShape(inputDim, spec.image));
  const convNorm = (input: number, c: number, k: number, stride: number, pad: number) =>
    b.norm(
      norm === 'none' ? b.convWithBias(input, c, k, stride, pad) : b.conv(input, c, k, stride, pad),
      norm,
      groups,
    );
  let h = b.relu(convNorm(0, 16 * width, 3, 1, 1));
  let block = 0;
  [16, 32, 64].forEach((base, stage) => {
    const c = base * width;
    for (let i = 0; i < n; i++) {
      const stride = stage > 0 && i === 0 ? 2 : 1;
      const inC = (b.nodes[h] as NetNode).shape[0] as number;
      const y = convNorm(b.relu(convNorm(h, c, 3, stride, 1)), c, 3, 1, 1);
      const shortcut = stride !== 1 || inC !== c ? convNorm(h, c, 1, stride, 0) : h;
      h = b.relu(b.add(y, shortcut));
      b.markHidden(`block${block++}`, h);
    }
  });
  return b.build(b.dense(b.gap(h), outputDim));
}
