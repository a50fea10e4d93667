/**
 * The forward pass of a layer graph ({@link Net}: CNNs and ResNets) in the IR, for one run or for
 * R runs in lock-step.
 *
 * R runs share the input batch and keep their own weights. Image activations are [B, R·C, H, W]:
 * run r's channels are r·C … r·C + C − 1, so a convolution of R runs is one grouped convolution
 * (group R; the first layer, whose input is shared, is one convolution with the R kernels stacked),
 * BatchNorm's per-channel statistics are per run, and GroupNorm's groups never straddle runs. Flat
 * features are [R, B, F] and dense layers are batched MatMuls, as the MLP lock-step graph's. With
 * R = 1 this is the single-run graph.
 */
import type { ParameterLayout } from '../model/layout.js';
import type { Net, NetNode } from '../model/net.js';
import type { Graph, Tensor } from './ir/graph.js';

/**
 * How normalization layers compute their statistics: `train` from the batch (and the graph returns
 * BatchNorm's updated running statistics), `eval` from BatchNorm's running statistics.
 */
export type NormMode = 'train' | 'eval';

/** What {@link netForward} returns. */
export interface NetForward {
  /** [R, B, outputs]. */
  readonly logits: Tensor;
  /** Named hidden outputs ({@link Net.hidden}), each [B, R·C, H, W] or [R, B, F]. */
  readonly hidden: ReadonlyMap<string, Tensor>;
  /**
   * Train mode: the new value of every BatchNorm running statistic, by layout tensor index, [R, C]
   * (PyTorch's update with the unbiased batch variance).
   */
  readonly buffers: ReadonlyMap<number, Tensor>;
  /** Train mode: each BatchNorm's batch mean and biased batch variance, [R, C], by layer name. */
  readonly batchStats: ReadonlyMap<string, { readonly mean: Tensor; readonly variance: Tensor }>;
}

/**
 * The forward pass of `net` for `runs` runs on a shared batch `x` [B, inputDim].
 * `leaf(k)` is layout tensor k for every run, shaped [R, ...slot.shape].
 */
export function netForward(
  g: Graph,
  net: Net,
  layout: ParameterLayout,
  leaf: (k: number) => Tensor,
  x: Tensor,
  runs: number,
  mode: NormMode,
): NetForward {
  const R = runs;
  const B = x.node.shape[0] as number;
  const index = new Map(layout.tensors.map((t, k) => [t.name, k]));
  const tensor = (name: string): Tensor => {
    const k = index.get(name);
    if (k === undefined) throw new Error(`net: no tensor '${name}' in the layout`);
    return leaf(k);
  };
  /** A per-channel tensor [R, C] as [1, R·C, 1, 1]. */
  const perChannel = (t: Tensor): Tensor => {
    const [r, c] = t.node.shape as [number, number];
    return g.reshape(t, [1, r * c, 1, 1]);
  };
  const values: Tensor[] = [];
  const buffers = new Map<number, Tensor>();
  const batchStats = new Map<string, { mean: Tensor; variance: Tensor }>();
  const [c0, h0, w0] = net.image;
  values[0] = g.reshape(x, [B, c0, h0, w0]);
  const value = (id: number): Tensor => values[id] as Tensor;

  for (const node of net.nodes) {
    if (node.op === 'input') continue;
    values[node.id] = layer(node);
  }

  function layer(node: Exclude<NetNode, { op: 'input' }>): Tensor {
    switch (node.op) {
      case 'conv': {
        const w = tensor(`${node.name}.weight`);
        const stacked = g.reshape(w, [R * node.outChannels, node.inChannels, node.kernel, node.kernel]);
        const p = node.pad;
        const shared = node.input === 0;
        let y = g.conv(value(node.input), stacked, {
          strides: [node.stride, node.stride],
          pads: [p, p, p, p],
          group: shared ? 1 : R,
        });
        if (node.bias) y = g.add(y, perChannel(tensor(`${node.name}.bias`)));
        return y;
      }
      case 'norm':
        return norm(node);
      case 'relu':
        return g.relu(value(node.input));
      case 'pool': {
        let v = value(node.input);
        const [b, rc, h, w] = v.node.shape as [number, number, number, number];
        const s = node.size;
        const [ho, wo] = [node.shape[1] as number, node.shape[2] as number];
        if (ho * s !== h) v = g.slice(v, 0, ho * s, 2);
        if (wo * s !== w) v = g.slice(v, 0, wo * s, 3);
        const windows = g.reshape(v, [b, rc, ho, s, wo, s]);
        if (node.kind === 'avg') return g.mul(g.reduceSum(windows, [3, 5]), 1 / (s * s));
        // Each window's s² values on one axis, in row-major order: the first maximum is PyTorch's.
        const flat = g.reshape(g.transpose(windows, [0, 1, 2, 4, 3, 5]), [b, rc, ho, wo, s * s]);
        return g.reduceMax(flat, 4);
      }
      case 'gap': {
        const v = value(node.input);
        const [b, rc, h, w] = v.node.shape as [number, number, number, number];
        const mean = g.mul(g.reduceSum(v, [2, 3]), 1 / (h * w));
        return runsFirst(g.reshape(mean, [b, R, rc / R]));
      }
      case 'flatten': {
        const v = value(node.input);
        const f = node.shape[0] as number;
        return runsFirst(g.reshape(v, [B, R, f]));
      }
      case 'dense': {
        const w = tensor(`${node.name}.weight`);
        let y = g.matmul(value(node.input), g.transpose(w, [0, 2, 1]));
        if (node.bias) y = g.add(y, g.reshape(tensor(`${node.name}.bias`), [R, 1, node.outputs]));
        return y;
      }
      case 'add':
        return g.add(value(node.inputs[0]), value(node.inputs[1]));
    }
  }

  /** [B, R, F] → [R, B, F] (a reshape when R = 1). */
  function runsFirst(t: Tensor): Tensor {
    const [b, r, f] = t.node.shape as [number, number, number];
    return r === 1 ? g.reshape(t, [1, b, f]) : g.transpose(t, [1, 0, 2]);
  }

  function norm(node: Extract<NetNode, { op: 'norm' }>): Tensor {
    const v = value(node.input);
    const [b, rc, h, w] = v.node.shape as [number, number, number, number];
    const scale = perChannel(tensor(`${node.name}.weight`));
    const shift = perChannel(tensor(`${node.name}.bias`));
    const C = node.channels;
    if (node.kind !== 'batch') {
      const groups = R * node.groups;
      const grouped = g.reshape(v, [b, groups, (rc / groups) * h * w]);
      const n = (rc / groups) * h * w;
      const mean = g.mul(g.reduceSum(grouped, [2], true), 1 / n);
      const centered = g.sub(grouped, mean);
      const variance = g.mul(g.reduceSum(g.mul(centered, centered), [2], true), 1 / n);
      const normalized = g.reshape(g.div(centered, g.sqrt(g.add(variance, node.eps))), [b, rc, h, w]);
      return g.add(g.mul(normalized, scale), shift);
    }
    const meanName = `${node.name}.running_mean`;
    const varName = `${node.name}.running_var`;
    // Per-channel factors first, so that the [B, R·C, H, W] tensors see few operations.
    if (mode === 'eval') {
      const a = g.div(tensor(`${node.name}.weight`), g.sqrt(g.add(tensor(varName), node.eps)));
      const b = g.sub(tensor(`${node.name}.bias`), g.mul(tensor(meanName), a));
      return g.add(g.mul(v, perChannel(a)), perChannel(b));
    }
    const m = b * h * w;
    const mean = g.mul(g.reduceSum(v, [0, 2, 3], true), 1 / m);
    const centered = g.sub(v, mean);
    const variance = g.mul(g.reduceSum(g.mul(centered, centered), [0, 2, 3], true), 1 / m);
    const mu = g.reshape(mean, [R, C]);
    const sigma2 = g.reshape(variance, [R, C]);
    batchStats.set(node.name, { mean: mu, variance: sigma2 });
    const k = node.momentum;
    const unbiased = m > 1 ? m / (m - 1) : 1;
    buffers.set(index.get(meanName) as number, g.add(g.mul(tensor(meanName), 1 - k), g.mul(mu, k)));
    buffers.set(
      index.get(varName) as number,
      g.add(g.mul(tensor(varName), 1 - k), g.mul(sigma2, unbiased * k)),
    );
    const a = g.div(tensor(`${node.name}.weight`), g.sqrt(g.add(sigma2, node.eps)));
    return g.add(g.mul(centered, perChannel(a)), shift);
  }

  const hidden = new Map(net.hidden.map((h) => [h.name, value(h.node)]));
  return { logits: value(net.output), hidden, buffers, batchStats };
}
