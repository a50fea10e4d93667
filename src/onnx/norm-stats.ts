/**
 * Normalization statistics of imported models at any weight vector (docs/methods.md §8, issue 15
 * item 4): after an interpolation or a merge, the BatchNorm running statistics (which are weights of
 * the imported layout, `bn1.running_mean`, `bn1.running_var`) are
 *
 * - `recompute` (default): reset and recomputed on a data pass exactly as PyTorch does with
 *   `momentum=None` after `reset_running_stats()`: the data go through the network in batches of
 *   {@link NormStatsOptions.batch} consecutive examples with every BatchNorm in training mode (each
 *   normalizes with its batch's mean and biased variance, so later layers see what they see in
 *   training), and each node's running mean and variance become the plain average over the batches
 *   of the batch mean and the unbiased batch variance (`var · m / (m − 1)`, m = values per channel in
 *   the batch). A last batch with one value per channel is left out (PyTorch refuses it);
 * - `copy`: kept as they are in the weight vector (interpolated or merged like every other weight);
 * - `repair` (REPAIR, Jordan et al. 2022): each channel's output is rescaled and shifted so that its
 *   mean and standard deviation on the data equal the same combination of the endpoints' (the
 *   endpoints evaluated as they are). For a BatchNormalization node, its running mean and variance
 *   are set so that its output Y = γ (X − m) / √(v + ε) + β has mean μ* and std σ*: with μ_X, s_X the
 *   mean and std of its input X under the (already repaired) upstream layers, √(v + ε) = |γ| s_X / σ*
 *   and m = μ_X − (μ* − β) √(v + ε) / γ (γ is rescaled only when that would make v < 0). For a
 *   network without normalization layers (as in the paper's MLP experiments), the pre-activation
 *   z = W x + b of each dense or convolutional layer with a bias that feeds an activation is rescaled
 *   per unit, z' = σ* (z − μ_z) / s_z + μ*, by changing that unit's weight row and bias only. Layers
 *   are repaired one at a time in graph order, each measured with every earlier one repaired.
 *   Means and stds are population statistics over all examples and positions of the channel.
 *
 * One onnxruntime session per architecture runs the graph with the BatchNorm inputs, outputs and the
 * repaired pre-activations as extra outputs; a second one runs the training-mode graph of `recompute`,
 * in which every BatchNormalization node is replaced by ReduceMean ops (its batch statistics, also
 * graph outputs) and a BatchNormalization on those.
 */

import ort from 'onnxruntime-node';
import type { TensorSlot } from '../model/layout.js';
import { ACTIVATIONS, type ImportedArchitecture } from './import-model.js';
import {
  decodeModel,
  encodeModel,
  type GraphProto,
  type NodeProto,
  OnnxModelError,
  proto,
  toNumber,
} from './proto.js';
import { openOnnxSession, weightFeeds } from './session.js';

/** How normalization statistics are set at an interpolated or merged weight vector. */
export type NormMode = 'recompute' | 'copy' | 'repair';

/** The modes, for option parsing. */
export const NORM_MODES: readonly NormMode[] = ['recompute', 'copy', 'repair'];

/** One BatchNormalization node of an imported graph and the layout slots of its four weights. */
export interface BatchNormNode {
  /** The prefix of its running mean's name (`block1.bn1.running_mean` → `block1.bn1`), else the node's scope. */
  readonly name: string;
  /** Its input X and output Y (graph values). */
  readonly input: string;
  readonly output: string;
  readonly scale: TensorSlot;
  readonly bias: TensorSlot;
  readonly mean: TensorSlot;
  readonly variance: TensorSlot;
  readonly epsilon: number;
  readonly channels: number;
}

/** A dense or convolutional layer with a bias whose output feeds an activation (REPAIR without BatchNorm). */
export interface AffineLayer {
  readonly name: string;
  /** The pre-activation value z (graph value). */
  readonly value: string;
  readonly weight: TensorSlot;
  /** The axis of the weight that indexes output units (Gemm transB=1, Conv: 0; MatMul, Gemm transB=0: 1). */
  readonly weightAxis: number;
  readonly bias: TensorSlot;
  /** Where the units sit in z: axis 1 (NCHW, [N, C]) or the last axis. */
  readonly channelAxis: 'second' | 'last';
  readonly channels: number;
}

/** Per-channel population mean and standard deviation of one value on the data. */
export interface ChannelMoments {
  readonly mean: Float64Array;
  readonly std: Float64Array;
}

/** Options of {@link NormStats}. */
export interface NormStatsOptions {
  /** Examples per batch of the `recompute` pass (default 128; a graph with a fixed batch size uses its own). */
  readonly batch?: number;
  /** Intra-op threads (default 1). */
  readonly threads?: number;
}

/** Rows per run of the evaluation passes. */
const CHUNK = 256;

function attr(node: NodeProto, name: string): NonNullable<NodeProto['attribute']>[number] | undefined {
  return node.attribute?.find((a) => a.name === name);
}

function scopeOf(node: NodeProto, fallback: string): string {
  const parts = (node.name ?? '').split('/').filter(Boolean);
  return parts.length > 1 ? parts.slice(0, -1).join('.') : fallback;
}

/** The BatchNormalization nodes and the repairable affine layers of an architecture, in graph order. */
export function normalizationLayers(architecture: ImportedArchitecture): {
  batchNorms: BatchNormNode[];
  affine: AffineLayer[];
} {
  const graph = decodeModel(architecture.bytes, 'imported model').graph as GraphProto;
  const slotOf = new Map<string, TensorSlot>();
  architecture.weightValues.forEach((v, k) => {
    slotOf.set(v, architecture.layout.tensors[k] as TensorSlot);
  });
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) for (const o of n.output ?? []) producer.set(o, n);
  const batchNorms: BatchNormNode[] = [];
  const affine: AffineLayer[] = [];
  (graph.node ?? []).forEach((node, i) => {
    if (node.opType === 'BatchNormalization') {
      const inputs = node.input ?? [];
      const slots = [1, 2, 3, 4].map((k) => slotOf.get(inputs[k] ?? ''));
      // Named after its weights when they carry the module path (`block2.shortcut.1.running_mean`).
      const meanName = slots[2]?.name ?? '';
      const name = meanName.endsWith('.running_mean')
        ? meanName.slice(0, -'.running_mean'.length)
        : scopeOf(node, `batchnorm${i}`);
      if (slots.some((s) => !s)) {
        throw new OnnxModelError(
          `BatchNormalization node '${node.name ?? name}': its scale, bias, mean and variance must be weights of the model (stored tensors)`,
        );
      }
      if (toNumber(attr(node, 'training_mode')?.i as number) !== 0 || (node.output?.length ?? 1) > 1) {
        throw new OnnxModelError(
          `BatchNormalization node '${node.name ?? name}' is exported in training mode; export the model in eval mode (torch.onnx.export(..., training=TrainingMode.PRESERVE) of model.eval())`,
        );
      }
      const [scale, bias, mean, variance] = slots as TensorSlot[];
      batchNorms.push({
        name,
        input: inputs[0] ?? '',
        output: node.output?.[0] ?? '',
        scale: scale as TensorSlot,
        bias: bias as TensorSlot,
        mean: mean as TensorSlot,
        variance: variance as TensorSlot,
        epsilon: attr(node, 'epsilon')?.f ?? 1e-5,
        channels: (scale as TensorSlot).size,
      });
      return;
    }
    if (!ACTIVATIONS.has(node.opType ?? '')) return;
    const value = node.input?.[0] ?? '';
    const layer = affineLayerOf(value, producer, slotOf);
    if (layer && !affine.some((a) => a.value === value)) affine.push(layer);
  });
  return { batchNorms, affine };
}

/** The affine layer with a bias that computes `value` (Gemm, Conv, or MatMul/Gemm/Conv + Add of a bias), if any. */
function affineLayerOf(
  value: string,
  producer: ReadonlyMap<string, NodeProto>,
  slotOf: ReadonlyMap<string, TensorSlot>,
): AffineLayer | undefined {
  const node = producer.get(value);
  if (!node) return undefined;
  const weightOf = (n: NodeProto) => {
    const w = slotOf.get(n.input?.[1] ?? '');
    if (!w) return undefined;
    if (n.opType === 'Conv' && w.shape.length >= 3) return { w, axis: 0, channelAxis: 'second' as const };
    if (n.opType === 'Gemm' && w.shape.length === 2) {
      if (toNumber(attr(n, 'transA')?.i as number) !== 0) return undefined;
      const transB = toNumber(attr(n, 'transB')?.i as number) !== 0;
      return { w, axis: transB ? 0 : 1, channelAxis: 'last' as const };
    }
    if (n.opType === 'MatMul' && w.shape.length === 2) return { w, axis: 1, channelAxis: 'last' as const };
    return undefined;
  };
  const name = scopeOf(node, value);
  if (node.opType === 'Gemm' || node.opType === 'Conv') {
    const found = weightOf(node);
    const bias = slotOf.get(node.input?.[2] ?? '');
    if (!found || !bias || bias.shape.length !== 1) return undefined;
    const channels = found.w.shape[found.axis] as number;
    if (bias.size !== channels) return undefined;
    return {
      name,
      value,
      weight: found.w,
      weightAxis: found.axis,
      bias,
      channelAxis: found.channelAxis,
      channels,
    };
  }
  if (node.opType === 'Add') {
    for (const k of [0, 1]) {
      const bias = slotOf.get(node.input?.[k] ?? '');
      const inner = producer.get(node.input?.[1 - k] ?? '');
      if (!bias || !inner || bias.shape.length !== 1) continue;
      const found = weightOf(inner);
      if (found?.channelAxis !== 'last' || (inner.opType === 'Gemm' && inner.input?.[2])) continue;
      const channels = found.w.shape[found.axis] as number;
      if (bias.size !== channels) continue;
      return { name, value, weight: found.w, weightAxis: found.axis, bias, channelAxis: 'last', channels };
    }
  }
  return undefined;
}

/** Running per-channel sums of a value (float64): count, Σx, Σx². */
class Moments {
  readonly sum: Float64Array;
  readonly sumSq: Float64Array;
  count = 0;
  constructor(readonly channels: number) {
    this.sum = new Float64Array(channels);
    this.sumSq = new Float64Array(channels);
  }

  /** Add `rows` examples of a value whose flattened per-example size is `cols`. */
  add(data: Float32Array, rows: number, cols: number, axis: 'second' | 'last'): void {
    const C = this.channels;
    const per = cols / C;
    if (!Number.isInteger(per)) {
      throw new OnnxModelError(`a value with ${cols} entries per example does not split into ${C} channels`);
    }
    for (let r = 0; r < rows; r++) {
      const o = r * cols;
      if (axis === 'second') {
        for (let c = 0; c < C; c++) {
          let s = 0;
          let q = 0;
          const b = o + c * per;
          for (let j = 0; j < per; j++) {
            const v = data[b + j] as number;
            s += v;
            q += v * v;
          }
          this.sum[c] = (this.sum[c] as number) + s;
          this.sumSq[c] = (this.sumSq[c] as number) + q;
        }
      } else {
        for (let j = 0; j < cols; j++) {
          const c = j % C;
          const v = data[o + j] as number;
          this.sum[c] = (this.sum[c] as number) + v;
          this.sumSq[c] = (this.sumSq[c] as number) + v * v;
        }
      }
    }
    this.count += rows * per;
  }

  result(): ChannelMoments {
    const mean = new Float64Array(this.channels);
    const std = new Float64Array(this.channels);
    for (let c = 0; c < this.channels; c++) {
      const m = (this.sum[c] as number) / this.count;
      mean[c] = m;
      std[c] = Math.sqrt(Math.max(0, (this.sumSq[c] as number) / this.count - m * m));
    }
    return { mean, std };
  }
}

/** A model whose graph also outputs `extra` values. */
function withOutputs(bytes: Uint8Array, extra: readonly string[]): Uint8Array {
  const model = decodeModel(bytes, 'imported model');
  const graph = model.graph as GraphProto;
  const have = new Set((graph.output ?? []).map((o) => o.name));
  for (const v of extra) {
    if (have.has(v)) continue;
    have.add(v);
    graph.output = [
      ...(graph.output ?? []),
      { name: v, type: { tensorType: { elemType: proto.TensorProto.DataType.FLOAT } } },
    ];
  }
  return encodeModel(model);
}

function int64Tensor(name: string, values: readonly number[]) {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  return {
    name,
    dims: [values.length],
    dataType: proto.TensorProto.DataType.INT64,
    rawData: new Uint8Array(data.buffer),
  };
}

/**
 * The training-mode graph of `recompute`: every BatchNormalization node k normalizes with its batch
 * statistics `__bn{k}_mean` and `__bn{k}_var` (ReduceMean over every axis but the channel axis 1;
 * biased variance, as PyTorch normalizes in training), which are graph outputs. `ranks` gives the
 * rank of each node's input.
 */
function trainingModeGraph(
  bytes: Uint8Array,
  nodes: readonly BatchNormNode[],
  ranks: readonly number[],
): Uint8Array {
  const model = decodeModel(bytes, 'imported model');
  const graph = model.graph as GraphProto;
  const opset = toNumber((model.opsetImport ?? []).find((o) => (o.domain ?? '') === '')?.version as number);
  const axesAsInput = opset >= 18;
  const byOutput = new Map(nodes.map((n, k) => [n.output, k]));
  const out: NodeProto[] = [];
  for (const node of graph.node ?? []) {
    const k = byOutput.get(node.output?.[0] ?? '');
    if (node.opType !== 'BatchNormalization' || k === undefined) {
      out.push(node);
      continue;
    }
    const bn = nodes[k] as BatchNormNode;
    const rank = ranks[k] as number;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const p = `__bn${k}`;
    const reduce = (input: string, output: string, keepdims: number): NodeProto => {
      const attribute: NonNullable<NodeProto['attribute']> = [
        { name: 'keepdims', type: proto.AttributeProto.AttributeType.INT, i: keepdims },
      ];
      if (!axesAsInput)
        attribute.push({ name: 'axes', type: proto.AttributeProto.AttributeType.INTS, ints: axes });
      return {
        opType: 'ReduceMean',
        name: `${p}/${output}`,
        input: axesAsInput ? [input, `${p}_axes`] : [input],
        output: [output],
        attribute,
      };
    };
    if (axesAsInput) graph.initializer = [...(graph.initializer ?? []), int64Tensor(`${p}_axes`, axes)];
    const inputs = node.input ?? [];
    out.push(
      reduce(bn.input, `${p}_mean`, 0),
      reduce(bn.input, `${p}_mean_kept`, 1),
      { opType: 'Sub', name: `${p}/Sub`, input: [bn.input, `${p}_mean_kept`], output: [`${p}_centred`] },
      { opType: 'Mul', name: `${p}/Mul`, input: [`${p}_centred`, `${p}_centred`], output: [`${p}_sq`] },
      reduce(`${p}_sq`, `${p}_var`, 0),
      {
        ...node,
        input: [bn.input, inputs[1] ?? '', inputs[2] ?? '', `${p}_mean`, `${p}_var`],
      },
    );
  }
  graph.node = out;
  const extra = nodes.flatMap((_, k) => [`__bn${k}_mean`, `__bn${k}_var`]);
  graph.output = [
    ...(graph.output ?? []),
    ...extra.map((name) => ({
      name,
      type: { tensorType: { elemType: proto.TensorProto.DataType.FLOAT } },
    })),
  ];
  return encodeModel(model);
}

/** One endpoint of a REPAIR target: its moments per repaired layer, and its coefficient. */
export interface RepairEndpoint {
  readonly moments: readonly ChannelMoments[];
  readonly coefficient: number;
}

/**
 * Normalization statistics of one imported architecture at any weight vector (see the module
 * comment). Create once per architecture; {@link NormStats.dispose} releases its sessions.
 */
export class NormStats {
  private training: ort.InferenceSession | undefined;

  private constructor(
    readonly architecture: ImportedArchitecture,
    readonly batchNorms: readonly BatchNormNode[],
    readonly affine: readonly AffineLayer[],
    private readonly session: ort.InferenceSession,
    private readonly options: Required<NormStatsOptions>,
  ) {}

  static async create(
    architecture: ImportedArchitecture,
    options: NormStatsOptions = {},
  ): Promise<NormStats> {
    const { batchNorms, affine } = normalizationLayers(architecture);
    const values = [...batchNorms.flatMap((b) => [b.input, b.output]), ...affine.map((a) => a.value)];
    const session = await openOnnxSession(withOutputs(architecture.bytes, values), options.threads ?? 1);
    const batch = options.batch ?? 128;
    if (!Number.isInteger(batch) || batch < 2) {
      throw new OnnxModelError(`the batch size of the statistics pass must be an integer ≥ 2, got ${batch}`);
    }
    return new NormStats(architecture, batchNorms, affine, session, {
      batch,
      threads: options.threads ?? 1,
    });
  }

  /** Whether the graph has BatchNormalization nodes. */
  get hasBatchNorm(): boolean {
    return this.batchNorms.length > 0;
  }

  /** The layers REPAIR rescales: every BatchNorm node, then (in a net without any) the affine layers. */
  get repairLayers(): number {
    return this.batchNorms.length > 0 ? this.batchNorms.length : this.affine.length;
  }

  private get features(): number {
    return this.architecture.inputShape.reduce((a, b) => a * b, 1);
  }

  private feeds(weights: Float32Array): Record<string, ort.Tensor> {
    return weightFeeds(this.architecture, weights);
  }

  private input(x: Float32Array, start: number, rows: number, fed: number): ort.Tensor {
    const f = this.features;
    const data = new Float32Array(fed * f);
    data.set(x.subarray(start * f, (start + rows) * f));
    return new ort.Tensor('float32', data, [fed, ...this.architecture.inputShape]);
  }

  private checkData(x: Float32Array, n: number): void {
    if (n < 1 || x.length !== n * this.features) {
      throw new OnnxModelError(
        `the statistics pass needs examples of [${this.architecture.inputShape.join(', ')}] = ${this.features} values (got ${n} examples, ${x.length} values)`,
      );
    }
  }

  /** Per-channel moments of graph values (eval mode) on n examples. */
  private async moments(
    weights: Float32Array,
    x: Float32Array,
    n: number,
    values: readonly { value: string; channels: number; axis: 'second' | 'last' }[],
  ): Promise<ChannelMoments[]> {
    this.checkData(x, n);
    const feeds = this.feeds(weights);
    const acc = values.map((v) => new Moments(v.channels));
    const fixed = this.architecture.batch;
    const chunk = fixed ?? CHUNK;
    const names = [...new Set(values.map((v) => v.value))];
    for (let start = 0; start < n; start += chunk) {
      const rows = Math.min(chunk, n - start);
      feeds[this.architecture.input] = this.input(x, start, rows, fixed ?? rows);
      const out = await this.session.run(feeds, names);
      values.forEach((v, i) => {
        const t = out[v.value] as ort.Tensor;
        const cols = t.dims.slice(1).reduce((a, b) => a * Number(b), 1);
        (acc[i] as Moments).add(t.data as Float32Array, rows, cols, v.axis);
      });
    }
    return acc.map((m) => m.result());
  }

  /**
   * `weights` with every BatchNorm's running mean and variance recomputed on the n examples of x as
   * PyTorch does with momentum=None (see the module comment). A graph without BatchNorm is returned
   * as a copy.
   */
  async recompute(weights: Float32Array, x: Float32Array, n: number): Promise<Float32Array> {
    const out = Float32Array.from(weights);
    if (this.batchNorms.length === 0) return out;
    this.checkData(x, n);
    const fixed = this.architecture.batch;
    const batch = fixed ?? this.options.batch;
    if (n < batch && fixed !== null) {
      throw new OnnxModelError(
        `the graph is fixed to batches of ${fixed}, the statistics pass has ${n} examples`,
      );
    }
    const training = await this.trainingSession(weights, x);
    const feeds = this.feeds(weights);
    const C = this.batchNorms.map((b) => b.channels);
    const meanSum = C.map((c) => new Float64Array(c));
    const varSum = C.map((c) => new Float64Array(c));
    let batches = 0;
    const names = this.batchNorms.flatMap((_, k) => [`__bn${k}_mean`, `__bn${k}_var`]);
    for (let start = 0; start < n; start += batch) {
      const rows = Math.min(batch, n - start);
      if (fixed !== null && rows < fixed) break;
      feeds[this.architecture.input] = this.input(x, start, rows, rows);
      const result = await training.run(feeds, [...names, this.architecture.output]);
      const spatial = this.spatial;
      // m values per channel in this batch: rows × spatial positions of the node's input.
      const usable = spatial.every((s) => rows * s > 1);
      if (!usable) break;
      this.batchNorms.forEach((bn, k) => {
        const m = rows * (spatial[k] as number);
        const bm = result[`__bn${k}_mean`]?.data as Float32Array;
        const bv = result[`__bn${k}_var`]?.data as Float32Array;
        const ms = meanSum[k] as Float64Array;
        const vs = varSum[k] as Float64Array;
        for (let c = 0; c < bn.channels; c++) {
          ms[c] = (ms[c] as number) + (bm[c] as number);
          vs[c] = (vs[c] as number) + ((bv[c] as number) * m) / (m - 1);
        }
      });
      batches++;
    }
    if (batches === 0)
      throw new OnnxModelError('the statistics pass has no batch with more than one value per channel');
    this.batchNorms.forEach((bn, k) => {
      const ms = meanSum[k] as Float64Array;
      const vs = varSum[k] as Float64Array;
      for (let c = 0; c < bn.channels; c++) {
        out[bn.mean.offset + c] = (ms[c] as number) / batches;
        out[bn.variance.offset + c] = (vs[c] as number) / batches;
      }
    });
    return out;
  }

  /** Spatial positions per channel of each BatchNorm input (set by the first training session). */
  private spatial: number[] = [];

  private async trainingSession(weights: Float32Array, x: Float32Array): Promise<ort.InferenceSession> {
    if (this.training) return this.training;
    // The ranks and sizes of the BatchNorm inputs, from one eval-mode run on one example.
    const feeds = this.feeds(weights);
    const fed = this.architecture.batch ?? 1;
    feeds[this.architecture.input] = this.input(x, 0, 1, fed);
    const out = await this.session.run(
      feeds,
      this.batchNorms.map((b) => b.input),
    );
    const dims = this.batchNorms.map((b) => (out[b.input] as ort.Tensor).dims.map(Number));
    this.batchNorms.forEach((b, k) => {
      const d = dims[k] as number[];
      if (d.length < 2 || d[1] !== b.channels) {
        throw new OnnxModelError(
          `BatchNormalization '${b.name}': input of shape [${d.join(', ')}] has no channel axis 1 of size ${b.channels}`,
        );
      }
    });
    this.spatial = dims.map((d) => d.slice(2).reduce((a, b) => a * b, 1));
    this.training = await openOnnxSession(
      trainingModeGraph(
        this.architecture.bytes,
        this.batchNorms,
        dims.map((d) => d.length),
      ),
      this.options.threads,
    );
    return this.training;
  }

  /** The values REPAIR matches, in repair order: BatchNorm outputs, or (without BatchNorm) affine pre-activations. */
  private repairTargets(): { value: string; channels: number; axis: 'second' | 'last' }[] {
    if (this.batchNorms.length > 0) {
      return this.batchNorms.map((b) => ({ value: b.output, channels: b.channels, axis: 'second' as const }));
    }
    return this.affine.map((a) => ({ value: a.value, channels: a.channels, axis: a.channelAxis }));
  }

  /**
   * The per-channel output moments of an endpoint (evaluated as it is) for REPAIR, on n examples:
   * BatchNorm outputs, or the pre-activations of the affine layers of a net without BatchNorm.
   */
  async endpointMoments(weights: Float32Array, x: Float32Array, n: number): Promise<ChannelMoments[]> {
    this.requireRepairLayers();
    return this.moments(weights, x, n, this.repairTargets());
  }

  private requireRepairLayers(): void {
    if (this.repairLayers === 0) {
      throw new OnnxModelError(
        'REPAIR needs normalization layers (BatchNormalization) or dense/convolutional layers with a bias before an activation; this graph has neither',
      );
    }
  }

  /**
   * REPAIR `merged`: each repaired layer's output channels get mean Σ_k c_k μ_k and std Σ_k c_k σ_k
   * of the endpoints' (see the module comment), layer by layer in graph order, measured on n
   * examples of x.
   */
  async repair(
    merged: Float32Array,
    endpoints: readonly RepairEndpoint[],
    x: Float32Array,
    n: number,
  ): Promise<Float32Array> {
    this.requireRepairLayers();
    const out = Float32Array.from(merged);
    const layers = this.repairTargets().length;
    for (const e of endpoints) {
      if (e.moments.length !== layers)
        throw new Error(`endpoint moments for ${e.moments.length} layers, expected ${layers}`);
    }
    const goal = (k: number) => {
      const C = (this.repairTargets()[k] as { channels: number }).channels;
      const mean = new Float64Array(C);
      const std = new Float64Array(C);
      for (const e of endpoints) {
        const m = e.moments[k] as ChannelMoments;
        for (let c = 0; c < C; c++) {
          mean[c] = (mean[c] as number) + e.coefficient * (m.mean[c] as number);
          std[c] = (std[c] as number) + e.coefficient * (m.std[c] as number);
        }
      }
      return { mean, std };
    };
    if (this.batchNorms.length > 0) {
      for (const [k, bn] of this.batchNorms.entries()) {
        const [input] = await this.moments(out, x, n, [
          { value: bn.input, channels: bn.channels, axis: 'second' },
        ]);
        repairBatchNorm(out, bn, input as ChannelMoments, goal(k));
      }
    } else {
      for (const [k, layer] of this.affine.entries()) {
        const [z] = await this.moments(out, x, n, [
          { value: layer.value, channels: layer.channels, axis: layer.channelAxis },
        ]);
        repairAffine(out, layer, z as ChannelMoments, goal(k));
      }
    }
    return out;
  }

  async dispose(): Promise<void> {
    await this.session.release();
    if (this.training) await this.training.release();
  }
}

/** Set a BatchNorm's statistics (and its scale where needed) so that its output has moments `goal`. */
function repairBatchNorm(
  w: Float32Array,
  bn: BatchNormNode,
  input: ChannelMoments,
  goal: ChannelMoments,
): void {
  for (let c = 0; c < bn.channels; c++) {
    const gamma = w[bn.scale.offset + c] as number;
    const beta = w[bn.bias.offset + c] as number;
    const sX = input.std[c] as number;
    const muX = input.mean[c] as number;
    const sigma = goal.std[c] as number;
    const mu = goal.mean[c] as number;
    if (!(sX > 0) || gamma === 0 || !(sigma > 0)) {
      // A constant channel: nothing to rescale; use its own statistics.
      w[bn.mean.offset + c] = muX;
      w[bn.variance.offset + c] = sX * sX;
      continue;
    }
    let r = (Math.abs(gamma) * sX) / sigma; // √(v + ε)
    let g = gamma;
    if (r * r < bn.epsilon) {
      r = Math.sqrt(bn.epsilon);
      g = (Math.sign(gamma) * sigma * r) / sX;
      w[bn.scale.offset + c] = g;
    }
    w[bn.variance.offset + c] = Math.max(0, r * r - bn.epsilon);
    w[bn.mean.offset + c] = muX - ((mu - beta) * r) / g;
  }
}

/** Rescale and shift each unit of an affine layer (its weight row and bias) so that z has moments `goal`. */
function repairAffine(w: Float32Array, layer: AffineLayer, z: ChannelMoments, goal: ChannelMoments): void {
  const shape = layer.weight.shape;
  const C = layer.channels;
  const a = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    const s = z.std[c] as number;
    a[c] = s > 0 ? (goal.std[c] as number) / s : 1;
    const shift = (goal.mean[c] as number) - (a[c] as number) * (z.mean[c] as number);
    const b = layer.bias.offset + c;
    w[b] = (a[c] as number) * (w[b] as number) + (s > 0 ? shift : 0);
  }
  // Scale the weight along its output axis.
  const before = shape.slice(0, layer.weightAxis).reduce((p, q) => p * q, 1);
  const after = shape.slice(layer.weightAxis + 1).reduce((p, q) => p * q, 1);
  for (let i = 0; i < before; i++) {
    for (let c = 0; c < C; c++) {
      const o = layer.weight.offset + (i * C + c) * after;
      const f = a[c] as number;
      for (let j = 0; j < after; j++) w[o + j] = (w[o + j] as number) * f;
    }
  }
}
