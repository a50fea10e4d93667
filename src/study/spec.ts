/**
 * Study specs: the JSON file `twinscope run` takes. A twin study names a base run spec, the parent
 * seeds, a perturbation grid (kinds, scales σ, fork steps t, repeats), which measurements to take
 * and when (at every checkpoint the pair shares, or only at the end), an optional trajectory
 * embedding of every run of each seed (`measure.embedding`, opt-in), an optional stability-onset
 * search, and how to execute (worker processes, threads, lock-step twins).
 *
 * ```json
 * { "name": "butterfly-moons",
 *   "base": "moons-adam.json",
 *   "seeds": [0],
 *   "perturbations": [
 *     { "kind": "gaussian", "sigmas": [0, 1e-6, 1e-3, 1e-1], "forkSteps": [0, 10, { "epochs": 1 }], "repeats": 2 },
 *     { "kind": "seed", "forkSteps": [0], "repeats": 2 },
 *     { "kind": "init", "repeats": 2 } ],
 *   "measure": { "distance": { "at": "checkpoints" }, "barrier": { "at": "end" },
 *               "embedding": { "method": "inpca", "components": 3, "examples": 1000 } },
 *   "onset": { "kind": "gaussian", "sigmas": [1e-3] } }
 * ```
 *
 * Like run specs, every object is strict and every problem is reported at once, one line each,
 * naming the field (`perturbations[0].sigmas[2]`) and prefixed with the file.
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import type { EmbedMethod } from '../results/embedding.js';
import type { PerturbationKind } from '../results/metrics.js';
import { SpecError } from '../spec/errors.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import { loadRunSpec, parseRunSpec } from '../spec/run-spec.js';
import { BaseRunSpecSchema, posInt, SpecNameSchema } from '../spec/schemas.js';
import { parseSpecObject, readSpecJson } from '../spec/spec-file.js';

const nonNegInt = () => z.number().int().min(0);
const at = z.enum(['checkpoints', 'end']);

/** A fork step: a step number or a whole number of epochs. */
const ForkStepSchema = z.union([nonNegInt(), z.strictObject({ epochs: z.number().min(0) })], {
  error: 'expected a step (integer ≥ 0) or { "epochs": n }',
});

const scope = {
  /** Regular expression on tensor names. */
  mask: z.string().min(1).optional(),
  fraction: z.number().gt(0).max(1).optional(),
};

const WeightPerturbationSchema = z.strictObject({
  kind: z.enum(['gaussian', 'batch']),
  sigmas: z.array(z.number().min(0)).min(1),
  forkSteps: z.array(ForkStepSchema).min(1),
  repeats: posInt().optional(),
  ...scope,
});

const SeedPerturbationSchema = z.strictObject({
  kind: z.literal('seed'),
  forkSteps: z.array(ForkStepSchema).min(1),
  repeats: posInt().optional(),
});

const InitPerturbationSchema = z.strictObject({ kind: z.literal('init'), repeats: posInt().optional() });

const PerturbationSchema = z.discriminatedUnion('kind', [
  WeightPerturbationSchema,
  SeedPerturbationSchema,
  InitPerturbationSchema,
]);

const MeasureSchema = z.strictObject({
  distance: z.strictObject({ at: at.optional() }).optional(),
  barrier: z
    .strictObject({
      at: at.optional(),
      alphas: z.number().int().min(2).optional(),
      examples: posInt().optional(),
      splits: z
        .array(z.enum(['train', 'test']))
        .min(1)
        .optional(),
    })
    .optional(),
  align: z
    .strictObject({
      at: at.optional(),
      methods: z
        .array(z.enum(['weight', 'activation']))
        .min(1)
        .optional(),
      examples: posInt().optional(),
      exportAligned: z.boolean().optional(),
    })
    .optional(),
  cka: z
    .strictObject({
      at: at.optional(),
      kernel: z.enum(['linear', 'rbf']).optional(),
      debiased: z.boolean().optional(),
      examples: z.number().int().min(4).optional(),
    })
    .optional(),
  lyapunov: z.strictObject({ window: z.number().int().min(2).optional() }).optional(),
  embedding: z
    .strictObject({
      method: z.enum(['inpca', 'pca']).optional(),
      components: z.number().int().min(1).max(64).optional(),
      examples: posInt().optional(),
      sigma: z.number().gt(0).optional(),
    })
    .optional(),
});

const OnsetSchema = z.strictObject({
  kind: z.enum(['gaussian', 'batch', 'seed']),
  sigmas: z.array(z.number().min(0)).min(1).optional(),
  threshold: z.number().gt(0).lt(1).optional(),
  repeats: posInt().optional(),
});

const StudySpecSchema = z.strictObject({
  name: SpecNameSchema,
  /** A run spec: inline, or a path relative to the study file. */
  base: BaseRunSpecSchema,
  seeds: z.array(nonNegInt()).min(1).optional(),
  perturbations: z.array(PerturbationSchema).min(1),
  measure: MeasureSchema.optional(),
  onset: OnsetSchema.optional(),
  workers: posInt().max(64).optional(),
  threadsPerWorker: posInt().max(64).optional(),
  lockstep: z.boolean().optional(),
});

/** A fork step as written: a step or a number of epochs. */
export type ForkStep = number | { epochs: number };

/** One resolved perturbation family of the grid. */
export type PerturbationGrid =
  | {
      kind: 'gaussian' | 'batch';
      sigmas: number[];
      forkSteps: ForkStep[];
      repeats: number;
      mask?: string;
      fraction?: number;
    }
  | { kind: 'seed'; forkSteps: ForkStep[]; repeats: number }
  | { kind: 'init'; repeats: number };

/** When a measurement is taken: at every checkpoint step the pair shares, or at the last step. */
export type MeasureWhen = 'checkpoints' | 'end';

/** The measurements of a study with defaults filled; an absent family is not measured. */
export interface MeasureSpec {
  distance?: { at: MeasureWhen };
  barrier?: { at: MeasureWhen; alphas: number; examples: number; splits: ('train' | 'test')[] };
  align?: {
    at: MeasureWhen;
    methods: ('weight' | 'activation')[];
    examples: number;
    exportAligned: boolean;
  };
  cka?: { at: MeasureWhen; kernel: 'linear' | 'rbf'; debiased: boolean; examples: number };
  lyapunov?: { window: number };
  /**
   * Trajectory embedding of every complete run of each parent seed (not a pair measurement): InPCA
   * of the outputs on the first `examples` test examples, or PCA of the weights (see embed-runs.ts).
   * `sigma`: InPCA of regression (mse) runs, the Gaussian outputs' standard deviation (default 1).
   */
  embedding?: { method: EmbedMethod; components: number; examples: number; sigma?: number };
}

/** Bisection over the fork step for the earliest t at which twins stay linearly connected. */
export interface OnsetSpec {
  kind: Exclude<PerturbationKind, 'init'>;
  sigmas: number[];
  /** Error-barrier threshold (fraction; default 0.02 = 2 percentage points). */
  threshold: number;
  repeats: number;
}

/** A validated study spec with every default filled. */
export interface ResolvedStudySpec {
  name: string;
  base: ResolvedRunSpec;
  /** Init seeds of the parents (one parent run each). Default: `[base.seed]`. */
  seeds: number[];
  perturbations: PerturbationGrid[];
  measure: MeasureSpec;
  onset?: OnsetSpec;
  /** Worker processes. Default: the number of CPU cores / threadsPerWorker, at least 1. */
  workers?: number;
  /** Intra-op threads per worker (overrides base.threads). Default 1. */
  threadsPerWorker: number;
  /**
   * Train the twins of one (parent, t) in one graph with batched weights. `'auto'` (the default)
   * decides once the data's dimensions are known ({@link lockstepByDefault}): lock-step for dense
   * chains of at most {@link LOCKSTEP_AUTO_MAX_PARAMS} parameters, separate runs otherwise.
   */
  lockstep: boolean | 'auto';
}

/**
 * The largest dense chain (parameter count) whose twins train in lock-step by default. Measured
 * (docs/performance.md, "Lock-step twins"): at R = 8, one lock-step call costs less CPU than 8
 * separate steps for MLP 2-64-64-2 (4.5k parameters, 3.6×) and 2-128-128-2 (17k, 1.3×), about the
 * same at 2-256-256-2 (67k), and more for MLP 784-64-10 (51k, 0.6×) and 784-256-256-10 (269k,
 * 0.25–0.35×), where the batched products replace well-shaped GEMMs.
 */
export const LOCKSTEP_AUTO_MAX_PARAMS = 20_000;

/**
 * Whether a study trains its twins in lock-step: the spec's `lockstep` when given, else (`'auto'`)
 * lock-step for dense chains (`mlp`) of at most {@link LOCKSTEP_AUTO_MAX_PARAMS} parameters. Conv
 * nets and ResNets train separately (grouped convolutions measured slower; "Conv nets").
 */
export function lockstepByDefault(
  lockstep: boolean | 'auto',
  modelKind: string,
  parameters: number,
): boolean {
  if (lockstep !== 'auto') return lockstep;
  return modelKind === 'mlp' && parameters <= LOCKSTEP_AUTO_MAX_PARAMS;
}

/** Defaults of the measurement families (docs/methods.md §6–10). */
export const MEASURE_DEFAULTS = {
  barrier: { at: 'end', alphas: 11, examples: 10_000, splits: ['train', 'test'] },
  align: { at: 'end', methods: ['weight'], examples: 5000, exportAligned: false },
  cka: { at: 'end', kernel: 'linear', debiased: false, examples: 2000 },
  lyapunov: { window: 5 },
  embedding: { method: 'inpca', components: 3, examples: 1000 },
} as const;

/**
 * The measurements taken when a study names none: everything cheap, all of it at the end but L2.
 * The embedding is opt-in (it reads every checkpoint of every run).
 */
const DEFAULT_MEASURE: z.infer<typeof MeasureSchema> = {
  distance: {},
  barrier: {},
  align: {},
  cka: {},
  lyapunov: {},
};

/**
 * A measurement family's options: its defaults (copied, so arrays are never shared) overridden by the
 * fields the spec gives (zod leaves absent optional fields out, so they do not override).
 */
function withDefaults<D extends object, G extends object>(defaults: D, given: G) {
  return { ...structuredClone(defaults), ...given } as {
    -readonly [K in keyof D]: D[K] extends readonly (infer E)[] ? E[] : D[K];
  } & G;
}

function resolveMeasure(m: z.infer<typeof MeasureSchema>): MeasureSpec {
  const d = MEASURE_DEFAULTS;
  const out: MeasureSpec = {};
  if (m.distance) out.distance = withDefaults({ at: 'checkpoints' as const }, m.distance);
  if (m.barrier) out.barrier = withDefaults(d.barrier, m.barrier);
  if (m.align) out.align = withDefaults(d.align, m.align);
  if (m.cka) out.cka = withDefaults(d.cka, m.cka);
  if (m.lyapunov) {
    if (!m.distance) out.distance = { at: 'checkpoints' };
    out.lyapunov = withDefaults(d.lyapunov, m.lyapunov);
  }
  if (m.embedding) out.embedding = withDefaults(d.embedding, m.embedding);
  return out;
}

/**
 * Validate a parsed study spec and fill its defaults. `dir` resolves a `base` given as a path.
 * Throws a {@link SpecError} listing every problem, prefixed with `source`.
 */
export function parseStudySpec(json: unknown, source?: string, dir = '.'): ResolvedStudySpec {
  const s = parseSpecObject(StudySpecSchema, json, source);
  let base: ResolvedRunSpec;
  try {
    base = typeof s.base === 'string' ? loadRunSpec(resolve(dir, s.base)) : parseRunSpec(s.base, undefined);
  } catch (e) {
    if (!(e instanceof SpecError) || typeof s.base === 'string') throw e;
    throw new SpecError(
      e.problems.map((p) => `base.${p}`),
      source,
    );
  }
  const problems: string[] = [];
  const perturbations: PerturbationGrid[] = s.perturbations.map((p, i) => {
    const repeats = p.repeats ?? 1;
    if (p.kind === 'init') return { kind: 'init', repeats };
    const forkSteps = p.forkSteps;
    if (new Set(forkSteps.map((f) => JSON.stringify(f))).size !== forkSteps.length) {
      problems.push(`perturbations[${i}].forkSteps: contains duplicates`);
    }
    if (p.kind === 'seed') return { kind: 'seed', forkSteps, repeats };
    const grid: PerturbationGrid = { kind: p.kind, sigmas: p.sigmas, forkSteps, repeats };
    if (p.mask !== undefined) {
      try {
        new RegExp(p.mask);
      } catch {
        problems.push(`perturbations[${i}].mask: not a valid regular expression`);
      }
      grid.mask = p.mask;
    }
    if (p.fraction !== undefined) grid.fraction = p.fraction;
    return grid;
  });
  if (problems.length > 0) throw new SpecError(problems, source);
  const out: ResolvedStudySpec = {
    name: s.name,
    base,
    seeds: s.seeds ?? [base.seed],
    perturbations,
    measure: resolveMeasure(s.measure ?? DEFAULT_MEASURE),
    threadsPerWorker: s.threadsPerWorker ?? 1,
    lockstep: s.lockstep ?? 'auto',
  };
  if (s.workers !== undefined) out.workers = s.workers;
  if (s.onset) {
    out.onset = {
      kind: s.onset.kind,
      sigmas: s.onset.sigmas ?? [0],
      threshold: s.onset.threshold ?? 0.02,
      repeats: s.onset.repeats ?? 1,
    };
    if (s.onset.kind !== 'seed' && !s.onset.sigmas) {
      throw new SpecError(`onset.sigmas: missing (a ${s.onset.kind} onset search needs σ values)`, source);
    }
    // The search reads error barriers at the last step.
    if (!out.measure.barrier) {
      const d = MEASURE_DEFAULTS.barrier;
      out.measure.barrier = { at: 'end', alphas: d.alphas, examples: d.examples, splits: ['test'] };
    }
  }
  return out;
}

/** Read and validate a study spec file; a `base` path is relative to the file's folder. */
export function loadStudySpec(path: string): ResolvedStudySpec {
  return parseStudySpec(readSpecJson(path), path, dirname(resolve(path)));
}
