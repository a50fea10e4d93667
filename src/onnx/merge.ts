/**
 * `twinscope merge`: merge imported models of one architecture (docs/merging.md), optionally after
 * aligning every model to the first (the reference), with normalization statistics recomputed,
 * copied or REPAIRed (src/onnx/norm-stats.ts), and the merged weights written back as a standard
 * ONNX model (the imported graph with its weights as initializers again).
 *
 * Alignment uses the permutation spec of the reference's graph (inferred by
 * src/onnx/permutation-spec.ts, or a user spec), checked on the model (a random permutation of
 * every group must leave its logits unchanged), and the weight or activation matching of
 * src/measure/align.ts. A graph without a usable spec is refused (exit code 2) naming the node.
 */
import { firstRows } from '../data/rows.js';
import type { Split } from '../data/types.js';
import {
  activationMatching,
  applyPermutations,
  type PermutationSpec,
  weightMatching,
} from '../measure/align.js';
import { toolkitVersion } from '../version.js';
import type { CompareData } from './compare.js';
import { checkSameArchitecture, type ImportedModel } from './import-model.js';
import {
  dareMerge,
  greedySoup,
  linearMerge,
  type SoupStep,
  slerpMerge,
  taskArithmetic,
  tiesMerge,
} from './merge-methods.js';
import { type NormMode, NormStats, type RepairEndpoint } from './norm-stats.js';
import { checkPermutationSpec, inferPermutationSpec } from './permutation-spec.js';
import { decodeModel, encodeModel, floatTensor, type GraphProto, OnnxModelError } from './proto.js';
import { ImportedSession } from './session.js';

/** The merge methods of `twinscope merge`. */
export const MERGE_METHODS = [
  'linear',
  'slerp',
  'task-arithmetic',
  'ties',
  'dare',
  'dare-ties',
  'greedy-soup',
] as const;
export type MergeMethod = (typeof MERGE_METHODS)[number];

/** How models are aligned to the reference before merging. */
export type MergeAlignment = 'weight' | 'activation' | 'none';

/** Methods that merge task vectors relative to a base model. */
const BASE_METHODS: ReadonlySet<MergeMethod> = new Set(['task-arithmetic', 'ties', 'dare', 'dare-ties']);

/** Options of {@link mergeModels}. */
export interface MergeOptions {
  readonly method: MergeMethod;
  /** Per-model weights: linear (normalized to sum 1), task-arithmetic / TIES / DARE (w_k). */
  readonly weights?: readonly number[];
  /** SLERP's t (default 0.5). */
  readonly t?: number;
  /** The base model θ₀ of task-arithmetic, TIES and DARE. */
  readonly base?: ImportedModel;
  /** λ (default 1). */
  readonly scale?: number;
  /** TIES: fraction kept by magnitude (default 0.2); DARE: keep probability 1 − p (default 0.5). */
  readonly density?: number;
  /** Seed of DARE's drop and of weight matching's visiting order (default 0). */
  readonly seed?: number;
  /** Align every model to the first (default 'none'). */
  readonly align?: MergeAlignment;
  /** A user permutation spec for `align` (default: inferred from the first model's graph). */
  readonly permutationSpec?: PermutationSpec;
  /** Train examples of activation matching (default 1000). */
  readonly alignExamples?: number;
  /** Normalization statistics of the merged model (default 'recompute'). */
  readonly normalization?: NormMode;
  /** Train examples of the statistics pass and of REPAIR (default: those of the evaluation). */
  readonly normExamples?: number;
  /** Examples per batch of the recompute pass (default 128). */
  readonly normBatch?: number;
  /** Evaluate on the first N examples of each split (default: all). */
  readonly examples?: number;
  /** Intra-op threads (default 1). */
  readonly threads?: number;
}

/** Loss and accuracy of one model on one split. */
export interface SplitScore {
  readonly examples: number;
  readonly loss: number;
  readonly accuracy: number;
}

/** Scores of one model on the data. */
export interface ModelScore {
  readonly source: string;
  readonly train: SplitScore;
  /** Null when the data has no test split. */
  readonly test: SplitScore | null;
}

/** Everything `twinscope merge` computes. */
export interface MergeResult {
  readonly method: MergeMethod;
  readonly models: readonly string[];
  readonly base: string | null;
  readonly data: string;
  /** The merged weights (layout of the first model), statistics set per `normalization`. */
  readonly weights: Float32Array;
  /** Coefficients of the models (linear weights, SLERP's 1 − t and t, soup members uniform; task-vector methods: w_k). */
  readonly coefficients: readonly number[];
  readonly parameters: Readonly<Record<string, number | boolean | null>>;
  readonly align: MergeAlignment;
  /** Per aligned model (index ≥ 1): sweeps of weight matching, or null. */
  readonly alignment: readonly { model: string; sweeps: number | null; converged: boolean | null }[];
  /** How normalization statistics were set (null: no BatchNorm and no REPAIR). */
  readonly normalization: NormMode | null;
  readonly normExamples: number | null;
  readonly endpoints: readonly ModelScore[];
  readonly merged: ModelScore;
  /** Greedy soup only: the steps (held-out accuracy on the test split, else train) and the members. */
  readonly soup: {
    readonly split: 'train' | 'test';
    readonly steps: readonly SoupStep[];
    readonly ingredients: readonly number[];
  } | null;
}

/** The permutation spec of `--align`: the user's or the inferred one, checked on the model. */
async function alignmentSpec(
  model: ImportedModel,
  session: ImportedSession,
  user: PermutationSpec | undefined,
): Promise<PermutationSpec> {
  let spec: PermutationSpec;
  try {
    spec = user ?? inferPermutationSpec(model);
    await checkPermutationSpec(model, spec, { session });
  } catch (e) {
    if (e instanceof OnnxModelError) {
      throw new OnnxModelError(
        `--align: ${e.message}${user ? '' : ' (give a permutation spec with --perm-spec, or use --align none)'}`,
      );
    }
    throw e;
  }
  if (spec.perms.length === 0) {
    throw new OnnxModelError(`--align: ${model.source} has no hidden units or channels to permute`);
  }
  return spec;
}

async function score(
  session: ImportedSession,
  source: string,
  w: Float32Array,
  train: Split,
  test: Split,
): Promise<ModelScore> {
  const one = async (s: Split): Promise<SplitScore> => {
    const r = await session.evaluate(w, s.x, s.y, s.n);
    return { examples: s.n, loss: r.loss, accuracy: r.count > 0 ? r.correct / r.count : Number.NaN };
  };
  return { source, train: await one(train), test: test.n > 0 ? await one(test) : null };
}

/** Check the options against the method before any work; throws {@link OnnxModelError} naming the option. */
export function checkMergeOptions(count: number, options: MergeOptions): void {
  const { method } = options;
  const fail = (m: string) => {
    throw new OnnxModelError(m);
  };
  if (!(MERGE_METHODS as readonly string[]).includes(method)) {
    fail(`--method: expected one of ${MERGE_METHODS.join(', ')}, got '${method}'`);
  }
  const base = BASE_METHODS.has(method);
  if (base && !options.base)
    fail(`--method ${method} merges task vectors relative to a base model: give --base BASE`);
  if (!base && options.base)
    fail(`--base applies to task-arithmetic, ties, dare and dare-ties, not to ${method}`);
  if (count < (base ? 1 : 2)) fail(`--method ${method} needs at least ${base ? 1 : 2} models, got ${count}`);
  if (method === 'slerp' && count !== 2) fail(`--method slerp merges exactly two models, got ${count}`);
  if (options.t !== undefined && method !== 'slerp') fail(`--t applies to --method slerp only`);
  if (options.t !== undefined && !(options.t >= 0 && options.t <= 1))
    fail(`--t must be in [0, 1], got ${options.t}`);
  if (options.density !== undefined && !['ties', 'dare', 'dare-ties'].includes(method)) {
    fail(`--density applies to ties, dare and dare-ties only`);
  }
  if (options.density !== undefined && !(options.density > 0 && options.density <= 1)) {
    fail(`--density must be in (0, 1], got ${options.density}`);
  }
  if (options.scale !== undefined && !base)
    fail(`--scale applies to task-arithmetic, ties, dare and dare-ties only`);
  if (options.weights) {
    if (method === 'slerp' || method === 'greedy-soup')
      fail(`--weights does not apply to --method ${method}`);
    if (options.weights.length !== count) {
      fail(`--weights: ${options.weights.length} values for ${count} models`);
    }
    if (options.weights.some((w) => !Number.isFinite(w)))
      fail(`--weights: every weight must be a finite number`);
    if (method === 'linear' && options.weights.reduce((a, b) => a + b, 0) === 0) {
      fail(`--weights: the weights sum to 0; linear merging divides by their sum`);
    }
  }
}

/**
 * Merge `models` (one architecture; the first is the reference) on `data` (see the module comment
 * and {@link MergeOptions}); the endpoints are scored as they are, the merged model after its
 * normalization statistics are set.
 */
export async function mergeModels(
  models: readonly ImportedModel[],
  data: CompareData,
  options: MergeOptions,
): Promise<MergeResult> {
  checkMergeOptions(models.length, options);
  const reference = (options.base ?? models[0]) as ImportedModel;
  for (const m of models) checkSameArchitecture(reference, m);
  const arch = reference.architecture;
  const train = firstRows(data.train, options.examples);
  const test = firstRows(data.test, options.examples);
  const stats = firstRows(
    data.train.n > 0 ? data.train : data.test,
    options.normExamples ?? options.examples,
  );
  const session = await ImportedSession.create(arch, options.threads ?? 1);
  const norm = await NormStats.create(arch, {
    threads: options.threads ?? 1,
    ...(options.normBatch !== undefined && { batch: options.normBatch }),
  });
  try {
    const features = session.features;
    const d = stats.x.length / Math.max(1, stats.n);
    if (d !== features) {
      throw new OnnxModelError(
        `${data.name}: examples have ${d} features, the model takes [${arch.inputShape.join(', ')}] (${features} values)`,
      );
    }
    const mode = options.normalization ?? 'recompute';
    if (mode === 'repair' && norm.repairLayers === 0) {
      throw new OnnxModelError(
        '--repair needs normalization layers (BatchNormalization) or dense/convolutional layers with a bias before an activation; this graph has neither',
      );
    }
    // Align every model to the first.
    const align = options.align ?? 'none';
    let weights = models.map((m) => m.weights);
    const alignment: { model: string; sweeps: number | null; converged: boolean | null }[] = [];
    if (align !== 'none') {
      const first = models[0] as ImportedModel;
      const layout = arch.layout;
      const spec = await alignmentSpec(first, session, options.permutationSpec);
      const nAct = Math.min(stats.n, options.alignExamples ?? 1000);
      const xAct = stats.x.subarray(0, nAct * features);
      const names = [...new Set((spec.hidden ?? []).map((h) => h.name))];
      const actsOf = async (w: Float32Array) =>
        new Map(
          [...(names.length > 0 ? await session.hidden(w, xAct, nAct, names) : [])].map(([k, v]) => [
            k,
            v.data,
          ]),
        );
      const actsA = align === 'activation' ? await actsOf(first.weights) : undefined;
      weights = [first.weights];
      for (const m of models.slice(1)) {
        if (align === 'weight') {
          const r = weightMatching(first.weights, m.weights, layout, { seed: options.seed ?? 0, spec });
          weights.push(r.aligned);
          alignment.push({ model: m.source, sweeps: r.sweeps, converged: r.converged });
        } else {
          const perms = activationMatching(
            actsA as Map<string, Float32Array>,
            await actsOf(m.weights),
            nAct,
            {
              spec,
              weights: { a: first.weights, b: m.weights, layout, seed: options.seed ?? 0 },
            },
          );
          weights.push(applyPermutations(m.weights, layout, perms, spec));
          alignment.push({ model: m.source, sweeps: null, converged: null });
        }
      }
    }
    const applyNorm = async (
      w: Float32Array,
      members: readonly number[],
      coefficients: readonly number[],
    ) => {
      if (mode === 'repair') {
        const endpoints: RepairEndpoint[] = [];
        for (const [i, k] of members.entries()) {
          endpoints.push({
            moments: await momentsOf(k),
            coefficient: coefficients[i] as number,
          });
        }
        return norm.repair(w, endpoints, stats.x, stats.n);
      }
      if (mode === 'recompute' && norm.hasBatchNorm) return norm.recompute(w, stats.x, stats.n);
      return w;
    };
    const momentCache = new Map<number, Awaited<ReturnType<NormStats['endpointMoments']>>>();
    const momentsOf = async (k: number) => {
      let m = momentCache.get(k);
      if (!m) {
        m = await norm.endpointMoments(weights[k] as Float32Array, stats.x, stats.n);
        momentCache.set(k, m);
      }
      return m;
    };
    const method = options.method;
    let merged: Float32Array;
    let coefficients: number[];
    let members = models.map((_, k) => k);
    let soup: MergeResult['soup'] = null;
    const parameters: Record<string, number | boolean | null> = {};
    if (method === 'linear') {
      const w = options.weights ?? models.map(() => 1);
      const total = w.reduce((a, b) => a + b, 0);
      coefficients = w.map((v) => v / total);
      merged = linearMerge(weights, w);
    } else if (method === 'slerp') {
      const t = options.t ?? 0.5;
      parameters.t = t;
      coefficients = [1 - t, t];
      merged = slerpMerge(weights[0] as Float32Array, weights[1] as Float32Array, t, arch.layout);
    } else if (method === 'greedy-soup') {
      const split = test.n > 0 ? test : train;
      const {
        weights: w,
        ingredients,
        steps,
      } = await greedySoup(weights, async (candidate, ms) => {
        const c = await applyNorm(
          candidate,
          ms,
          ms.map(() => 1 / ms.length),
        );
        const r = await session.evaluate(c, split.x, split.y, split.n);
        return r.correct / r.count;
      });
      soup = { split: test.n > 0 ? 'test' : 'train', steps, ingredients };
      members = ingredients;
      coefficients = ingredients.map(() => 1 / ingredients.length);
      merged = w;
    } else {
      const base = options.base as ImportedModel;
      const w = options.weights ?? models.map(() => 1);
      const scale = options.scale ?? 1;
      parameters.scale = scale;
      coefficients = [...w];
      if (method === 'task-arithmetic') merged = taskArithmetic(base.weights, weights, { scale, weights: w });
      else if (method === 'ties') {
        const density = options.density ?? 0.2;
        parameters.density = density;
        merged = tiesMerge(base.weights, weights, arch.layout, { scale, weights: w, density });
      } else {
        const density = options.density ?? 0.5;
        const seed = options.seed ?? 0;
        Object.assign(parameters, { density, seed });
        merged = dareMerge(base.weights, weights, {
          scale,
          weights: w,
          density,
          seed,
          ties: method === 'dare-ties',
        });
      }
    }
    // REPAIR targets the combination of the endpoints: the models with their coefficients; for task
    // vectors (coefficients not summing to 1) the uniform average of the models.
    const repairCoefficients = BASE_METHODS.has(method)
      ? members.map(() => 1 / members.length)
      : coefficients;
    const final = await applyNorm(merged, members, repairCoefficients);
    const normalization: NormMode | null = mode === 'repair' ? 'repair' : norm.hasBatchNorm ? mode : null;
    const endpoints: ModelScore[] = [];
    for (const m of models) endpoints.push(await score(session, m.source, m.weights, train, test));
    return {
      method,
      models: models.map((m) => m.source),
      base: options.base?.source ?? null,
      data: data.name,
      weights: final,
      coefficients,
      parameters,
      align,
      alignment,
      normalization,
      normExamples: normalization === null || normalization === 'copy' ? null : stats.n,
      endpoints,
      merged: await score(session, 'merged', final, train, test),
      soup,
    };
  } finally {
    await norm.dispose();
    await session.dispose();
  }
}

/**
 * The imported model with weights `weights` as a standard ONNX model: the imported graph with every
 * weight an initializer again (named as the graph value it was; tied aliases each their own), the
 * added hidden outputs removed, producer `twinscope`.
 */
export function mergedOnnx(model: ImportedModel, weights: Float32Array, docString?: string): Uint8Array {
  const arch = model.architecture;
  if (weights.length !== arch.layout.size) {
    throw new OnnxModelError(`${weights.length} weights, the architecture has ${arch.layout.size}`);
  }
  const proto = decodeModel(arch.bytes, model.source);
  const graph = proto.graph as GraphProto;
  const lifted = new Set(arch.weightValues);
  const hidden = new Set(arch.hidden.map((h) => h.value));
  graph.input = (graph.input ?? []).filter((v) => !lifted.has(v.name ?? ''));
  graph.output = (graph.output ?? []).filter((o, i) => i === 0 || !hidden.has(o.name ?? ''));
  graph.initializer = [
    ...(graph.initializer ?? []),
    ...arch.layout.tensors.map((slot, k) =>
      floatTensor(
        arch.weightValues[k] as string,
        slot.shape,
        weights.subarray(slot.offset, slot.offset + slot.size),
      ),
    ),
  ];
  proto.producerName = 'twinscope';
  proto.producerVersion = toolkitVersion();
  if (docString) proto.docString = docString;
  return encodeModel(proto);
}
