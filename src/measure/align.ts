/**
 * Permutation alignment of two networks (docs/methods.md §7.2, Ainsworth et al. 2023, "Git Re-Basin").
 *
 * Hidden units of an MLP can be reordered without changing the function it computes. Aligning B
 * to A picks, for every hidden layer, the reordering of B's units that best matches A's, either
 * from the weights ({@link weightMatching}) or from activations ({@link activationMatching}).
 *
 * Permutation convention: `perm[i] = j` means unit j of B is placed at position i, so the aligned
 * tensor is `W'[i, …] = W[perm[i], …]` along every axis the permutation acts on. This is exactly
 * the assignment `linearAssignment` returns for C[i, j] = similarity(A unit i, B unit j).
 */

import type { ParameterLayout, TensorSlot } from '../model/layout.js';
import { Rng } from '../rng/rng.js';
import { linearAssignment } from './assignment.js';
import { gemm } from './gemm.js';

/** One named permutation and the tensor axes it acts on. */
export interface PermutationGroup {
  /** `P{l}`: the hidden units of `dense{l}`. */
  readonly name: string;
  readonly size: number;
  readonly axes: readonly { readonly tensor: string; readonly axis: number }[];
}

/** Which permutation (index into `perms`, or null) acts on each axis of each tensor. */
export interface PermutationSpec {
  readonly perms: readonly PermutationGroup[];
  /** Tensor name → per-axis permutation index (null: not permuted). */
  readonly axes: ReadonlyMap<string, readonly (number | null)[]>;
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
  return { perms, axes };
}

/** `out[i, j] = src[pr[i], pc[j]]` (1-D: `out[i] = src[p[i]]`); a null axis permutation is the identity. */
function permuteTensor<T extends Float32Array | Float64Array>(
  src: T,
  out: T,
  shape: readonly number[],
  axisPerms: readonly (Int32Array | null)[],
): void {
  if (shape.length === 1) {
    const p = axisPerms[0];
    const n = shape[0] as number;
    for (let i = 0; i < n; i++) out[i] = src[p ? (p[i] as number) : i] as number;
    return;
  }
  if (shape.length !== 2) throw new Error(`only 1-D and 2-D tensors can be permuted, got shape [${shape}]`);
  const [rows, cols] = shape as [number, number];
  const pr = axisPerms[0];
  const pc = axisPerms[1];
  for (let r = 0; r < rows; r++) {
    const srcOff = (pr ? (pr[r] as number) : r) * cols;
    const outOff = r * cols;
    if (pc) for (let c = 0; c < cols; c++) out[outOff + c] = src[srcOff + (pc[c] as number)] as number;
    else for (let c = 0; c < cols; c++) out[outOff + c] = src[srcOff + c] as number;
  }
}

function checkPerms(spec: PermutationSpec, perms: readonly Int32Array[]): void {
  if (perms.length !== spec.perms.length) {
    throw new Error(`expected ${spec.perms.length} permutations (one per hidden layer), got ${perms.length}`);
  }
  spec.perms.forEach((g, k) => {
    const p = perms[k] as Int32Array;
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
 * Reorder the hidden units of an MLP: returns a new parameter vector in which hidden unit i of
 * layer l is unit `perms[l][i]` of `params` (rows of `dense{l}.weight`/`.bias`, columns of
 * `dense{l+1}.weight`). The network function is unchanged. `perms` has one entry per hidden
 * layer (see {@link mlpPermutationSpec}).
 */
export function applyPermutations(
  params: Float32Array,
  layout: ParameterLayout,
  perms: readonly Int32Array[],
): Float32Array {
  if (params.length !== layout.size) {
    throw new Error(`params has ${params.length} entries, layout has ${layout.size}`);
  }
  const spec = mlpPermutationSpec(layout);
  checkPerms(spec, perms);
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
}

/** The permutations {@link weightMatching} found, and B aligned with them. */
export interface WeightMatchingResult {
  /** One permutation per hidden layer: apply to B to align it to A. */
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
 * C = Σ over the tensor axes P_l acts on of W_A · (W_B with its other axes already permuted)ᵀ,
 * biases included, and takes the maximizing assignment. A new permutation is kept only if it
 * raises the objective by more than float64 noise (1e-12 relative), so ties never cycle; the
 * descent stops after a sweep that changes nothing, or after `maxSweeps` sweeps.
 * Starts from identity permutations. The products are float64 GEMMs on onnxruntime (`backend`);
 * terms whose other axis is never permuted (the input axis of the first layer, the output axis of
 * the last, the biases) are computed once, not per sweep.
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
  const spec = mlpPermutationSpec(layout);
  const slots = new Map(layout.tensors.map((t) => [t.name, t]));
  const f64 = (v: Float32Array, s: TensorSlot) => new Float64Array(v.subarray(s.offset, s.offset + s.size));
  const tensA = new Map(layout.tensors.map((s) => [s.name, f64(a, s)]));
  const tensB = new Map(layout.tensors.map((s) => [s.name, f64(b, s)]));
  const perms: Int32Array[] = spec.perms.map((g) => {
    const p = new Int32Array(g.size);
    for (let i = 0; i < g.size; i++) p[i] = i;
    return p;
  });
  const backend = options.backend ?? 'gemm';
  if (backend !== 'gemm' && backend !== 'js') throw new Error(`unknown weightMatching backend '${backend}'`);
  const similarity =
    backend === 'gemm'
      ? gemmSimilarity(spec, slots, tensA, tensB)
      : (pi: number, perms: readonly Int32Array[]) => jsSimilarity(spec, slots, tensA, tensB, pi, perms);
  const solver = backend === 'gemm' ? 'jv' : 'hungarian';
  const k = spec.perms.length;
  const order = Rng.fromSeed(options.seed).stream('align');
  let sweeps = 0;
  let converged = false;
  while (sweeps < maxSweeps) {
    sweeps++;
    let changed = false;
    for (const pi of order.permutation(k)) {
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
  return { perms, sweeps, converged, aligned: applyPermutations(b, layout, perms) };
}

/**
 * The similarity matrix of permutation `pi` in plain JS (the reference): C = Σ over the tensor axes
 * P_pi acts on of W_A · (W_B with its other axes permuted)ᵀ.
 */
function jsSimilarity(
  spec: PermutationSpec,
  slots: ReadonlyMap<string, TensorSlot>,
  tensA: ReadonlyMap<string, Float64Array>,
  tensB: ReadonlyMap<string, Float64Array>,
  pi: number,
  perms: readonly Int32Array[],
): Float64Array {
  const g = spec.perms[pi] as PermutationGroup;
  const n = g.size;
  const C = new Float64Array(n * n);
  for (const { tensor, axis } of g.axes) {
    const slot = slots.get(tensor) as TensorSlot;
    const tA = tensA.get(tensor) as Float64Array;
    const tB = tensB.get(tensor) as Float64Array;
    // B with every axis but `axis` permuted.
    const axisPerms = (spec.axes.get(tensor) as (number | null)[]).map((q, ax) =>
      q === null || ax === axis ? null : (perms[q] as Int32Array),
    );
    const tBp = new Float64Array(tB.length);
    permuteTensor(tB, tBp, slot.shape, axisPerms);
    accumulateAxisGram(C, tA, tBp, slot.shape, axis, n);
  }
  return C;
}

/**
 * The same similarity matrices with float64 GEMMs: a term whose other axis is never permuted (the
 * input axis of `dense0.weight`, the output axis of the last layer's weight, every bias) does not
 * change between sweeps and is summed once per permutation into `fixed`; each remaining term is one
 * product W_A · π(W_B)ᵀ (or W_Aᵀ · π(W_B)) per visit, with B's other axis permuted into a reused
 * buffer.
 */
function gemmSimilarity(
  spec: PermutationSpec,
  slots: ReadonlyMap<string, TensorSlot>,
  tensA: ReadonlyMap<string, Float64Array>,
  tensB: ReadonlyMap<string, Float64Array>,
): (pi: number, perms: readonly Int32Array[]) => Float64Array {
  interface Term {
    readonly slot: TensorSlot;
    readonly axis: number;
    /** The permutation acting on the other axis. */
    readonly other: number;
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
    for (const { tensor, axis } of g.axes) {
      const slot = slots.get(tensor) as TensorSlot;
      const a = tensA.get(tensor) as Float64Array;
      const b = tensB.get(tensor) as Float64Array;
      if (slot.shape.length === 1) {
        accumulateAxisGram(C, a, b, slot.shape, axis, n);
        continue;
      }
      const other = (spec.axes.get(tensor) as (number | null)[])[1 - axis] ?? null;
      if (other === null) {
        addInto(C, axisProduct(a, b, slot.shape, axis));
      } else {
        terms.push({ slot, axis, other, a, b, scratch: new Float64Array(b.length) });
      }
    }
    fixed.push(C);
    varying.push(terms);
  });
  return (pi, perms) => {
    const C = (fixed[pi] as Float64Array).slice();
    for (const t of varying[pi] as Term[]) {
      const axisPerms =
        t.axis === 0 ? [null, perms[t.other] as Int32Array] : [perms[t.other] as Int32Array, null];
      permuteTensor(t.b, t.scratch, t.slot.shape, axisPerms);
      addInto(C, axisProduct(t.a, t.scratch, t.slot.shape, t.axis));
    }
    return C;
  };
}

/** Σ over the other axis of A[i along axis] · B[j along axis] for a 2-D [rows, cols] pair (GEMM). */
function axisProduct(A: Float64Array, B: Float64Array, shape: readonly number[], axis: number): Float64Array {
  const [rows, cols] = shape as [number, number];
  return axis === 0
    ? gemm(A, B, { m: rows, k: cols, n: rows, transB: true }) // A · Bᵀ
    : gemm(A, B, { m: cols, k: rows, n: cols, transA: true }); // Aᵀ · B
}

function addInto(C: Float64Array, D: Float64Array): void {
  for (let i = 0; i < C.length; i++) C[i] = (C[i] as number) + (D[i] as number);
}

/** C[i, j] += Σ over the other axes of A[i along axis] · B[j along axis] (1-D or 2-D tensors). */
function accumulateAxisGram(
  C: Float64Array,
  A: Float64Array,
  B: Float64Array,
  shape: readonly number[],
  axis: number,
  n: number,
): void {
  if (shape.length === 1) {
    for (let i = 0; i < n; i++) {
      const ai = A[i] as number;
      for (let j = 0; j < n; j++) C[i * n + j] = (C[i * n + j] as number) + ai * (B[j] as number);
    }
    return;
  }
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
}

/**
 * Git Re-Basin activation matching: for each hidden layer `dense{l}` (keys `dense0 …`
 * `dense{H−1}` of both maps, row-major [n, width] as `Engine.activations` returns them), build
 * C[i, j] = Pearson correlation over the n examples between unit i of A and unit j of B (a unit
 * that is constant in either network correlates 0), or the raw inner product Σ_x a_i(x) b_j(x),
 * and solve one maximizing assignment. Returns one permutation per hidden layer, in layer order;
 * apply them to B with {@link applyPermutations}.
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
