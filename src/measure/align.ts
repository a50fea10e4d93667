/**
 * Permutation alignment of two networks (docs/methods.md §7.2, Ainsworth et al. 2023, "Git Re-Basin").
 *
 * Hidden units of an MLP, and the channels of a convolutional network, can be reordered without
 * changing the function it computes. Aligning B to A picks, for every permutation of a
 * {@link PermutationSpec} (a hidden layer, a conv's channels, a ResNet's residual stream), the
 * reordering of B's units that best matches A's, either from the weights ({@link weightMatching})
 * or from activations ({@link activationMatching}). Specs: {@link mlpPermutationSpec} here, nets in
 * src/measure/net-permutation-spec.ts, imported ONNX graphs in src/onnx/permutation-spec.ts.
 *
 * Permutation convention: `perm[i] = j` means unit j of B is placed at position i, so the aligned
 * tensor is `W'[i, …] = W[perm[i], …]` along every axis the permutation acts on. This is exactly
 * the assignment `linearAssignment` returns for C[i, j] = similarity(A unit i, B unit j). On an axis
 * with `block` b (a dense layer's input after flattening [C, H, W]: b = H·W), unit i is the run of
 * b consecutive entries i·b … i·b + b − 1, moved as a whole: `W'[…, i·b + r, …] = W[…, perm[i]·b + r, …]`.
 */

import type { ParameterLayout, TensorSlot } from '../model/layout.js';
import { Rng } from '../rng/rng.js';
import { linearAssignment } from './assignment.js';
import { gemm } from './gemm.js';

/** One tensor axis a permutation acts on. */
export interface PermutationAxis {
  readonly tensor: string;
  readonly axis: number;
  /**
   * Entries per unit along the axis (default 1): the axis has size · block entries and unit i is
   * the block i·block … i·block + block − 1 (a dense input axis after a flatten of [C, H, W]: H·W).
   */
  readonly block?: number;
}

/** One named permutation and the tensor axes it acts on. */
export interface PermutationGroup {
  /** `P{l}` (the hidden units of `dense{l}` of an MLP), or the first layer of a net's group (`conv0`). */
  readonly name: string;
  /** Units permuted (hidden units, channels). */
  readonly size: number;
  readonly axes: readonly PermutationAxis[];
}

/** A hidden output (an activation) whose units a permutation reorders, for {@link activationMatching}. */
export interface HiddenPermutation {
  /** The hidden output's name (a key of `Engine.activations`, or of an imported model's hidden outputs). */
  readonly name: string;
  /** Index into `perms`. */
  readonly perm: number;
  /**
   * Where the units sit in one example's values: `false` (default) channel-major, NCHW
   * ([C, H, W] flattened: unit i is the run i·H·W …); `true` last ([…, C]: unit i every C-th value).
   */
  readonly channelsLast?: boolean;
}

/** Which permutation (index into `perms`, or null) acts on each axis of each tensor. */
export interface PermutationSpec {
  readonly perms: readonly PermutationGroup[];
  /** Tensor name → per-axis permutation index (null: not permuted). */
  readonly axes: ReadonlyMap<string, readonly (number | null)[]>;
  /** The hidden outputs each permutation reorders (absent or empty: no activation matching by spec). */
  readonly hidden?: readonly HiddenPermutation[];
}

/**
 * A {@link PermutationSpec} from its groups: checks that every axis exists in `layout`, that its
 * length is the group's size times its block, and that no tensor axis is in two groups; fills
 * `axes` (every layout tensor, null where not permuted). Errors name the group and the tensor.
 */
export function buildPermutationSpec(
  perms: readonly PermutationGroup[],
  layout: ParameterLayout,
  hidden: readonly HiddenPermutation[] = [],
): PermutationSpec {
  const slots = new Map(layout.tensors.map((t) => [t.name, t]));
  const axes = new Map<string, (number | null)[]>(
    layout.tensors.map((t) => [t.name, t.shape.map(() => null)]),
  );
  perms.forEach((g, k) => {
    if (!Number.isInteger(g.size) || g.size < 1) {
      throw new Error(`permutation '${g.name}': size must be a positive integer, got ${g.size}`);
    }
    for (const { tensor, axis, block = 1 } of g.axes) {
      const slot = slots.get(tensor);
      if (!slot) throw new Error(`permutation '${g.name}': the model has no tensor '${tensor}'`);
      const dim = slot.shape[axis];
      if (!Number.isInteger(axis) || dim === undefined) {
        throw new Error(`permutation '${g.name}': tensor '${tensor}' [${slot.shape}] has no axis ${axis}`);
      }
      if (!Number.isInteger(block) || block < 1 || dim !== g.size * block) {
        throw new Error(
          `permutation '${g.name}' (${g.size} units${block > 1 ? ` × block ${block}` : ''}) does not fit axis ${axis} of '${tensor}' [${slot.shape}]`,
        );
      }
      const row = axes.get(tensor) as (number | null)[];
      const taken = row[axis];
      if (taken !== null && taken !== undefined) {
        throw new Error(
          `axis ${axis} of '${tensor}' is in two permutations: '${perms[taken]?.name}' and '${g.name}'`,
        );
      }
      row[axis] = k;
    }
  });
  for (const h of hidden) {
    if (!(Number.isInteger(h.perm) && h.perm >= 0 && h.perm < perms.length)) {
      throw new Error(`hidden output '${h.name}': no permutation ${h.perm}`);
    }
  }
  return { perms, axes, hidden };
}

/** Tensor name → per-axis block of the axes a permutation acts on (1 elsewhere). */
function axisBlocks(spec: PermutationSpec): Map<string, number[]> {
  const blocks = new Map<string, number[]>();
  for (const g of spec.perms) {
    for (const { tensor, axis, block = 1 } of g.axes) {
      if (block === 1) continue;
      let row = blocks.get(tensor);
      if (!row) {
        row = (spec.axes.get(tensor) ?? []).map(() => 1);
        blocks.set(tensor, row);
      }
      row[axis] = block;
    }
  }
  return blocks;
}

const DENSE_WEIGHT = /^dense(\d+)\.weight$/;
const DENSE_BIAS = /^dense(\d+)\.bias$/;

/**
 * The permutation spec of a chain of dense layers `dense0 … dense{L−1}`: one permutation P_l per
 * hidden layer l = 0 … L−2, acting on the output axis (axis 0) of `dense{l}.weight` and
 * `dense{l}.bias` and on the input axis (axis 1) of `dense{l+1}.weight`. The input features and
 * the outputs of the last layer are never permuted. Throws if the layout is not such a chain.
 */
export function mlpPermutationSpec(layout: ParameterLayout): PermutationSpec {
  const weights: TensorSlot[] = [];
  const biases = new Map<number, TensorSlot>();
  for (const t of layout.tensors) {
    const w = DENSE_WEIGHT.exec(t.name);
    const b = DENSE_BIAS.exec(t.name);
    if (w) weights[Number(w[1])] = t;
    else if (b) biases.set(Number(b[1]), t);
    else throw new Error(`mlpPermutationSpec: tensor '${t.name}' is not dense{i}.weight or dense{i}.bias`);
  }
  const L = weights.length;
  for (let l = 0; l < L; l++) {
    const w = weights[l];
    if (w?.shape.length !== 2) throw new Error(`mlpPermutationSpec: missing or non-2-D dense${l}.weight`);
    const prev = weights[l - 1];
    if (prev && prev.shape[0] !== w.shape[1]) {
      throw new Error(
        `mlpPermutationSpec: dense${l - 1} has ${prev.shape[0]} outputs but dense${l} has ${w.shape[1]} inputs`,
      );
    }
    const b = biases.get(l);
    if (b && (b.shape.length !== 1 || b.shape[0] !== w.shape[0])) {
      throw new Error(`mlpPermutationSpec: dense${l}.bias has shape [${b.shape}], expected [${w.shape[0]}]`);
    }
  }
  for (const l of biases.keys()) {
    if (l >= L) throw new Error(`mlpPermutationSpec: dense${l}.bias has no dense${l}.weight`);
  }
  const perms: PermutationGroup[] = [];
  const axes = new Map<string, (number | null)[]>();
  for (let l = 0; l < L; l++) {
    const outP = l < L - 1 ? l : null;
    const inP = l > 0 ? l - 1 : null;
    axes.set(`dense${l}.weight`, [outP, inP]);
    if (biases.has(l)) axes.set(`dense${l}.bias`, [outP]);
  }
  for (let l = 0; l < L - 1; l++) {
    const groupAxes = [{ tensor: `dense${l}.weight`, axis: 0 }];
    if (biases.has(l)) groupAxes.push({ tensor: `dense${l}.bias`, axis: 0 });
    groupAxes.push({ tensor: `dense${l + 1}.weight`, axis: 1 });
    perms.push({ name: `P${l}`, size: (weights[l] as TensorSlot).shape[0] as number, axes: groupAxes });
  }
  return { perms, axes, hidden: perms.map((_, l) => ({ name: `dense${l}`, perm: l })) };
}

/** The source index of every entry along an axis of length `dim` under `perm` with blocks of `block`. */
function axisIndex(dim: number, perm: Int32Array, block: number): Int32Array {
  const idx = new Int32Array(dim);
  for (let i = 0; i < dim; i++) {
    const u = Math.floor(i / block);
    idx[i] = (perm[u] as number) * block + (i - u * block);
  }
  return idx;
}

/**
 * `out[i, j, …] = src[p0[i], p1[j], …]` (1-D: `out[i] = src[p[i]]`); a null axis permutation is the
 * identity; on an axis with block b > 1, entry i·b + r comes from `p[i]·b + r`.
 */
function permuteTensor<T extends Float32Array | Float64Array>(
  src: T,
  out: T,
  shape: readonly number[],
  axisPerms: readonly (Int32Array | null)[],
  blocks?: readonly number[],
): void {
  const blocked = blocks?.some((b) => b !== 1) ?? false;
  if (shape.length === 1 && !blocked) {
    const p = axisPerms[0];
    const n = shape[0] as number;
    for (let i = 0; i < n; i++) out[i] = src[p ? (p[i] as number) : i] as number;
    return;
  }
  if (shape.length === 2 && !blocked) {
    const [rows, cols] = shape as [number, number];
    const pr = axisPerms[0];
    const pc = axisPerms[1];
    for (let r = 0; r < rows; r++) {
      const srcOff = (pr ? (pr[r] as number) : r) * cols;
      const outOff = r * cols;
      if (pc) for (let c = 0; c < cols; c++) out[outOff + c] = src[srcOff + (pc[c] as number)] as number;
      else for (let c = 0; c < cols; c++) out[outOff + c] = src[srcOff + c] as number;
    }
    return;
  }
  // Any rank: gather through one index map per permuted axis.
  const rank = shape.length;
  const maps = shape.map((d, ax) => {
    const p = axisPerms[ax];
    return p ? axisIndex(d, p, blocks?.[ax] ?? 1) : null;
  });
  const strides = new Array<number>(rank).fill(1);
  for (let ax = rank - 2; ax >= 0; ax--)
    strides[ax] = (strides[ax + 1] as number) * (shape[ax + 1] as number);
  const walk = (ax: number, srcOff: number, outOff: number): void => {
    const d = shape[ax] as number;
    const m = maps[ax];
    if (ax === rank - 1) {
      if (m) for (let i = 0; i < d; i++) out[outOff + i] = src[srcOff + (m[i] as number)] as number;
      else for (let i = 0; i < d; i++) out[outOff + i] = src[srcOff + i] as number;
      return;
    }
    const st = strides[ax] as number;
    for (let i = 0; i < d; i++) walk(ax + 1, srcOff + (m ? (m[i] as number) : i) * st, outOff + i * st);
  };
  if (rank > 0) walk(0, 0, 0);
}

function checkPerms(spec: PermutationSpec, perms: readonly Int32Array[]): void {
  if (perms.length !== spec.perms.length) {
    throw new Error(
      `expected ${spec.perms.length} permutations (one per hidden layer or channel group), got ${perms.length}`,
    );
  }
  spec.perms.forEach((g, k) => {
    const p = perms[k];
    if (!(p instanceof Int32Array)) throw new Error(`permutation ${g.name} is missing`);
    if (p.length !== g.size)
      throw new Error(`permutation ${g.name} has length ${p.length}, expected ${g.size}`);
    const seen = new Uint8Array(g.size);
    for (const v of p) {
      if (!(v >= 0 && v < g.size) || seen[v])
        throw new Error(`${g.name} is not a permutation of 0..${g.size - 1}`);
      seen[v] = 1;
    }
  });
}

/**
 * Reorder the hidden units of a network: returns a new parameter vector in which unit i of
 * permutation k is unit `perms[k][i]` of `params` along every tensor axis the permutation acts on
 * (for an MLP: rows of `dense{l}.weight`/`.bias`, columns of `dense{l+1}.weight`). The network
 * function is unchanged. `perms` has one entry per permutation of `spec` (default
 * {@link mlpPermutationSpec} of `layout`, one per hidden layer).
 */
export function applyPermutations(
  params: Float32Array,
  layout: ParameterLayout,
  perms: readonly Int32Array[],
  spec: PermutationSpec = mlpPermutationSpec(layout),
): Float32Array {
  if (params.length !== layout.size) {
    throw new Error(`params has ${params.length} entries, layout has ${layout.size}`);
  }
  checkPerms(spec, perms);
  const blocks = axisBlocks(spec);
  const out = new Float32Array(params.length);
  for (const slot of layout.tensors) {
    const axisPerms = (spec.axes.get(slot.name) ?? []).map((k) =>
      k === null ? null : (perms[k] as Int32Array),
    );
    permuteTensor(
      params.subarray(slot.offset, slot.offset + slot.size),
      out.subarray(slot.offset, slot.offset + slot.size),
      slot.shape,
      axisPerms,
      blocks.get(slot.name),
    );
  }
  return out;
}

/** Options of {@link weightMatching}. */
export interface WeightMatchingOptions {
  /** Seed of the random visiting order (stream `align` of `Rng.fromSeed(seed)`). */
  readonly seed: number;
  /** Most sweeps over all permutations. Default 100. */
  readonly maxSweeps?: number;
  /**
   * How the similarity matrices are built and solved: 'gemm' (default) with float64 products on
   * onnxruntime ({@link gemm}), the terms that never change between sweeps computed once, and the
   * Jonker–Volgenant assignment; 'js' with the original plain-JS float64 loops and the Hungarian
   * solver (the reference). The matrices are equal up to float64 rounding, so the permutations are
   * the same unless two assignments tie to rounding.
   */
  readonly backend?: 'gemm' | 'js';
  /** Which tensor axes share a permutation (default {@link mlpPermutationSpec} of the layout). */
  readonly spec?: PermutationSpec;
  /**
   * Permutations held fixed (index into the spec's `perms` → permutation): the descent starts from
   * them and never changes them (used to complete an activation matching).
   */
  readonly fixed?: ReadonlyMap<number, Int32Array>;
}

/** The permutations {@link weightMatching} found, and B aligned with them. */
export interface WeightMatchingResult {
  /** One permutation per hidden layer (per permutation of the spec): apply to B to align it to A. */
  readonly perms: Int32Array[];
  /** Sweeps run, including the last one that changed nothing (if it converged). */
  readonly sweeps: number;
  /** Whether a sweep changed nothing before `maxSweeps` ran out. */
  readonly converged: boolean;
  /** B with `perms` applied. */
  readonly aligned: Float32Array;
}

/**
 * Git Re-Basin weight matching: align B to A by coordinate descent on
 * Σ_tensors ⟨W_A, π(W_B)⟩ (float64). Each sweep visits the permutations in an order drawn from
 * `Rng.fromSeed(seed).stream('align')` (one `permutation(k)` per sweep); for P_l it builds
 * C = Σ over the tensor axes P_l acts on of the contraction of W_A and (W_B with its other axes
 * already permuted) over every other axis (and within each block), biases and normalization
 * tensors included, and takes the maximizing assignment. A new permutation is kept only if it
 * raises the objective by more than float64 noise (1e-12 relative), so ties never cycle; the
 * descent stops after a sweep that changes nothing, or after `maxSweeps` sweeps.
 * Starts from identity permutations (or `fixed`). The products are float64 GEMMs on onnxruntime
 * (`backend`); terms whose other axes are never permuted (the input axis of the first layer, the
 * output axis of the last, the biases) are computed once, not per sweep.
 */
export function weightMatching(
  a: Float32Array,
  b: Float32Array,
  layout: ParameterLayout,
  options: WeightMatchingOptions,
): WeightMatchingResult {
  const maxSweeps = options.maxSweeps ?? 100;
  if (!Number.isInteger(maxSweeps) || maxSweeps < 1) {
    throw new Error(`maxSweeps must be a positive integer, got ${maxSweeps}`);
  }
  if (a.length !== layout.size || b.length !== layout.size) {
    throw new Error(`params have ${a.length} and ${b.length} entries, layout has ${layout.size}`);
  }
  const spec = options.spec ?? mlpPermutationSpec(layout);
  const slots = new Map(layout.tensors.map((t) => [t.name, t]));
  const f64 = (v: Float32Array, s: TensorSlot) => new Float64Array(v.subarray(s.offset, s.offset + s.size));
  const tensA = new Map(layout.tensors.map((s) => [s.name, f64(a, s)]));
  const tensB = new Map(layout.tensors.map((s) => [s.name, f64(b, s)]));
  const fixed = options.fixed ?? new Map<number, Int32Array>();
  const perms: Int32Array[] = spec.perms.map((g, k) => {
    const given = fixed.get(k);
    if (given) return Int32Array.from(given);
    const p = new Int32Array(g.size);
    for (let i = 0; i < g.size; i++) p[i] = i;
    return p;
  });
  checkPerms(spec, perms);
  const backend = options.backend ?? 'gemm';
  if (backend !== 'gemm' && backend !== 'js') throw new Error(`unknown weightMatching backend '${backend}'`);
  const blocks = axisBlocks(spec);
  const similarity =
    backend === 'gemm'
      ? gemmSimilarity(spec, slots, tensA, tensB, blocks)
      : (pi: number, perms: readonly Int32Array[]) =>
          jsSimilarity(spec, slots, tensA, tensB, blocks, pi, perms);
  const solver = backend === 'gemm' ? 'jv' : 'hungarian';
  const k = spec.perms.length;
  const order = Rng.fromSeed(options.seed).stream('align');
  let sweeps = 0;
  let converged = false;
  while (sweeps < maxSweeps) {
    sweeps++;
    let changed = false;
    for (const pi of order.permutation(k)) {
      if (fixed.has(pi)) continue;
      const n = (spec.perms[pi] as PermutationGroup).size;
      const C = similarity(pi, perms);
      const old = perms[pi] as Int32Array;
      const next = linearAssignment({ rows: n, cols: n, data: C }, { maximize: true, solver });
      let oldL = 0;
      let newL = 0;
      let scale = 0;
      for (let i = 0; i < n; i++) {
        const co = C[i * n + (old[i] as number)] as number;
        const cn = C[i * n + (next[i] as number)] as number;
        oldL += co;
        newL += cn;
        scale += Math.abs(co) + Math.abs(cn);
      }
      if (newL > oldL + 1e-12 * scale) {
        perms[pi] = next;
        changed = true;
      }
    }
    if (!changed) {
      converged = true;
      break;
    }
  }
  return { perms, sweeps, converged, aligned: applyPermutations(b, layout, perms, spec) };
}

/** The permutation of every axis of `tensor` but `axis` (null: not permuted). */
function otherAxisPerms(
  spec: PermutationSpec,
  tensor: string,
  axis: number,
  perms: readonly Int32Array[],
): (Int32Array | null)[] {
  return (spec.axes.get(tensor) as (number | null)[]).map((q, ax) =>
    q === null || ax === axis ? null : (perms[q] as Int32Array),
  );
}

/**
 * The similarity matrix of permutation `pi` in plain JS (the reference): C = Σ over the tensor axes
 * P_pi acts on of the contraction of W_A and (W_B with its other axes permuted) over every other axis.
 */
function jsSimilarity(
  spec: PermutationSpec,
  slots: ReadonlyMap<string, TensorSlot>,
  tensA: ReadonlyMap<string, Float64Array>,
  tensB: ReadonlyMap<string, Float64Array>,
  blocks: ReadonlyMap<string, readonly number[]>,
  pi: number,
  perms: readonly Int32Array[],
): Float64Array {
  const g = spec.perms[pi] as PermutationGroup;
  const n = g.size;
  const C = new Float64Array(n * n);
  for (const { tensor, axis, block = 1 } of g.axes) {
    const slot = slots.get(tensor) as TensorSlot;
    const tA = tensA.get(tensor) as Float64Array;
    const tB = tensB.get(tensor) as Float64Array;
    // B with every axis but `axis` permuted.
    const tBp = new Float64Array(tB.length);
    permuteTensor(tB, tBp, slot.shape, otherAxisPerms(spec, tensor, axis, perms), blocks.get(tensor));
    accumulateAxisGram(C, tA, tBp, slot.shape, axis, n, block);
  }
  return C;
}

/**
 * The same similarity matrices with float64 GEMMs: a term whose other axes are never permuted (the
 * input axis of `dense0.weight`, the output axis of the last layer's weight, every bias) does not
 * change between sweeps and is summed once per permutation into `fixed`; each remaining term is one
 * product W_A · π(W_B)ᵀ (or W_Aᵀ · π(W_B), or the same of the tensors with the axis moved first)
 * per visit, with B's other axes permuted into a reused buffer.
 */
function gemmSimilarity(
  spec: PermutationSpec,
  slots: ReadonlyMap<string, TensorSlot>,
  tensA: ReadonlyMap<string, Float64Array>,
  tensB: ReadonlyMap<string, Float64Array>,
  blocks: ReadonlyMap<string, readonly number[]>,
): (pi: number, perms: readonly Int32Array[]) => Float64Array {
  interface Term {
    readonly slot: TensorSlot;
    readonly axis: number;
    readonly block: number;
    readonly a: Float64Array;
    readonly b: Float64Array;
    readonly scratch: Float64Array;
  }
  const fixed: Float64Array[] = [];
  const varying: Term[][] = [];
  spec.perms.forEach((g) => {
    const n = g.size;
    const C = new Float64Array(n * n);
    const terms: Term[] = [];
    for (const { tensor, axis, block = 1 } of g.axes) {
      const slot = slots.get(tensor) as TensorSlot;
      const a = tensA.get(tensor) as Float64Array;
      const b = tensB.get(tensor) as Float64Array;
      if (slot.shape.length === 1) {
        accumulateAxisGram(C, a, b, slot.shape, axis, n, block);
        continue;
      }
      const others = (spec.axes.get(tensor) as (number | null)[]).some((q, ax) => ax !== axis && q !== null);
      if (!others) {
        addInto(C, axisProduct(a, b, slot.shape, axis, block));
      } else {
        terms.push({ slot, axis, block, a, b, scratch: new Float64Array(b.length) });
      }
    }
    fixed.push(C);
    varying.push(terms);
  });
  return (pi, perms) => {
    const C = (fixed[pi] as Float64Array).slice();
    for (const t of varying[pi] as Term[]) {
      const axisPerms = otherAxisPerms(spec, t.slot.name, t.axis, perms);
      permuteTensor(t.b, t.scratch, t.slot.shape, axisPerms, blocks.get(t.slot.name));
      addInto(C, axisProduct(t.a, t.scratch, t.slot.shape, t.axis, t.block));
    }
    return C;
  };
}

/**
 * A tensor seen as [pre, units, inner] around `axis`: pre = the product of the axes before it,
 * inner = block × the product of the axes after it (unit i is entries [p, i, q] for all p, q).
 */
function unitView(shape: readonly number[], axis: number, block: number) {
  const pre = shape.slice(0, axis).reduce((x, y) => x * y, 1);
  const inner = shape.slice(axis + 1).reduce((x, y) => x * y, 1) * block;
  return { pre, units: (shape[axis] as number) / block, inner };
}

/** X as [pre, n, inner] rearranged to [n, pre·inner] (row i: every entry of unit i). */
function unitsFirst(X: Float64Array, pre: number, n: number, inner: number): Float64Array {
  const out = new Float64Array(X.length);
  const row = pre * inner;
  for (let p = 0; p < pre; p++) {
    for (let i = 0; i < n; i++) {
      const src = (p * n + i) * inner;
      const dst = i * row + p * inner;
      for (let q = 0; q < inner; q++) out[dst + q] = X[src + q] as number;
    }
  }
  return out;
}

/**
 * C[i, j] = Σ over every other entry of A[unit i] · B[unit j] along `axis` (GEMM): A · Bᵀ when the
 * axis is the first one, Aᵀ · B when it is the last (block 1), else the same product of the tensors
 * rearranged with the axis first.
 */
function axisProduct(
  A: Float64Array,
  B: Float64Array,
  shape: readonly number[],
  axis: number,
  block = 1,
): Float64Array {
  const { pre, units: n, inner } = unitView(shape, axis, block);
  if (pre === 1) return gemm(A, B, { m: n, k: inner, n, transB: true }); // A · Bᵀ
  if (inner === 1) return gemm(A, B, { m: n, k: pre, n, transA: true }); // Aᵀ · B
  const k = pre * inner;
  return gemm(unitsFirst(A, pre, n, inner), unitsFirst(B, pre, n, inner), { m: n, k, n, transB: true });
}

function addInto(C: Float64Array, D: Float64Array): void {
  for (let i = 0; i < C.length; i++) C[i] = (C[i] as number) + (D[i] as number);
}

/** C[i, j] += Σ over the other axes (and within blocks) of A[i along axis] · B[j along axis]. */
function accumulateAxisGram(
  C: Float64Array,
  A: Float64Array,
  B: Float64Array,
  shape: readonly number[],
  axis: number,
  n: number,
  block = 1,
): void {
  if (shape.length === 1 && block === 1) {
    for (let i = 0; i < n; i++) {
      const ai = A[i] as number;
      for (let j = 0; j < n; j++) C[i * n + j] = (C[i * n + j] as number) + ai * (B[j] as number);
    }
    return;
  }
  if (shape.length === 2 && block === 1) {
    const [rows, cols] = shape as [number, number];
    if (axis === 0) {
      // Σ_c A[i, c] B[j, c]
      for (let i = 0; i < n; i++) {
        const ao = i * cols;
        for (let j = 0; j < n; j++) {
          const bo = j * cols;
          let s = 0;
          for (let c = 0; c < cols; c++) s += (A[ao + c] as number) * (B[bo + c] as number);
          C[i * n + j] = (C[i * n + j] as number) + s;
        }
      }
    } else {
      // Σ_r A[r, i] B[r, j]
      for (let r = 0; r < rows; r++) {
        const ro = r * cols;
        for (let i = 0; i < n; i++) {
          const ari = A[ro + i] as number;
          if (ari === 0) continue;
          const ci = i * n;
          for (let j = 0; j < n; j++) C[ci + j] = (C[ci + j] as number) + ari * (B[ro + j] as number);
        }
      }
    }
    return;
  }
  // Any rank: Σ_p Σ_q A[p, i, q] B[p, j, q] over the [pre, n, inner] view.
  const { pre, inner } = unitView(shape, axis, block);
  for (let p = 0; p < pre; p++) {
    for (let i = 0; i < n; i++) {
      const ao = (p * n + i) * inner;
      for (let j = 0; j < n; j++) {
        const bo = (p * n + j) * inner;
        let s = 0;
        for (let q = 0; q < inner; q++) s += (A[ao + q] as number) * (B[bo + q] as number);
        C[i * n + j] = (C[i * n + j] as number) + s;
      }
    }
  }
}

/** Options of {@link activationMatching}. */
export interface ActivationMatchingOptions {
  /** `correlation` (Pearson, default) or `inner` (raw inner products) of unit activations. */
  readonly method?: 'correlation' | 'inner';
  /**
   * How the cross-moments Σ_x a_i(x) b_j(x) are summed: 'gemm' (default) as one float64 GEMM on
   * onnxruntime ({@link gemm}); 'js' with the original plain-JS loop (the reference). Equal up to
   * float64 rounding. Both solve with the Hungarian algorithm (dead units tie exactly).
   */
  readonly backend?: 'gemm' | 'js';
  /**
   * Match the permutations of this spec, each from the hidden outputs `spec.hidden` lists for it
   * (default: an MLP's layers `dense0 …`, one permutation each, in layer order).
   */
  readonly spec?: PermutationSpec;
  /**
   * With `spec`: A's and B's weights, to set the permutations that no hidden output carries (a
   * ResNet block's inner channels) by {@link weightMatching} with the matched ones held fixed
   * (`seed` of its visiting order, default 0). Without it such a permutation is an error.
   */
  readonly weights?: {
    readonly a: Float32Array;
    readonly b: Float32Array;
    readonly layout: ParameterLayout;
    readonly seed?: number;
  };
}

/**
 * Git Re-Basin activation matching: for each hidden layer `dense{l}` (keys `dense0 …`
 * `dense{H−1}` of both maps, row-major [n, width] as `Engine.activations` returns them), build
 * C[i, j] = Pearson correlation over the n examples between unit i of A and unit j of B (a unit
 * that is constant in either network correlates 0), or the raw inner product Σ_x a_i(x) b_j(x),
 * and solve one maximizing assignment. Returns one permutation per hidden layer, in layer order;
 * apply them to B with {@link applyPermutations}.
 *
 * With `options.spec`, one permutation per group of the spec instead: a channel's activation
 * vector is its values over all n examples and all spatial positions (hidden outputs [n, C·H·W]
 * in NCHW order, or channels last), and a permutation carried by several hidden outputs (a
 * residual stream) sums their matrices C before the assignment.
 */
export function activationMatching(
  actsA: ReadonlyMap<string, Float32Array | Float64Array>,
  actsB: ReadonlyMap<string, Float32Array | Float64Array>,
  n: number,
  options: ActivationMatchingOptions = {},
): Int32Array[] {
  const method = options.method ?? 'correlation';
  const backend = options.backend ?? 'gemm';
  if (backend !== 'gemm' && backend !== 'js')
    throw new Error(`unknown activationMatching backend '${backend}'`);
  if (!Number.isInteger(n) || n < 1) throw new Error(`n must be a positive integer, got ${n}`);
  if (options.spec)
    return specActivationMatching(actsA, actsB, n, options.spec, method, backend, options.weights);
  const layers = [...actsA.keys()]
    .map((name) => {
      const m = /^dense(\d+)$/.exec(name);
      if (!m) throw new Error(`activationMatching: unexpected activation key '${name}'`);
      return Number(m[1]);
    })
    .sort((x, y) => x - y);
  layers.forEach((l, i) => {
    if (l !== i) throw new Error(`activationMatching: activations must be dense0..dense${layers.length - 1}`);
  });
  if (actsB.size !== actsA.size) {
    throw new Error(`activationMatching: A has ${actsA.size} layers, B has ${actsB.size}`);
  }
  return layers.map((l) => {
    const name = `dense${l}`;
    const A = actsA.get(name) as Float32Array | Float64Array;
    const B = actsB.get(name);
    if (!B) throw new Error(`activationMatching: B has no activations for '${name}'`);
    if (A.length !== B.length || A.length % n !== 0) {
      throw new Error(
        `activationMatching: '${name}' has ${A.length} (A) and ${B.length} (B) entries for n = ${n}`,
      );
    }
    const w = A.length / n;
    const C = crossMoments(A, B, n, w, method, backend);
    // The Hungarian solver on both paths: dead ReLU units make whole rows of C tie exactly, and the
    // two solvers break such ties differently.
    return linearAssignment({ rows: w, cols: w, data: C }, { maximize: true, solver: 'hungarian' });
  });
}

/** [n, C·s] channel-major rows → [n·s, C] (row x·s + t: position t of example x). */
function channelsLastRows(M: Float32Array | Float64Array, n: number, c: number, s: number): Float64Array {
  const out = new Float64Array(M.length);
  for (let x = 0; x < n; x++) {
    const base = x * c * s;
    for (let ch = 0; ch < c; ch++) {
      const src = base + ch * s;
      for (let t = 0; t < s; t++) out[base + t * c + ch] = M[src + t] as number;
    }
  }
  return out;
}

function specActivationMatching(
  actsA: ReadonlyMap<string, Float32Array | Float64Array>,
  actsB: ReadonlyMap<string, Float32Array | Float64Array>,
  n: number,
  spec: PermutationSpec,
  method: 'correlation' | 'inner',
  backend: 'gemm' | 'js',
  weights: ActivationMatchingOptions['weights'],
): Int32Array[] {
  const sums: (Float64Array | null)[] = spec.perms.map(() => null);
  for (const h of spec.hidden ?? []) {
    const g = spec.perms[h.perm] as PermutationGroup;
    const A = actsA.get(h.name);
    const B = actsB.get(h.name);
    if (!A || !B) {
      throw new Error(`activationMatching: no activations for hidden output '${h.name}' in ${A ? 'B' : 'A'}`);
    }
    const c = g.size;
    const w = A.length / n;
    if (A.length !== B.length || !Number.isInteger(w) || w % c !== 0) {
      throw new Error(
        `activationMatching: '${h.name}' has ${A.length} (A) and ${B.length} (B) entries for n = ${n} examples of ${c} channels (${g.name})`,
      );
    }
    const s = w / c;
    const C =
      s === 1 || h.channelsLast
        ? crossMoments(A, B, n * s, c, method, backend)
        : crossMoments(channelsLastRows(A, n, c, s), channelsLastRows(B, n, c, s), n * s, c, method, backend);
    const sum = sums[h.perm];
    if (sum) addInto(sum, C);
    else sums[h.perm] = C;
  }
  const fixed = new Map<number, Int32Array>();
  sums.forEach((C, k) => {
    const size = (spec.perms[k] as PermutationGroup).size;
    if (C)
      fixed.set(
        k,
        linearAssignment({ rows: size, cols: size, data: C }, { maximize: true, solver: 'hungarian' }),
      );
  });
  if (fixed.size === spec.perms.length) return spec.perms.map((_, k) => fixed.get(k) as Int32Array);
  if (!weights) {
    const missing = spec.perms.filter((_, k) => !fixed.has(k)).map((g) => g.name);
    throw new Error(
      `activationMatching: no hidden output carries permutation${missing.length > 1 ? 's' : ''} ${missing.join(', ')} (pass options.weights to set them by weight matching)`,
    );
  }
  return weightMatching(weights.a, weights.b, weights.layout, { seed: weights.seed ?? 0, spec, fixed }).perms;
}

/** C[i, j] = Σ_x a_i(x) b_j(x) (inner) or the Pearson correlation of units i and j (float64). */
function crossMoments(
  A: Float32Array | Float64Array,
  B: Float32Array | Float64Array,
  n: number,
  w: number,
  method: 'correlation' | 'inner',
  backend: 'gemm' | 'js',
): Float64Array {
  const a = new Float64Array(A);
  const b = new Float64Array(B);
  const sdA = new Float64Array(w).fill(1);
  const sdB = new Float64Array(w).fill(1);
  if (method === 'correlation') {
    for (const [m, sd] of [
      [a, sdA],
      [b, sdB],
    ] as const) {
      // A unit whose n values are all equal is constant: sd 0, correlation 0 (its centred values
      // could otherwise be rounding noise rather than exact zeros).
      const constant = new Uint8Array(w).fill(1);
      for (let x = 1; x < n; x++) {
        for (let i = 0; i < w; i++) if (m[x * w + i] !== m[i]) constant[i] = 0;
      }
      const mean = new Float64Array(w);
      for (let x = 0; x < n; x++) {
        for (let i = 0; i < w; i++) mean[i] = (mean[i] as number) + (m[x * w + i] as number);
      }
      for (let i = 0; i < w; i++) mean[i] = (mean[i] as number) / n;
      const ss = new Float64Array(w);
      for (let x = 0; x < n; x++) {
        for (let i = 0; i < w; i++) {
          const d = (m[x * w + i] as number) - (mean[i] as number);
          m[x * w + i] = d;
          ss[i] = (ss[i] as number) + d * d;
        }
      }
      for (let i = 0; i < w; i++) sd[i] = constant[i] ? 0 : Math.sqrt(ss[i] as number);
    }
  }
  // C[i, j] = Σ_x a[x, i] b[x, j]
  let C: Float64Array;
  if (backend === 'gemm') {
    C = gemm(a, b, { m: w, k: n, n: w, transA: true });
  } else {
    C = new Float64Array(w * w);
    accumulateAxisGram(C, a, b, [n, w], 1, w);
  }
  if (method === 'correlation') {
    // Constant units (zero spread, relative to their scale) correlate 0 with everything.
    for (let i = 0; i < w; i++) {
      for (let j = 0; j < w; j++) {
        const d = (sdA[i] as number) * (sdB[j] as number);
        C[i * w + j] = d > 0 ? (C[i * w + j] as number) / d : 0;
      }
    }
  }
  return C;
}
