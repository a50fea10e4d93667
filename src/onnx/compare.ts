/**
 * Compare two imported models of one architecture (docs/methods.md §2, §8): weight-space distances,
 * the linear interpolation curve with its loss and error barriers under both conventions, and linear
 * CKA per hidden output. One {@link ImportedSession} (the architecture of A) evaluates every point.
 *
 * Not yet here (issue 15, later parts): permutation alignment (the aligned values are null), and
 * BatchNorm-aware interpolation — running statistics are interpolated like every other weight
 * (`normalization: 'interpolated'` is recorded when the graph has normalization nodes).
 */
import type { Split } from '../data/types.js';
import { alphaGrid, type BarrierConvention, barrier, interpolate } from '../measure/barrier.js';
import { cka } from '../measure/cka.js';
import { cosineSimilarity, l2Distance, normalizedL2, perTensorL2 } from '../measure/distance.js';
import { checkSameArchitecture, type ImportedModel } from './import-model.js';
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
  /** How normalization statistics were handled along the path (null: the graph has none). */
  readonly normalization: 'interpolated' | null;
}

/** Ops whose running statistics interpolate naively until BatchNorm-aware evaluation lands. */
const NORMALIZATION = /^(BatchNormalization|InstanceNormalization)\(/;

function head(split: Split, n: number | undefined): Split {
  if (n === undefined || n >= split.n) return split;
  const d = split.x.length / Math.max(1, split.n);
  const c = split.y.length / Math.max(1, split.n);
  return { x: split.x.subarray(0, n * d), y: split.y.subarray(0, n * c), n };
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
    const points = alphas.map((alpha) => interpolate(a.weights, b.weights, alpha));
    const train = await splitCurve(session, points, alphas, head(data.train, options.examples));
    const test =
      data.test.n > 0 ? await splitCurve(session, points, alphas, head(data.test, options.examples)) : null;
    const ckaSplit = data.test.n > 0 ? 'test' : 'train';
    const ckaData = head(ckaSplit === 'test' ? data.test : data.train, options.ckaExamples ?? 500);
    const cks: Record<string, number> = {};
    if (session.architecture.hidden.length > 0 && ckaData.n > 1) {
      const ha = await session.hidden(a.weights, ckaData.x, ckaData.n);
      const hb = await session.hidden(b.weights, ckaData.x, ckaData.n);
      for (const [name, va] of ha) {
        const vb = hb.get(name);
        if (vb) cks[name] = cka(va, vb, { kernel: 'linear' });
      }
    }
    const hasNorm = a.architecture.signature.some((line) => NORMALIZATION.test(line));
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
      normalization: hasNorm ? 'interpolated' : null,
    };
  } finally {
    await session.dispose();
  }
}
