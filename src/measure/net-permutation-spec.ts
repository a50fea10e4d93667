/**
 * Permutation specs of twinscope's layer graphs (CNNs, ResNets; docs/methods.md §7.3): which tensor
 * axes share a permutation of channels or hidden units, read off the {@link Net}.
 *
 * Every conv and dense output starts a group (its weight's axis 0 and its bias). A norm (scale,
 * shift, and BatchNorm's running mean and variance), a ReLU and a pooling pass the group through;
 * a residual `add` merges the groups of its two inputs (union-find), so a residual stream — the
 * stem, every block output and every projection shortcut that joins it — shares one permutation,
 * as in git-re-basin's ResNet spec. A conv or dense layer's input axis takes the group of its input:
 * after a flatten of [C, H, W] it is a block permutation (H·W input columns per channel), after a
 * global average pooling a plain one. The logits are never permuted.
 */

import type { ModelGraphSpec } from '../model/graph.js';
import type { ParameterLayout } from '../model/layout.js';
import type { Net } from '../model/net.js';
import {
  buildPermutationSpec,
  type HiddenPermutation,
  mlpPermutationSpec,
  type PermutationAxis,
  type PermutationGroup,
  type PermutationSpec,
} from './align.js';

/** Union-find over group ids, with frozen (never permuted) roots. */
class Groups {
  private readonly parent: number[] = [];
  private readonly frozen = new Set<number>();

  create(): number {
    this.parent.push(this.parent.length);
    return this.parent.length - 1;
  }

  find(g: number): number {
    let r = g;
    while (this.parent[r] !== r) r = this.parent[r] as number;
    let x = g;
    while (this.parent[x] !== r) {
      const next = this.parent[x] as number;
      this.parent[x] = r;
      x = next;
    }
    return r;
  }

  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    // The earlier group stays the root: groups are named and ordered by their first layer.
    const [root, child] = ra < rb ? [ra, rb] : [rb, ra];
    this.parent[child] = root;
    if (this.frozen.has(child)) this.frozen.add(root);
  }

  freeze(g: number): void {
    this.frozen.add(this.find(g));
  }

  isFrozen(g: number): boolean {
    return this.frozen.has(this.find(g));
  }
}

/** The group of a node's output: a group id and the entries per channel of its flat form. */
interface Carried {
  readonly group: number;
  /** H·W after a flatten of [C, H, W]; 1 otherwise. */
  readonly block: number;
}

/**
 * The permutation spec of a {@link Net} over its layout's tensor names (see the module comment).
 * Groups are ordered and named by their first layer (`conv0`, `dense1`); `hidden` maps each of the
 * net's hidden outputs to the group of its channels. Throws for a GroupNorm with more than one
 * group (a permutation across its groups changes which channels share statistics, and so the
 * function) and for a layout that does not match the net.
 */
export function netPermutationSpec(net: Net, layout: ParameterLayout): PermutationSpec {
  const groups = new Groups();
  const carried = new Map<number, Carried | null>();
  const pending: { axis: PermutationAxis; group: number }[] = [];
  const created: { group: number; name: string; size: number }[] = [];
  const slots = new Set(layout.tensors.map((t) => t.name));
  const on = (tensor: string, axis: number, c: Carried | null | undefined) => {
    if (!slots.has(tensor)) throw new Error(`netPermutationSpec: the layout has no tensor '${tensor}'`);
    if (c)
      pending.push({
        axis: c.block === 1 ? { tensor, axis } : { tensor, axis, block: c.block },
        group: c.group,
      });
  };
  const start = (name: string, size: number): Carried => {
    const group = groups.create();
    created.push({ group, name, size });
    return { group, block: 1 };
  };
  for (const node of net.nodes) {
    switch (node.op) {
      case 'input':
        carried.set(node.id, null);
        break;
      case 'conv':
      case 'dense': {
        const input = carried.get(node.input);
        const out = start(node.name, node.op === 'conv' ? node.outChannels : node.outputs);
        on(`${node.name}.weight`, 0, out);
        on(`${node.name}.weight`, 1, input);
        if (node.bias) on(`${node.name}.bias`, 0, out);
        carried.set(node.id, out);
        break;
      }
      case 'norm': {
        const input = carried.get(node.input) ?? null;
        if (input && node.kind === 'group' && node.groups > 1) {
          throw new Error(
            `netPermutationSpec: ${node.name} is a GroupNorm with ${node.groups} groups; permuting its ${node.channels} channels across groups changes the function, so the net has no channel permutation spec (use norm "layer" or "batch")`,
          );
        }
        for (const t of ['weight', 'bias']) on(`${node.name}.${t}`, 0, input);
        if (node.kind === 'batch')
          for (const t of ['running_mean', 'running_var']) on(`${node.name}.${t}`, 0, input);
        carried.set(node.id, input);
        break;
      }
      case 'relu':
      case 'pool':
      case 'gap':
        carried.set(node.id, carried.get(node.input) ?? null);
        break;
      case 'flatten': {
        const input = carried.get(node.input) ?? null;
        const inShape = net.nodes[node.input]?.shape ?? [];
        const spatial = inShape.slice(1).reduce((a, b) => a * b, 1);
        carried.set(node.id, input && { group: input.group, block: input.block * spatial });
        break;
      }
      case 'add': {
        const [x, y] = node.inputs.map((i) => carried.get(i) ?? null) as [Carried | null, Carried | null];
        if (x && y) {
          groups.union(x.group, y.group);
          carried.set(node.id, x);
        } else {
          // A permuted value added to an unpermuted one (the input): neither can be permuted.
          if (x) groups.freeze(x.group);
          if (y) groups.freeze(y.group);
          carried.set(node.id, null);
        }
        break;
      }
    }
  }
  const out = carried.get(net.output);
  if (out) groups.freeze(out.group);
  const index = new Map<number, number>();
  const perms: { name: string; size: number; axes: PermutationAxis[] }[] = [];
  for (const c of created) {
    const root = groups.find(c.group);
    if (groups.isFrozen(root) || index.has(root)) continue;
    index.set(root, perms.length);
    perms.push({ name: c.name, size: c.size, axes: [] });
  }
  for (const { axis, group } of pending) {
    const k = index.get(groups.find(group));
    if (k !== undefined) (perms[k] as { axes: PermutationAxis[] }).axes.push(axis);
  }
  const hidden: HiddenPermutation[] = [];
  for (const h of net.hidden) {
    const c = carried.get(h.node);
    const k = c ? index.get(groups.find(c.group)) : undefined;
    if (k !== undefined) hidden.push({ name: h.name, perm: k });
  }
  return buildPermutationSpec(perms as PermutationGroup[], layout, hidden);
}

/**
 * The permutation spec of one of twinscope's models: {@link netPermutationSpec} for a CNN or ResNet,
 * {@link mlpPermutationSpec} for a dense chain (MLP, deep linear chain, linear model).
 */
export function permutationSpecFor(model: Pick<ModelGraphSpec, 'layout' | 'net'>): PermutationSpec {
  return model.net ? netPermutationSpec(model.net, model.layout) : mlpPermutationSpec(model.layout);
}
