/**
 * Measurements of one network along training (docs/methods.md §12): the diagnostics of §12.1
 * (gradient norm on the train split, ReLU saturation and dead units per hidden layer, per-tensor
 * weight norms) and the sharpness of §12.2 (top Hessian eigenvalues by Lanczos or power iteration on
 * exact Hessian-vector products, Adam's preconditioned sharpness, the optimizer's stability threshold,
 * Hutchinson's trace), and {@link trainingProbe}, which takes them at the steps a run spec asks for
 * and returns the rows of the run's diagnostics.arrow.
 *
 * Every pass over examples goes through the {@link Engine} in chunks of at most `chunk` rows (default
 * 2048), weighting each chunk by its share of the examples in float64: the mean loss over all of
 * them, whatever the chunking. Everything is deterministic: the same state gives the same numbers
 * (seeded start vectors and probes, fixed example subsets), so a resumed run writes the same rows.
 */
import { firstRows } from '../data/rows.js';
import type { Batch } from '../data/types.js';
import type { Engine, OptimizerSpec, OptimizerState } from '../engine/types.js';
import type { ParameterLayout } from '../model/layout.js';
import type { SharpnessSpec } from '../spec/resolve.js';
import type { DiagnosticRow } from '../store/index.js';
import { DIAGNOSTIC_METRICS as M, type ProbeInput, type RunProbe } from '../train/probe.js';
import type { CurveData } from './barrier.js';
import {
  adamPreconditioner,
  engineHvp,
  type HvpFn,
  hutchinsonTrace,
  lanczos,
  powerIteration,
  preconditionedHvp,
  stabilityThreshold,
} from './hessian.js';

/** Default rows per engine call of the gradient, Hessian-vector and activation passes. */
const CHUNK = 2048;

/** A ReLU unit counts as saturated (inactive) on an example when its activation is at most this. */
export const SATURATION_THRESHOLD = 1e-6;

/** The examples `set` as engine batches of at most `chunk` rows (views, no copies). */
function chunks(set: CurveData, chunk = CHUNK): Batch[] {
  if (!Number.isInteger(chunk) || chunk < 1)
    throw new Error(`chunk must be a positive integer, got ${chunk}`);
  if (!(set.n > 0)) throw new Error('the example set is empty');
  const inDim = set.x.length / set.n;
  const outDim = set.y.length / set.n;
  const out: Batch[] = [];
  for (let start = 0; start < set.n; start += chunk) {
    const rows = Math.min(chunk, set.n - start);
    out.push({
      x: set.x.subarray(start * inDim, (start + rows) * inDim),
      y: set.y.subarray(start * outDim, (start + rows) * outDim),
      size: rows,
    });
  }
  return out;
}

/** The full-batch gradient of {@link gradientNorm}: its L2 norm, the mean loss and the gradient. */
export interface GradientNorm {
  /** ‖∇L(θ)‖₂ over all parameters (float64 over the float32 gradient entries). */
  readonly norm: number;
  /** The mean loss L(θ) over the examples. */
  readonly loss: number;
  /** ∇L(θ) in layout order (float64: the chunks' gradients averaged with weights size/n). */
  readonly gradient: Float64Array;
}

/**
 * The gradient of the mean loss over all examples of `set` at `params` and its L2 norm
 * (docs/methods.md §12.1): ∇L = Σ_chunks (size/n) ∇L_chunk, each chunk's gradient from
 * `engine.gradient`. The loss is the data loss: L2 weight decay is not part of it.
 */
export async function gradientNorm(
  engine: Pick<Engine, 'gradient'>,
  params: Float32Array,
  set: CurveData,
  options: { readonly chunk?: number } = {},
): Promise<GradientNorm> {
  const gradient = new Float64Array(params.length);
  let loss = 0;
  for (const b of chunks(set, options.chunk)) {
    const w = b.size / set.n;
    const r = await engine.gradient(params, b);
    loss += w * r.loss;
    for (let i = 0; i < gradient.length; i++)
      gradient[i] = (gradient[i] as number) + w * (r.grad[i] as number);
  }
  let ss = 0;
  for (const g of gradient) ss += g * g;
  return { norm: Math.sqrt(ss), loss, gradient };
}

/** Saturation of one ReLU hidden layer ({@link reluSaturation}). */
export interface LayerSaturation {
  /** Hidden layer name, `dense{i}`; `null` for all ReLU layers together. */
  readonly layer: string | null;
  /** Units of the layer (all ReLU units for `null`). */
  readonly units: number;
  /** Fraction of (example, unit) pairs with activation ≤ 1e-6: the mean over examples of the
   * fraction of saturated units. */
  readonly saturation: number;
  /** Fraction of units with activation ≤ 1e-6 on every example. */
  readonly dead: number;
}

/**
 * ReLU saturation of every ReLU hidden layer on the inputs `x` (n rows), docs/methods.md §12.1: the
 * fraction of unit activations ≤ {@link SATURATION_THRESHOLD} averaged over the examples, and the
 * fraction of units that are ≤ it on every example (dead units); then the same over all ReLU units of
 * the network (`layer: null`, last). Layers with another activation (tanh, linear) are left out; a
 * network without ReLU layers gives an empty list.
 */
export async function reluSaturation(
  engine: Pick<Engine, 'activations' | 'model'>,
  params: Float32Array,
  x: Float32Array,
  n: number,
  options: { readonly chunk?: number } = {},
): Promise<LayerSaturation[]> {
  const layers = engine.model.layers.slice(0, -1).filter((l) => l.activation === 'relu');
  if (layers.length === 0) return [];
  if (!(n > 0)) throw new Error('reluSaturation: no examples');
  const chunk = options.chunk ?? CHUNK;
  const inDim = x.length / n;
  const saturated = layers.map(() => 0);
  const alive = layers.map((l) => new Uint8Array(l.outputs));
  for (let start = 0; start < n; start += chunk) {
    const rows = Math.min(chunk, n - start);
    const acts = await engine.activations(params, x.subarray(start * inDim, (start + rows) * inDim), rows);
    layers.forEach((l, li) => {
      const a = acts.get(l.name);
      if (!a) throw new Error(`reluSaturation: the engine returned no activations for ${l.name}`);
      const live = alive[li] as Uint8Array;
      let count = 0;
      for (let r = 0; r < rows; r++) {
        for (let j = 0; j < l.outputs; j++) {
          if ((a[r * l.outputs + j] as number) <= SATURATION_THRESHOLD) count++;
          else live[j] = 1;
        }
      }
      saturated[li] = (saturated[li] as number) + count;
    });
  }
  const out: LayerSaturation[] = layers.map((l, li) => ({
    layer: l.name,
    units: l.outputs,
    saturation: (saturated[li] as number) / (n * l.outputs),
    dead: deadCount(alive[li] as Uint8Array) / l.outputs,
  }));
  const units = layers.reduce((s, l) => s + l.outputs, 0);
  out.push({
    layer: null,
    units,
    saturation: saturated.reduce((s, c) => s + c, 0) / (n * units),
    dead: alive.reduce((s, live) => s + deadCount(live), 0) / units,
  });
  return out;
}

function deadCount(alive: Uint8Array): number {
  let dead = 0;
  for (const a of alive) if (a === 0) dead++;
  return dead;
}

/** L2 norm of every tensor of the layout (in layout order) and of all parameters (`name: null`, last). */
export function weightNorms(
  layout: ParameterLayout,
  params: Float32Array,
): { readonly name: string | null; readonly norm: number }[] {
  if (params.length !== layout.size) {
    throw new Error(`weightNorms: params has ${params.length} values, the layout ${layout.size}`);
  }
  let total = 0;
  const out: { name: string | null; norm: number }[] = layout.tensors.map((t) => {
    let ss = 0;
    for (let i = t.offset; i < t.offset + t.size; i++) ss += (params[i] as number) ** 2;
    total += ss;
    return { name: t.name, norm: Math.sqrt(ss) };
  });
  out.push({ name: null, norm: Math.sqrt(total) });
  return out;
}

/** Options of {@link measureSharpness}: a {@link SharpnessSpec} without its schedule and subset. */
export interface SharpnessOptions {
  /** Eigenvalues wanted, largest first. Default 1 (power iteration: must be 1). */
  readonly topK?: number;
  /** Default `lanczos`. */
  readonly method?: 'lanczos' | 'power';
  /** Most Hessian-vector products per eigenproblem. Default 50 (Lanczos) or 100 (power). */
  readonly steps?: number;
  /** Stopping tolerance. Default 1e-4 (Lanczos residual) or 1e-3 (power, relative change). */
  readonly tol?: number;
  /** Hutchinson probes; 0 (default) skips the trace. */
  readonly probes?: number;
  /** Seed of the start vectors and probes (docs/methods.md §12.2). Default 0. */
  readonly seed?: number;
  /** Rows per Hessian-vector product call. Default 2048. */
  readonly chunk?: number;
}

/** What {@link measureSharpness} found at one state. */
export interface SharpnessMeasurement {
  /** Examples of the training loss whose Hessian was measured. */
  readonly examples: number;
  readonly method: 'lanczos' | 'power';
  /** The top-k eigenvalues of H, largest (algebraic) first; power iteration: the one of largest magnitude. */
  readonly eigenvalues: number[];
  /** ‖Hy − θy‖ of each eigenvalue's vector (an eigenvalue of H lies within it). */
  readonly residuals: number[];
  /** Whether every eigenvalue met the stopping rule within `steps`. */
  readonly converged: boolean;
  /** λ_max(P⁻¹H) with P Adam's preconditioner at this state (Adam/AdamW after ≥ 1 update); else null. */
  readonly preconditioned: number | null;
  /** The learning rate η the threshold is computed with. */
  readonly lr: number;
  /**
   * The optimizer's stability threshold at η (`stabilityThreshold`): compare it with `eigenvalues[0]`
   * for SGD, with `preconditioned` for Adam/AdamW. Null when η ≤ 0.
   */
  readonly threshold: number | null;
  /** What the threshold bounds: `sharpness` (SGD) or `preconditioned` (Adam/AdamW). */
  readonly thresholdOf: 'sharpness' | 'preconditioned';
  /** Hutchinson's estimate of tr(H) (with `probes` > 0); stderr is NaN with one probe. */
  readonly trace: { readonly mean: number; readonly stderr: number; readonly probes: number } | null;
}

/** A Hessian-vector product that was not finite (weights on their way to a divergence). */
class NonFiniteHvp extends Error {}

/**
 * Sharpness of the mean training loss over the examples `set` at the state (`params`, `opt`)
 * (docs/methods.md §12.2): the top-k eigenvalues of H by {@link lanczos} (or {@link powerIteration})
 * on `engineHvp`, with start vectors from seed `seed` (default 0); for Adam/AdamW after at least one
 * update, λ_max(P⁻¹H) with P from the state's second moments (`adamPreconditioner`) by the same
 * method; the optimizer's threshold at `lr`; and with `probes` > 0 Hutchinson's trace. A non-finite
 * Hessian-vector product makes the eigenvalues (and trace) NaN instead of failing.
 */
export async function measureSharpness(
  engine: Pick<Engine, 'hvp'>,
  set: CurveData,
  state: { readonly params: Float32Array; readonly opt?: OptimizerState },
  optimizer: OptimizerSpec,
  lr: number,
  options: SharpnessOptions = {},
): Promise<SharpnessMeasurement> {
  const method = options.method ?? 'lanczos';
  const topK = options.topK ?? 1;
  const steps = options.steps ?? (method === 'lanczos' ? 50 : 100);
  const tol = options.tol ?? (method === 'lanczos' ? 1e-4 : 1e-3);
  const probes = options.probes ?? 0;
  const seed = options.seed ?? 0;
  if (method === 'power' && topK !== 1) {
    throw new Error(`measureSharpness: power iteration finds one eigenvalue, got topK ${topK}`);
  }
  const dim = state.params.length;
  const exact = engineHvp(engine, state.params, chunks(set, options.chunk));
  const hvp: HvpFn = async (v) => {
    const out = await exact(v);
    for (const x of out) if (x - x !== 0) throw new NonFiniteHvp('non-finite Hessian-vector product');
    return out;
  };
  const top = async (op: HvpFn, k: number) => {
    if (method === 'power') {
      const r = await powerIteration(op, dim, { iterations: steps, tol, seed });
      return { values: [r.eigenvalue], residuals: [r.residual], converged: r.converged };
    }
    const r = await lanczos(op, dim, { k, steps, tol, seed });
    return { values: [...r.values], residuals: [...r.residuals], converged: r.converged };
  };
  const nonFinite = async <T>(f: () => Promise<T>, fallback: T): Promise<T> => {
    try {
      return await f();
    } catch (e) {
      if (e instanceof NonFiniteHvp) return fallback;
      throw e;
    }
  };
  const nan = { values: Array.from({ length: topK }, () => Number.NaN), residuals: [], converged: false };
  const eig = await nonFinite(() => top(hvp, topK), nan);
  const adam = optimizer.kind !== 'sgd';
  let preconditioned: number | null = null;
  if (adam && state.opt && state.opt.step >= 1 && state.opt.slots.length >= 2) {
    const p = adamPreconditioner(state.opt, optimizer);
    preconditioned = (await nonFinite(() => top(preconditionedHvp(hvp, p), 1), nan)).values[0] as number;
  }
  const trace =
    probes > 0
      ? await nonFinite(
          async () => {
            const t = await hutchinsonTrace(hvp, dim, { probes, seed });
            return { mean: t.mean, stderr: t.stderr, probes };
          },
          { mean: Number.NaN, stderr: Number.NaN, probes },
        )
      : null;
  return {
    examples: set.n,
    method,
    eigenvalues: eig.values,
    residuals: eig.residuals.length > 0 ? eig.residuals : eig.values.map(() => Number.NaN),
    converged: eig.converged,
    preconditioned,
    lr,
    threshold: lr > 0 ? stabilityThreshold(optimizer, lr) : null,
    thresholdOf: adam ? 'preconditioned' : 'sharpness',
    trace,
  };
}

/** The first `examples` examples of the train split (all of it when absent or larger). */
export function trainSubset(train: CurveData, examples: number | undefined): CurveData {
  return firstRows(train, examples ?? train.n);
}

/** The diagnostics rows (§12.1) of one state. */
async function diagnosticRows(input: ProbeInput): Promise<DiagnosticRow[]> {
  const { spec, engine, data, state, step, epoch } = input;
  const set = trainSubset(data.train, spec.diagnostics?.examples);
  const row = (
    metric: string,
    layer: string | null,
    examples: number | null,
    value: number,
  ): DiagnosticRow => ({
    step,
    epoch,
    metric,
    layer,
    rank: null,
    examples,
    value,
  });
  const rows: DiagnosticRow[] = [];
  const grad = await gradientNorm(engine, state.params, set);
  rows.push(row(M.gradNorm, null, set.n, grad.norm));
  for (const s of await reluSaturation(engine, state.params, set.x, set.n)) {
    rows.push(row(M.saturation, s.layer, set.n, s.saturation));
    rows.push(row(M.dead, s.layer, set.n, s.dead));
  }
  for (const w of weightNorms(engine.model.layout, state.params))
    rows.push(row(M.weightNorm, w.name, null, w.norm));
  return rows;
}

/** The sharpness rows (§12.2) of one state. */
async function sharpnessRows(input: ProbeInput, sharpness: SharpnessSpec): Promise<DiagnosticRow[]> {
  const { spec, engine, data, state, step, epoch, lr } = input;
  const set = trainSubset(data.train, sharpness.examples);
  const m = await measureSharpness(engine, set, state, spec.optimizer, lr, sharpness);
  const row = (metric: string, rank: number | null, value: number, examples: number | null = set.n) => ({
    step,
    epoch,
    metric,
    layer: null,
    rank,
    examples,
    value,
  });
  const rows: DiagnosticRow[] = [];
  m.eigenvalues.forEach((v, k) => rows.push(row(M.eigenvalue, k, v)));
  m.residuals.forEach((v, k) => rows.push(row(M.eigenvalueResidual, k, v)));
  if (m.preconditioned !== null) rows.push(row(M.preconditioned, null, m.preconditioned));
  rows.push(row(M.lr, null, m.lr, null));
  if (m.threshold !== null) rows.push(row(M.threshold, null, m.threshold, null));
  if (m.trace) {
    rows.push(row(M.trace, null, m.trace.mean));
    rows.push(row(M.traceStderr, null, m.trace.stderr));
  }
  return rows;
}

/**
 * The {@link RunProbe} of twinscope's runs: at a diagnostics step the rows of §12.1 (gradient norm,
 * saturation and dead fraction per ReLU layer and overall, weight norms per tensor and overall), at a
 * sharpness step those of §12.2 (eigenvalues and their residuals, preconditioned sharpness, η and the
 * threshold, the trace). Pass it to `trainRun`, `forkRun` or `trainForkGroup` for specs with
 * `diagnostics` or `sharpness`.
 */
export const trainingProbe: RunProbe = async (input) => {
  const rows = input.diagnostics && input.spec.diagnostics ? await diagnosticRows(input) : [];
  if (input.sharpness && input.spec.sharpness)
    rows.push(...(await sharpnessRows(input, input.spec.sharpness)));
  return rows;
};
