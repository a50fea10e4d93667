/**
 * Permutation specs of imported ONNX graphs (docs/merging.md, "Permutation specs"; issue 15 item 2):
 * inferred from the graph ({@link inferPermutationSpec}), or read from a JSON file
 * ({@link readPermutationSpecFile}), and checked on the model ({@link checkPermutationSpec}): a
 * random permutation of every group must leave the logits unchanged.
 *
 * Inference walks the nodes in order (ONNX graphs are topologically sorted) and tracks, for every
 * value computed from the data input, the group (union-find) that permutes its channels:
 *
 * - `Conv` (group 1), `Gemm` and `MatMul` with a weight start a new group on their output axis
 *   (Conv, Gemm transB=1: axis 0 of the weight; MatMul and Gemm transB=0: axis 1, the exporter's
 *   transposed [in, out] layout) and take their input's group on the input axis; a depthwise
 *   `Conv` (group = channels) keeps its input's group;
 * - biases and per-channel weights of `Add`, `Sub`, `Mul`, `Div`, `PRelu`, `BatchNormalization`,
 *   `InstanceNormalization`, `LayerNormalization` and `GroupNormalization` (one group) take the
 *   group of the value on the axis that broadcasts against its channels (a size-1 axis is not
 *   permuted);
 * - element-wise activations, `Identity`, `Dropout`, pooling (`MaxPool`, `AveragePool`,
 *   `GlobalAveragePool`, …) pass the group through;
 * - `Flatten` (axis 1) and `Reshape` to [N, −1] of a channels-first value make the next dense
 *   layer's input a block permutation (block = its input length ÷ the channels);
 * - `Add` (or `Mul`, …) of two computed values merges their groups: a residual stream shares one;
 * - the model output (logits) is never permuted.
 *
 * Any other op on a value that carries a group stops that group: it is not permuted. Unless the
 * group also reaches the model output (which is never permuted anyway), that is refused with the
 * node's name and op: the graph needs a user spec.
 */
import { readFileSync } from 'node:fs';
import {
  applyPermutations,
  buildPermutationSpec,
  type HiddenPermutation,
  type PermutationAxis,
  type PermutationGroup,
  type PermutationSpec,
} from '../measure/align.js';
import { Rng } from '../rng/rng.js';
import { ACTIVATIONS, type ImportedModel } from './import-model.js';
import {
  decodeModel,
  dimsOf,
  type GraphProto,
  type NodeProto,
  OnnxModelError,
  type TensorProto,
  toNumber,
} from './proto.js';
import { ImportedSession } from './session.js';

/** Element-wise ops with one computed input that keep every channel where it is. */
const ELEMENTWISE: ReadonlySet<string> = new Set([
  ...[...ACTIVATIONS].filter((op) => op !== 'PRelu'),
  'ThresholdedRelu',
  'Identity',
  'Dropout',
  'Abs',
  'Neg',
  'Exp',
  'Log',
  'Sqrt',
  'Reciprocal',
  'Erf',
  'Sin',
  'Cos',
  'Clip',
]);

/** Pooling ops: channels first, each channel pooled on its own. */
const POOLING: ReadonlySet<string> = new Set([
  'MaxPool',
  'AveragePool',
  'LpPool',
  'GlobalAveragePool',
  'GlobalMaxPool',
  'GlobalLpPool',
]);

/** Binary element-wise ops: a per-channel weight, or two computed values sharing a group. */
const BINARY: ReadonlySet<string> = new Set(['Add', 'Sub', 'Mul', 'Div', 'Max', 'Min']);

/** Ops whose input 0 is normalized and whose weight inputs are per channel. */
const NORMALIZATION: ReadonlySet<string> = new Set([
  'BatchNormalization',
  'InstanceNormalization',
  'LayerNormalization',
  'GroupNormalization',
]);

/** Why a group is not permuted. */
type Stop = { readonly kind: 'output' } | { readonly kind: 'op'; readonly node: string; readonly op: string };

/** Union-find over groups with their size, first layer and the reasons they are not permuted. */
class Groups {
  private readonly parent: number[] = [];
  readonly size: number[] = [];
  readonly name: string[] = [];
  private readonly stops = new Map<number, Stop[]>();

  create(name: string, size: number): number {
    const g = this.parent.length;
    this.parent.push(g);
    this.size.push(size);
    this.name.push(name);
    return g;
  }

  find(g: number): number {
    let r = g;
    while (this.parent[r] !== r) r = this.parent[r] as number;
    while (this.parent[g] !== r) {
      const next = this.parent[g] as number;
      this.parent[g] = r;
      g = next;
    }
    return r;
  }

  union(a: number, b: number, node: NodeProto): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    const [root, child] = ra < rb ? [ra, rb] : [rb, ra];
    this.parent[child] = root;
    const moved = this.stops.get(child) ?? [];
    if (moved.length > 0) this.stops.set(root, [...(this.stops.get(root) ?? []), ...moved]);
    if (this.size[root] !== this.size[child]) {
      this.stop(root, {
        kind: 'op',
        node: node.name ?? '',
        op: `${node.opType} of ${this.size[root]} and ${this.size[child]} channels`,
      });
    }
  }

  stop(g: number, why: Stop): void {
    const r = this.find(g);
    this.stops.set(r, [...(this.stops.get(r) ?? []), why]);
  }

  stopsOf(g: number): readonly Stop[] {
    return this.stops.get(this.find(g)) ?? [];
  }
}

/** What a computed value carries: null (not permuted) or a group and where its channels sit. */
type Carried = null | {
  readonly group: number;
  /** Channels on the last axis (Gemm, MatMul outputs) rather than axis 1 (Conv outputs, NCHW). */
  readonly last: boolean;
  /** The rank of the value, when known. */
  readonly rank: number | undefined;
  /** A flattened [N, C·H·W] value: a dense input axis takes the group in blocks. */
  readonly flat: boolean;
  /** Computed by an op the group cannot be permuted through (the group is stopped; layout unknown). */
  readonly opaque?: boolean;
};

function attrInt(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return a ? toNumber(a.i as number) : fallback;
}

/** The scope of a node (`/block1/conv1/Conv` → `block1.conv1`), else its name or op and index. */
function layerName(node: NodeProto, index: number): string {
  const parts = (node.name ?? '').split('/').filter(Boolean);
  if (parts.length > 1) return parts.slice(0, -1).join('.');
  return node.name || `${(node.opType ?? 'op').toLowerCase()}${index}`;
}

/**
 * Infer the permutation spec of an imported model from its graph (see the module comment). The
 * spec names the imported layout's tensors; its `hidden` lists the hidden outputs whose channels a
 * group permutes. Throws an {@link OnnxModelError} naming the node and op where a group meets an op
 * it cannot be permuted through. Not checked on data: see {@link checkPermutationSpec}.
 */
export function inferPermutationSpec(model: ImportedModel): PermutationSpec {
  const arch = model.architecture;
  const graph = decodeModel(arch.bytes, model.source).graph as GraphProto;
  const slotOf = new Map(
    arch.weightValues.map((v, k) => [v, arch.layout.tensors[k] as (typeof arch.layout.tensors)[number]]),
  );
  const constants = new Map<string, TensorProto>();
  for (const t of graph.initializer ?? []) constants.set(t.name ?? '', t);
  const producer = new Map<string, NodeProto>();
  for (const n of graph.node ?? []) {
    for (const o of n.output ?? []) producer.set(o, n);
    const value = n.attribute?.find((a) => a.name === 'value')?.t;
    if (n.opType === 'Constant' && value && n.output?.[0]) constants.set(n.output[0], value);
  }
  const groups = new Groups();
  const carried = new Map<string, Carried>([[arch.input, null]]);
  const pending: { tensor: string; axis: number; group: number; flat: boolean }[] = [];

  const on = (tensor: string, axis: number, c: Carried) => {
    if (c) pending.push({ tensor, axis, group: c.group, flat: c.flat });
  };
  /** The axis of a weight of shape `shape` that broadcasts against the channels of `c` (or null). */
  const channelAxisOf = (shape: readonly number[], c: NonNullable<Carried>): number | null => {
    const k = shape.length;
    let axis: number;
    if (c.last || c.flat) axis = k - 1;
    else if (c.rank === undefined) return null;
    else axis = 1 - (c.rank - k);
    if (axis < 0 || axis >= k || shape[axis] === 1) return null;
    return axis;
  };
  /** A group stops at `node`; the op's outputs carry it on (not permuted). */
  const opaque = (node: NodeProto, inputs: Carried[]) => {
    const live = inputs.filter((c): c is NonNullable<Carried> => c !== null);
    for (const c of live) groups.stop(c.group, { kind: 'op', node: node.name ?? '', op: node.opType ?? '' });
    for (let i = 1; i < live.length; i++)
      groups.union((live[0] as NonNullable<Carried>).group, (live[i] as NonNullable<Carried>).group, node);
    const out: Carried = live[0]
      ? { group: live[0].group, last: false, rank: undefined, flat: false, opaque: true }
      : null;
    for (const o of node.output ?? []) if (o) carried.set(o, out);
  };

  (graph.node ?? []).forEach((node, index) => {
    const op = node.opType ?? '';
    const ins = node.input ?? [];
    const out = node.output?.[0] ?? '';
    const computed = ins.filter((v) => carried.has(v));
    if (computed.length === 0 || op === 'Shape' || op === 'Size') return; // constants and shapes
    const x = carried.get(ins[0] ?? '');
    const xIsComputed = carried.has(ins[0] ?? '');
    const weight = (i: number) => slotOf.get(ins[i] ?? '');
    const set = (c: Carried) => carried.set(out, c);
    if (op === 'Conv' && xIsComputed && weight(1) && (!ins[2] || weight(2)) && computed.length === 1) {
      const w = weight(1) as NonNullable<ReturnType<typeof weight>>;
      const bias = weight(2);
      const g = attrInt(node, 'group', 1);
      const rank = w.shape.length;
      if (x && !x.opaque && (x.last || x.flat)) return opaque(node, [x ?? null]);
      if (g === 1) {
        on(w.name, 1, x ?? null);
        const c = {
          group: groups.create(layerName(node, index), w.shape[0] as number),
          last: false,
          rank,
          flat: false,
        };
        on(w.name, 0, c);
        if (bias) on(bias.name, 0, c);
        return set(c);
      }
      if (w.shape[1] === 1 && g === w.shape[0]) {
        // Depthwise: channel i of the output is channel i of the input.
        if (x) {
          on(w.name, 0, x);
          if (bias) on(bias.name, 0, x);
        }
        return set(x ? { ...x, rank } : null);
      }
      return opaque(node, [x ?? null]);
    }
    if ((op === 'Gemm' || op === 'MatMul') && xIsComputed && weight(1) && computed.length === 1) {
      const w = weight(1) as NonNullable<ReturnType<typeof weight>>;
      const bias = op === 'Gemm' ? weight(2) : undefined;
      if (op === 'Gemm' && (attrInt(node, 'transA', 0) !== 0 || (ins[2] && !bias)))
        return opaque(node, [x ?? null]);
      if (w.shape.length !== 2) return opaque(node, [x ?? null]);
      if (x && !x.opaque && !x.last && !x.flat && x.rank !== 2) return opaque(node, [x]);
      const outAxis = op === 'Gemm' && attrInt(node, 'transB', 0) === 1 ? 0 : 1;
      on(w.name, 1 - outAxis, x ?? null);
      const rank = op === 'Gemm' ? 2 : x?.rank;
      const c = {
        group: groups.create(layerName(node, index), w.shape[outAxis] as number),
        last: true,
        rank,
        flat: false,
      };
      on(w.name, outAxis, c);
      if (bias) {
        const axis = channelAxisOf(bias.shape, c);
        if (axis !== null) on(bias.name, axis, c);
      }
      return set(c);
    }
    if (ELEMENTWISE.has(op) && computed.length === 1 && xIsComputed) {
      for (const o of node.output ?? []) if (o) carried.set(o, null);
      return set(x ?? null);
    }
    if (op === 'PRelu' && computed.length === 1 && xIsComputed && weight(1)) {
      const w = weight(1) as NonNullable<ReturnType<typeof weight>>;
      if (x) {
        const axis = channelAxisOf(w.shape, x);
        if (axis !== null) on(w.name, axis, x);
      }
      return set(x ?? null);
    }
    if (POOLING.has(op) && computed.length === 1 && xIsComputed) {
      if (x && (x.last || x.flat)) return opaque(node, [x]);
      for (const o of node.output ?? []) if (o) carried.set(o, null);
      return set(x ?? null);
    }
    if (NORMALIZATION.has(op) && computed.length === 1 && xIsComputed) {
      const params = ins.slice(1).filter((v) => v !== '');
      if (params.some((v) => !slotOf.has(v))) return opaque(node, [x ?? null]);
      if (x && op === 'GroupNormalization' && attrInt(node, 'num_groups', 1) > 1) {
        throw new OnnxModelError(
          `${model.source}: node '${node.name ?? ''}' (GroupNormalization) has ${attrInt(node, 'num_groups', 1)} groups; permuting channels across groups changes the function, so no permutation spec is inferred (pass one with --perm-spec)`,
        );
      }
      if (x) {
        for (const v of params) {
          const slot = slotOf.get(v) as NonNullable<ReturnType<typeof weight>>;
          const axis = op === 'LayerNormalization' ? channelAxisOf(slot.shape, x) : 0;
          if (axis !== null) on(slot.name, axis, x);
        }
      }
      for (const o of node.output ?? []) if (o) carried.set(o, null);
      return set(x ?? null);
    }
    if (BINARY.has(op) && ins.length === 2) {
      const [c0, c1] = [carried.get(ins[0] as string), carried.get(ins[1] as string)];
      if (computed.length === 2) {
        if (c0 && c1) {
          groups.union(c0.group, c1.group, node);
          return set(c0);
        }
        if (c0 || c1) {
          // A permuted value combined with an unpermuted one: neither can be permuted.
          return opaque(node, [c0 ?? null, c1 ?? null]);
        }
        return set(null);
      }
      const c = (c0 ?? c1) as Carried | undefined;
      const other = carried.has(ins[0] as string) ? (ins[1] as string) : (ins[0] as string);
      const slot = slotOf.get(other);
      if (!c) return set(null);
      const shape = slot ? slot.shape : dimsOf(constants.get(other) ?? {});
      const axis = channelAxisOf(shape, c);
      if (axis !== null) {
        if (!slot) return opaque(node, [c]); // a per-channel constant cannot be permuted
        on(slot.name, axis, c);
      }
      return set(c);
    }
    if ((op === 'Flatten' || op === 'Reshape') && xIsComputed && computed.length === 1) {
      const toFlat =
        op === 'Flatten'
          ? attrInt(node, 'axis', 1) === 1
          : reshapeRank(ins[1] ?? '', constants, producer) === 2;
      if (!toFlat) return opaque(node, [x ?? null]);
      if (!x) return set(null);
      if (x.last && x.rank !== 2) return opaque(node, [x]);
      if (x.last || x.flat) return set(x);
      return set({ group: x.group, last: false, rank: 2, flat: true });
    }
    return opaque(
      node,
      computed.map((v) => carried.get(v) ?? null),
    );
  });

  // A weight read by two nodes (tied) has one permutation per axis: their groups merge.
  const axisGroup = new Map<string, number>();
  for (const p of pending) {
    const key = `${p.tensor}:${p.axis}`;
    const first = axisGroup.get(key);
    if (first === undefined) axisGroup.set(key, p.group);
    else groups.union(first, p.group, { name: p.tensor, opType: 'tied weight' });
  }
  const hiddenValues = new Set(arch.hidden.map((h) => h.value));
  for (const o of graph.output ?? []) {
    const c = carried.get(o.name ?? '');
    if (c && (o.name === arch.output || !hiddenValues.has(o.name ?? '')))
      groups.stop(c.group, { kind: 'output' });
  }
  // Groups stopped by an op only (not also by the output) are refused.
  const roots = new Set(pending.map((p) => groups.find(p.group)));
  for (const r of [...roots].sort((p, q) => p - q)) {
    const stops = groups.stopsOf(r);
    if (stops.length === 0 || stops.some((s) => s.kind === 'output')) continue;
    const s = stops[0] as Extract<Stop, { kind: 'op' }>;
    throw new OnnxModelError(
      `${model.source}: cannot infer a permutation spec: the channels of '${groups.name[r]}' reach node '${s.node}' (${s.op}), an op twinscope cannot permute through; pass a spec with --perm-spec (docs/merging.md, "Permutation specs")`,
    );
  }
  const index = new Map<number, number>();
  const perms: { name: string; size: number; axes: PermutationAxis[] }[] = [];
  const slots = new Map(arch.layout.tensors.map((t) => [t.name, t]));
  for (const p of pending) {
    const r = groups.find(p.group);
    if (groups.stopsOf(r).length > 0) continue;
    let k = index.get(r);
    if (k === undefined) {
      k = perms.length;
      index.set(r, k);
      perms.push({ name: groups.name[r] as string, size: groups.size[r] as number, axes: [] });
    }
    const g = perms[k] as { name: string; size: number; axes: PermutationAxis[] };
    const dim = slots.get(p.tensor)?.shape[p.axis] as number;
    const block = dim / g.size;
    if (!Number.isInteger(block) || (!p.flat && block !== 1)) {
      throw new OnnxModelError(
        `${model.source}: cannot infer a permutation spec: axis ${p.axis} of '${p.tensor}' has ${dim} entries, but '${g.name}' permutes ${g.size} channels`,
      );
    }
    if (g.axes.some((a) => a.tensor === p.tensor && a.axis === p.axis)) continue;
    g.axes.push(block === 1 ? { tensor: p.tensor, axis: p.axis } : { tensor: p.tensor, axis: p.axis, block });
  }
  const hidden: HiddenPermutation[] = [];
  for (const h of arch.hidden) {
    const c = carried.get(h.value);
    const k = c ? index.get(groups.find(c.group)) : undefined;
    if (c && k !== undefined)
      hidden.push(c.last ? { name: h.name, perm: k, channelsLast: true } : { name: h.name, perm: k });
  }
  try {
    return buildPermutationSpec(perms as PermutationGroup[], arch.layout, hidden);
  } catch (e) {
    throw new OnnxModelError(`${model.source}: cannot infer a permutation spec: ${(e as Error).message}`);
  }
}

/** The rank of a Reshape's target shape: a constant's length, or the inputs of the Concat that builds it. */
function reshapeRank(
  value: string,
  constants: ReadonlyMap<string, TensorProto>,
  producer: ReadonlyMap<string, NodeProto>,
): number | undefined {
  const t = constants.get(value);
  if (t) return dimsOf(t)[0];
  const node = producer.get(value);
  if (node?.opType === 'Concat') return node.input?.length;
  return undefined;
}

/** Options of {@link checkPermutationSpec}. */
export interface CheckSpecOptions {
  /** Random examples the logits are compared on (default 8). */
  readonly examples?: number;
  /** Seed of the permutations and examples (default 0). */
  readonly seed?: number;
  /** Largest logit change allowed, relative to the largest logit (default 1e-4: float32 rounding). */
  readonly tolerance?: number;
  /** Reuse an open session on the model's architecture (else one is opened and closed). */
  readonly session?: ImportedSession;
}

function randomPerms(spec: PermutationSpec, rng: ReturnType<Rng['stream']>, only?: number): Int32Array[] {
  return spec.perms.map((g, k) =>
    only === undefined || only === k
      ? Int32Array.from(rng.permutation(g.size))
      : Int32Array.from({ length: g.size }, (_, i) => i),
  );
}

/**
 * Check a permutation spec on the model: permute its weights by random permutations of every group
 * and confirm the logits on random inputs do not change beyond float32 rounding. A spec that fails
 * is refused ({@link OnnxModelError}) naming the offending tensor: a tensor axis whose removal from
 * its group makes the check pass, or one missing from a group, else the first group that fails.
 */
export async function checkPermutationSpec(
  model: ImportedModel,
  spec: PermutationSpec,
  options: CheckSpecOptions = {},
): Promise<void> {
  if (spec.perms.length === 0) return;
  const arch = model.architecture;
  const n = options.examples ?? 8;
  const tolerance = options.tolerance ?? 1e-4;
  const rng = Rng.fromSeed(options.seed ?? 0).stream('perm-spec-check');
  const features = arch.inputShape.reduce((p, q) => p * q, 1);
  const x = new Float32Array(n * features);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal();
  const session = options.session ?? (await ImportedSession.create(arch));
  try {
    const base = (await session.logits(model.weights, x, n)).data;
    const scale = Math.max(1e-6, ...Array.from(base, Math.abs));
    const changes = async (s: PermutationSpec, perms: Int32Array[]): Promise<number> => {
      const z = (await session.logits(applyPermutations(model.weights, arch.layout, perms, s), x, n)).data;
      let worst = 0;
      for (let i = 0; i < z.length; i++)
        worst = Math.max(worst, Math.abs((z[i] as number) - (base[i] as number)));
      return worst / scale;
    };
    if ((await changes(spec, randomPerms(spec, rng))) <= tolerance) return;
    // Find the group that fails, then the tensor axis.
    for (let k = 0; k < spec.perms.length; k++) {
      const g = spec.perms[k] as PermutationGroup;
      const perms = randomPerms(spec, rng, k);
      const worst = await changes(spec, perms);
      if (worst <= tolerance) continue;
      const only = (axes: PermutationAxis[]) => buildPermutationSpec([{ ...g, axes }], arch.layout);
      const single = perms.slice(k, k + 1);
      for (const [i, a] of g.axes.entries()) {
        const without = g.axes.filter((_, j) => j !== i);
        if ((await changes(only(without), single)) <= tolerance) {
          throw new OnnxModelError(
            `${model.source}: the permutation spec is wrong: axis ${a.axis} of '${a.tensor}' is not permuted with '${g.name}' (permuting it changes the logits by ${worst.toPrecision(3)} of their scale)`,
          );
        }
      }
      const taken = new Set(spec.perms.flatMap((p) => p.axes.map((a) => `${a.tensor}:${a.axis}`)));
      for (const t of arch.layout.tensors) {
        for (const [axis, dim] of t.shape.entries()) {
          if (taken.has(`${t.name}:${axis}`) || dim % g.size !== 0) continue;
          const block = dim / g.size;
          const extra = block === 1 ? { tensor: t.name, axis } : { tensor: t.name, axis, block };
          if ((await changes(only([...g.axes, extra]), single)) <= tolerance) {
            throw new OnnxModelError(
              `${model.source}: the permutation spec is wrong: axis ${axis} of '${t.name}' is missing from '${g.name}' (without it a permutation changes the logits by ${worst.toPrecision(3)} of their scale)`,
            );
          }
        }
      }
      throw new OnnxModelError(
        `${model.source}: the permutation spec is wrong: permuting '${g.name}' (${g.axes.map((a) => `${a.tensor}[${a.axis}]`).join(', ')}) changes the logits by ${worst.toPrecision(3)} of their scale; first tensor '${g.axes[0]?.tensor}'`,
      );
    }
    throw new OnnxModelError(
      `${model.source}: the permutation spec is wrong: each group alone keeps the logits, all together change them`,
    );
  } finally {
    if (!options.session) await session.dispose();
  }
}

/** The JSON of a user permutation spec (docs/merging.md, "Permutation specs"). */
export interface PermutationSpecJson {
  perms: { name: string; axes: { tensor: string; axis: number; block?: number }[] }[];
  hidden?: { name: string; perm: string; channelsLast?: boolean }[];
}

/**
 * A permutation spec from its JSON form for `model`: `{"perms": [{"name", "axes": [{"tensor",
 * "axis", "block"?}]}], "hidden"?: [{"name", "perm", "channelsLast"?}]}` (each group's size is
 * its first axis's length ÷ block). Errors ({@link OnnxModelError}, exit code 2) name the field.
 */
export function parsePermutationSpec(json: unknown, model: ImportedModel, source: string): PermutationSpec {
  const bad = (field: string, what: string) => new OnnxModelError(`${source}: ${field}: ${what}`);
  const layout = model.architecture.layout;
  const slots = new Map(layout.tensors.map((t) => [t.name, t]));
  const obj = json as Partial<PermutationSpecJson> | null;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    throw bad('spec', 'expected an object with "perms"');
  for (const key of Object.keys(obj)) {
    if (key !== 'perms' && key !== 'hidden') throw bad(key, 'unknown field (expected "perms" and "hidden")');
  }
  if (!Array.isArray(obj.perms)) throw bad('perms', 'expected a list of permutation groups');
  const names = new Map<string, number>();
  const perms: PermutationGroup[] = obj.perms.map((g, k) => {
    const at = `perms[${k}]`;
    if (g === null || typeof g !== 'object') throw bad(at, 'expected an object with "name" and "axes"');
    if (typeof g.name !== 'string' || g.name === '') throw bad(`${at}.name`, 'expected a non-empty string');
    if (names.has(g.name)) throw bad(`${at}.name`, `'${g.name}' is used twice`);
    names.set(g.name, k);
    if (!Array.isArray(g.axes) || g.axes.length === 0) throw bad(`${at}.axes`, 'expected a non-empty list');
    let size = 0;
    const axes = g.axes.map((a, i) => {
      const f = `${at}.axes[${i}]`;
      if (a === null || typeof a !== 'object') throw bad(f, 'expected {"tensor", "axis", "block"?}');
      const slot = slots.get(a.tensor);
      if (!slot) {
        throw bad(
          `${f}.tensor`,
          `the model has no tensor '${String(a.tensor)}' (it has ${layout.tensors.map((t) => t.name).join(', ')})`,
        );
      }
      if (!Number.isInteger(a.axis) || a.axis < 0 || a.axis >= slot.shape.length) {
        throw bad(`${f}.axis`, `'${slot.name}' [${slot.shape}] has no axis ${String(a.axis)}`);
      }
      const block = a.block ?? 1;
      if (!Number.isInteger(block) || block < 1)
        throw bad(`${f}.block`, `expected a positive integer, got ${String(a.block)}`);
      const dim = slot.shape[a.axis] as number;
      if (i === 0) size = dim / block;
      if (!Number.isInteger(size) || dim !== size * block) {
        throw bad(
          f,
          `axis ${a.axis} of '${slot.name}' [${slot.shape}] does not hold ${size} units of ${block}`,
        );
      }
      return block === 1 ? { tensor: a.tensor, axis: a.axis } : { tensor: a.tensor, axis: a.axis, block };
    });
    return { name: g.name, size, axes };
  });
  const hiddenNames = new Set(model.architecture.hidden.map((h) => h.name));
  if (obj.hidden !== undefined && !Array.isArray(obj.hidden)) throw bad('hidden', 'expected a list');
  const hidden: HiddenPermutation[] = (obj.hidden ?? []).map((h, i) => {
    const f = `hidden[${i}]`;
    if (h === null || typeof h !== 'object' || !hiddenNames.has(h.name)) {
      throw bad(
        `${f}.name`,
        `the model has no hidden output '${String(h?.name)}' (it has ${[...hiddenNames].join(', ')})`,
      );
    }
    const perm = names.get(h.perm);
    if (perm === undefined) throw bad(`${f}.perm`, `no permutation named '${String(h.perm)}'`);
    return h.channelsLast ? { name: h.name, perm, channelsLast: true } : { name: h.name, perm };
  });
  try {
    return buildPermutationSpec(perms, layout, hidden);
  } catch (e) {
    throw new OnnxModelError(`${source}: ${(e as Error).message}`);
  }
}

/** Read a user permutation spec file for `model` ({@link parsePermutationSpec}). */
export function readPermutationSpecFile(path: string, model: ImportedModel): PermutationSpec {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OnnxModelError(
      `${path}: ${code === 'ENOENT' ? 'no such file' : `not a JSON file (${(e as Error).message})`}`,
    );
  }
  return parsePermutationSpec(json, model, path);
}

/** A permutation spec in its JSON form (the inverse of {@link parsePermutationSpec}). */
export function permutationSpecJson(spec: PermutationSpec): PermutationSpecJson {
  return {
    perms: spec.perms.map((g) => ({ name: g.name, axes: g.axes.map((a) => ({ ...a })) })),
    hidden: (spec.hidden ?? []).map((h) => ({
      name: h.name,
      perm: spec.perms[h.perm]?.name as string,
      ...(h.channelsLast && { channelsLast: true }),
    })),
  };
}
