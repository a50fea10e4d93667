/**
 * Compare two imported models of one architecture (docs/methods.md §2, §8): weight-space distances,
 * the linear interpolation curve with its loss and error barriers under both conventions, and linear
 * CKA per hidden output. One {@link ImportedSession} (the architecture of A) evaluates every point.
 *
 * Normalization statistics at every point of the curve (src/onnx/norm-stats.ts): recomputed on a
 * data pass over the train split (default), copied (interpolated like every other weight), or set by
 * REPAIR; the mode is recorded (`normalization`).
 *
 * Permutation alignment (docs/methods.md §7, docs/merging.md "Permutation specs"): with a spec
 * (inferred from A's graph by src/onnx/permutation-spec.ts and checked on the model, or given as a
 * JSON file), B is aligned to A by weight matching and by activation matching, and the distances
 * and the interpolation curves are measured again from A to each aligned B, with the same
 * normalization statistics handling as the plain path.
 */
import { firstRows } from '../data/rows.js';
import type { Split } from '../data/types.js';
import {
  activationMatching,
  applyPermutations,
  type PermutationSpec,
  weightMatching,
} from '../measure/align.js';
import { alphaGrid, type BarrierConvention, barrier, interpolate } from '../measure/barrier.js';
import { cka } from '../measure/cka.js';
import { cosineSimilarity, l2Distance, normalizedL2, perTensorL2 } from '../measure/distance.js';
import { checkSameArchitecture, type ImportedModel } from './import-model.js';
import { type NormMode, NormStats } from './norm-stats.js';
import { checkPermutationSpec, inferPermutationSpec } from './permutation-spec.js';
import { OnnxModelError } from './proto.js';
import { ImportedSession } from './session.js';

/** Labelled examples: flat features [n, d] (reshaped to the model's input shape when d matches) and one-hot targets. */
export interface CompareData {
  /** A name for reports (`mnist`, a data-spec file). */
  readonly name: string;
  readonly train: Split;
  readonly test: Split;
}

/** Options of {@link compareModels}. */
export interface CompareOptions {
  /** Points of the α grid from 0 to 1 (default 11). */
  readonly alphas?: number;
  /** Use the first N examples of each split for the curve (default: all). */
  readonly examples?: number;
  /** Examples of the CKA (the first of the test split, or of train when there is no test set); default 500. */
  readonly ckaExamples?: number;
  /** Intra-op threads of the session (default 1). */
  readonly threads?: number;
  /**
   * Normalization statistics at each point (src/onnx/norm-stats.ts): `recompute` (default) on a
   * data pass over the train split, `copy` (interpolated like the other weights), or `repair`.
   * Only graphs with BatchNormalization nodes are affected, except `repair`, which also repairs
   * the dense/convolutional layers of a graph without normalization layers.
   */
  readonly normalization?: NormMode;
  /** Train examples of the statistics pass (the first N; default: those of the curve, {@link CompareOptions.examples}). */
  readonly normExamples?: number;
  /** Examples per batch of the recompute pass (default 128). */
  readonly normBatch?: number;
  /**
   * Alignment methods of B to A (default both, `weight` and `activation`; empty: none). Needs a
   * permutation spec: `permutationSpec`, else one inferred from A's graph.
   */
  readonly align?: readonly AlignMethod[];
  /**
   * A user permutation spec (src/onnx/permutation-spec.ts `readPermutationSpecFile`); checked on A
   * like an inferred one, and refused ({@link OnnxModelError}) when a permutation changes A's logits.
   */
  readonly permutationSpec?: PermutationSpec;
  /** Train examples of activation matching (the first N; default 1000). */
  readonly alignExamples?: number;
}

/** How B is aligned to A. */
export type AlignMethod = 'weight' | 'activation';

/** The comparison of A with B aligned to it by one method. */
export interface AlignedComparison {
  readonly method: AlignMethod;
  /** ‖A − π(B)‖₂. */
  readonly l2: number;
  readonly normalizedL2: number;
  readonly train: SplitCurve;
  readonly test: SplitCurve | null;
  /** Weight matching: sweeps and convergence; activation matching: examples. */
  readonly sweeps?: number;
  readonly converged?: boolean;
  readonly examples?: number;
}

/** Permutation alignment of B to A: the spec used and one comparison per method. */
export interface CompareAlignment {
  /** Where the spec came from. */
  readonly spec: 'inferred' | 'file';
  /** Permutation groups of the spec and the units they permute in all. */
  readonly groups: number;
  readonly units: number;
  readonly weight: AlignedComparison | null;
  readonly activation: AlignedComparison | null;
}

/** A barrier under both conventions, for one curve. */
export interface BarrierPair {
  readonly linear: number;
  readonly midpointMean: number;
  /** α* of the linear convention (argmax of the curve). */
  readonly alphaStar: number;
}

/** The curve of one split. */
export interface SplitCurve {
  readonly examples: number;
  readonly loss: number[];
  /** Error rates 1 − accuracy. */
  readonly error: number[];
  readonly barrierLoss: BarrierPair;
  readonly barrierError: BarrierPair;
}

/** Everything `twinscope compare` measures. */
export interface CompareResult {
  readonly a: string;
  readonly b: string;
  readonly data: string;
  readonly parameters: number;
  readonly l2: number;
  readonly normalizedL2: number;
  readonly cosine: number;
  /** ‖a_t − b_t‖ per weight tensor (canonical names, layout order). */
  readonly l2PerTensor: Record<string, number>;
  readonly alphas: number[];
  readonly train: SplitCurve;
  /** Null when the data has no test split. */
  readonly test: SplitCurve | null;
  /** Linear CKA (biased, Kornblith et al. 2019) per hidden output, A's vs B's. */
  readonly cka: Record<string, number>;
  readonly ckaExamples: number;
  readonly ckaSplit: 'train' | 'test';
  /**
   * How normalization statistics were set at each point (null: the graph has no BatchNorm and no
   * REPAIR was asked for).
   */
  readonly normalization: NormMode | null;
  /** Train examples of the statistics pass (null when no pass ran). */
  readonly normExamples: number | null;
  /** B aligned to A (null when not measured; see `alignmentNote`). */
  readonly alignment: CompareAlignment | null;
  /** Why alignment was not measured (no spec could be inferred, …), or null. */
  readonly alignmentNote: string | null;
}

/**
 * Check that `data` fits the architecture of `model` before any heavy work: features per example
 * (flat features are reshaped to the input shape when the counts agree) and the number of classes.
 */
async function checkDataFits(
  session: ImportedSession,
  data: CompareData,
  weights: Float32Array,
): Promise<void> {
  const split = data.train.n > 0 ? data.train : data.test;
  const d = split.x.length / Math.max(1, split.n);
  const shape = session.architecture.inputShape;
  if (d !== session.features) {
    throw new OnnxModelError(
      `${data.name}: examples have ${d} features, the model takes [${shape.join(', ')}] (${session.features} values)`,
    );
  }
  const z = await session.logits(weights, split.x.subarray(0, d), 1);
  const classes = split.y.length / Math.max(1, split.n);
  if (z.cols !== classes) {
    throw new OnnxModelError(
      `${data.name}: the data has ${classes} classes, the model outputs ${z.cols} values`,
    );
  }
}

async function splitCurve(
  session: ImportedSession,
  points: readonly Float32Array[],
  alphas: readonly number[],
  split: Split,
): Promise<SplitCurve> {
  const loss: number[] = [];
  const error: number[] = [];
  for (const p of points) {
    const r = await session.evaluate(p, split.x, split.y, split.n);
    loss.push(r.loss);
    error.push(r.count > 0 ? 1 - r.correct / r.count : Number.NaN);
  }
  const pair = (values: number[]): BarrierPair => {
    const lin = barrier(values, alphas, 'linear');
    const mid = barrier(values, alphas, 'midpoint-mean' satisfies BarrierConvention);
    return { linear: lin.value, midpointMean: mid.value, alphaStar: lin.alphaStar };
  };
  return { examples: split.n, loss, error, barrierLoss: pair(loss), barrierError: pair(error) };
}

/** Compare models `a` and `b` (same architecture, else an {@link OnnxModelError} naming the difference) on `data`. */
export async function compareModels(
  a: ImportedModel,
  b: ImportedModel,
  data: CompareData,
  options: CompareOptions = {},
): Promise<CompareResult> {
  checkSameArchitecture(a, b);
  const alphas = alphaGrid(options.alphas ?? 11);
  const session = await ImportedSession.create(a.architecture, options.threads ?? 1);
  try {
    await checkDataFits(session, data, a.weights);
    const mode = options.normalization ?? 'recompute';
    const norm = await NormStats.create(a.architecture, {
      threads: options.threads ?? 1,
      ...(options.normBatch !== undefined && { batch: options.normBatch }),
    });
    const statsData = firstRows(
      data.train.n > 0 ? data.train : data.test,
      options.normExamples ?? options.examples,
    );
    let normalization: NormMode | null = null;
    /** The points of the path from A to `bw`, normalization statistics set at each (`mode`). */
    const pathPoints = async (bw: Float32Array): Promise<Float32Array[]> => {
      let points = alphas.map((alpha) => interpolate(a.weights, bw, alpha));
      if (mode === 'repair') {
        const ma = await norm.endpointMoments(a.weights, statsData.x, statsData.n);
        const mb = await norm.endpointMoments(bw, statsData.x, statsData.n);
        const repaired: Float32Array[] = [];
        for (const [i, p] of points.entries()) {
          const alpha = alphas[i] as number;
          repaired.push(
            await norm.repair(
              p,
              [
                { moments: ma, coefficient: 1 - alpha },
                { moments: mb, coefficient: alpha },
              ],
              statsData.x,
              statsData.n,
            ),
          );
        }
        points = repaired;
        normalization = 'repair';
      } else if (norm.hasBatchNorm) {
        if (mode === 'recompute') {
          const recomputed: Float32Array[] = [];
          for (const p of points) recomputed.push(await norm.recompute(p, statsData.x, statsData.n));
          points = recomputed;
        }
        normalization = mode;
      }
      return points;
    };
    const curves = async (bw: Float32Array) => {
      const points = await pathPoints(bw);
      const train = await splitCurve(session, points, alphas, firstRows(data.train, options.examples));
      const test =
        data.test.n > 0
          ? await splitCurve(session, points, alphas, firstRows(data.test, options.examples))
          : null;
      return { train, test };
    };
    let plain: Awaited<ReturnType<typeof curves>>;
    let aligned: { alignment: CompareAlignment | null; note: string | null };
    try {
      plain = await curves(b.weights);
      aligned = await alignModels(a, b, data, session, options, curves);
    } finally {
      await norm.dispose();
    }
    const { train, test } = plain;
    const ckaSplit = data.test.n > 0 ? 'test' : 'train';
    const ckaData = firstRows(ckaSplit === 'test' ? data.test : data.train, options.ckaExamples ?? 500);
    const cks: Record<string, number> = {};
    if (session.architecture.hidden.length > 0 && ckaData.n > 1) {
      const ha = await session.hidden(a.weights, ckaData.x, ckaData.n);
      const hb = await session.hidden(b.weights, ckaData.x, ckaData.n);
      for (const [name, va] of ha) {
        const vb = hb.get(name);
        if (vb) cks[name] = cka(va, vb, { kernel: 'linear' });
      }
    }
    return {
      a: a.source,
      b: b.source,
      data: data.name,
      parameters: a.weights.length,
      l2: l2Distance(a.weights, b.weights),
      normalizedL2: normalizedL2(a.weights, b.weights),
      cosine: cosineSimilarity(a.weights, b.weights),
      l2PerTensor: perTensorL2(a.weights, b.weights, a.architecture.layout),
      alphas,
      train,
      test,
      cka: cks,
      ckaExamples: ckaData.n,
      ckaSplit,
      normalization,
      normExamples: normalization === null || normalization === 'copy' ? null : statsData.n,
      alignment: aligned.alignment,
      alignmentNote: aligned.note,
    };
  } finally {
    await session.dispose();
  }
}

/**
 * B aligned to A by each method of `options.align`, and the distances and curves of A to each aligned
 * B (`curves`: the same path evaluation as the plain comparison). Without a usable spec the
 * alignment is null and the note says why; a user spec that fails its check is an error.
 */
async function alignModels(
  a: ImportedModel,
  b: ImportedModel,
  data: CompareData,
  session: ImportedSession,
  options: CompareOptions,
  curves: (bw: Float32Array) => Promise<{ train: SplitCurve; test: SplitCurve | null }>,
): Promise<{ alignment: CompareAlignment | null; note: string | null }> {
  const methods = options.align ?? ['weight', 'activation'];
  if (methods.length === 0) return { alignment: null, note: 'not measured (--align none)' };
  let spec: PermutationSpec;
  if (options.permutationSpec) {
    spec = options.permutationSpec;
    await checkPermutationSpec(a, spec, { session });
  } else {
    try {
      spec = inferPermutationSpec(a);
      await checkPermutationSpec(a, spec, { session });
    } catch (e) {
      if (e instanceof OnnxModelError) return { alignment: null, note: `not measured: ${e.message}` };
      throw e;
    }
  }
  if (spec.perms.length === 0) {
    return { alignment: null, note: 'not measured: the model has no hidden units or channels to permute' };
  }
  const layout = a.architecture.layout;
  const compared = async (
    method: AlignMethod,
    bAligned: Float32Array,
    extra: Partial<AlignedComparison>,
  ): Promise<AlignedComparison> => ({
    method,
    l2: l2Distance(a.weights, bAligned),
    normalizedL2: normalizedL2(a.weights, bAligned),
    ...(await curves(bAligned)),
    ...extra,
  });
  let weight: AlignedComparison | null = null;
  let activation: AlignedComparison | null = null;
  if (methods.includes('weight')) {
    const r = weightMatching(a.weights, b.weights, layout, { seed: 0, spec });
    weight = await compared('weight', r.aligned, { sweeps: r.sweeps, converged: r.converged });
  }
  if (methods.includes('activation')) {
    const set = firstRows(data.train.n > 0 ? data.train : data.test, options.alignExamples ?? 1000);
    const names = [...new Set((spec.hidden ?? []).map((h) => h.name))];
    const values = async (w: Float32Array) =>
      new Map(
        [...(names.length > 0 ? await session.hidden(w, set.x, set.n, names) : [])].map(([k, v]) => [
          k,
          v.data,
        ]),
      );
    const perms = activationMatching(await values(a.weights), await values(b.weights), set.n, {
      spec,
      weights: { a: a.weights, b: b.weights, layout },
    });
    activation = await compared('activation', applyPermutations(b.weights, layout, perms, spec), {
      examples: set.n,
    });
  }
  return {
    alignment: {
      spec: options.permutationSpec ? 'file' : 'inferred',
      groups: spec.perms.length,
      units: spec.perms.reduce((sum, g) => sum + g.size, 0),
      weight,
      activation,
    },
    note: null,
  };
}
