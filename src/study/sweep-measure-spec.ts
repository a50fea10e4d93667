/**
 * The `measure` block of a sweep spec: the geometry of each run's network, taken at its final
 * checkpoint (or at the checkpoint steps listed in `at`), by measure jobs that run after the run's
 * train job (docs/methods.md §12; the directory layout in run-sweep.ts).
 *
 * ```json
 * "measure": {
 *   "at": [100, 400],
 *   "sharpness": { "examples": 1000, "topK": 2, "probes": 50 },
 *   "sensitivity": { "sigmas": [0, 0.01, 0.03, 0.1], "draws": 10, "noise": ["iid", "relative"], "drop": 0.1 },
 *   "surface": { "directions": "random", "points": 51, "range": 1, "examples": 2000 }
 * }
 * ```
 *
 * - `at`: checkpoint steps of every run (default: each run's last checkpoint only).
 * - `sharpness`: the top `topK` (default 1) Hessian eigenvalues of the training loss by Lanczos
 *   (`steps` Krylov steps, default 50) on the first `examples` training examples (default: all of
 *   them), and Hutchinson's trace estimate with `probes` Rademacher probes (default 100; 0: no trace).
 * - `sensitivity`: loss and accuracy of θ + ε for every σ of `sigmas` over `draws` noise draws
 *   (default 10) of each `noise` kind (default `["iid"]`) on the first `examples` examples of `split`
 *   (default: all of the test split), and the critical σ at which the mean accuracy falls by `drop`
 *   (default 0.1; classifiers only). `correlateAt`: the σ whose mean accuracy and loss the report
 *   rank-correlates with sharpness (default: the middle positive σ of the grid).
 * - `surface`: one surface or a list of them: `directions` `random` (two filter-normalized
 *   Gaussian directions, Li et al. 2018), `pca` (the top two PCA directions of the run's trajectory
 *   up to the measured step, with the trajectory projected onto the plane) or `line` (1-D: θ + x d₁
 *   along the first of the `random` plane's directions, so its curve is that plane's y = 0 row);
 *   `points` per axis
 *   (default 51), `range` (r for [−r, r]², or [lo, hi]; default 1 for random directions, and for PCA
 *   the extent of the trajectory with a margin of 20 %), `examples` and `split` (default: all of the
 *   train split), `seed` of the random directions (default 0).
 *
 * Every problem is reported at once, one line each, naming the field (`measure.surface[1].points`).
 */
import { z } from 'zod';
import type { NoiseKind } from '../measure/sensitivity.js';
import { posInt } from '../spec/schemas.js';

const nonNegInt = () => z.number().int().min(0);
const split = z.enum(['train', 'test']);

/**
 * One value or a non-empty list of them, validated against `item` with every problem at its path
 * (`x.points` for one value, `x[1].points` in a list). Parsed as written: a value or a list.
 */
export function oneOrList<T extends z.ZodType>(item: T) {
  return z.custom<z.output<T> | z.output<T>[]>().superRefine((value, ctx) => {
    const schema = Array.isArray(value) ? z.array(item).min(1) : item;
    const r = schema.safeParse(value, { reportInput: true });
    if (!r.success) for (const issue of r.error.issues) ctx.addIssue({ ...issue });
  });
}

const SurfaceSchema = z.strictObject({
  directions: z.enum(['random', 'pca', 'line']),
  points: z.number().int().min(2).max(401).optional(),
  range: z
    .union([z.number().gt(0), z.tuple([z.number(), z.number()])], {
      error: 'expected r > 0 (for [−r, r]) or [lo, hi]',
    })
    .optional(),
  examples: posInt().optional(),
  split: split.optional(),
  seed: nonNegInt().optional(),
});

/** The zod schema of a sweep's `measure` block as written. */
export const SweepMeasureSchema = z.strictObject({
  at: z.array(nonNegInt()).min(1).optional(),
  sharpness: z
    .strictObject({
      examples: posInt().optional(),
      topK: posInt().max(32).optional(),
      probes: nonNegInt().optional(),
      steps: posInt().max(1000).optional(),
      seed: nonNegInt().optional(),
    })
    .optional(),
  sensitivity: z
    .strictObject({
      sigmas: z.array(z.number().min(0).max(1e6)).min(1),
      draws: posInt().max(10_000).optional(),
      noise: z
        .array(z.enum(['iid', 'relative']))
        .min(1)
        .optional(),
      drop: z.number().gt(0).max(1).optional(),
      examples: posInt().optional(),
      split: split.optional(),
      seed: nonNegInt().optional(),
      correlateAt: z.number().gt(0).optional(),
    })
    .optional(),
  surface: oneOrList(SurfaceSchema).optional(),
});

/** Sharpness of the training loss at a checkpoint (defaults filled). */
export interface SweepSharpnessSpec {
  /** Training examples (the first n of the train split); undefined: all of them. */
  readonly examples?: number;
  /** Top eigenvalues wanted (Lanczos). */
  readonly topK: number;
  /** Lanczos steps (Hessian-vector products) at most. */
  readonly steps: number;
  /** Hutchinson probes; 0: no trace. */
  readonly probes: number;
  /** Seed of the Lanczos start vector and the Hutchinson probes. */
  readonly seed: number;
}

/** Weight-perturbation sensitivity and the critical σ (defaults filled). */
export interface SweepSensitivitySpec {
  readonly sigmas: readonly number[];
  readonly draws: number;
  readonly noise: readonly NoiseKind[];
  /** Accuracy drop of the critical σ. */
  readonly drop: number;
  readonly split: 'train' | 'test';
  /** The first n examples of the split; undefined: all of them. */
  readonly examples?: number;
  readonly seed: number;
  /** The σ of the grid the report rank-correlates with sharpness. */
  readonly correlateAt?: number;
}

/** A 2-D loss surface, or a 1-D line along one random direction (defaults filled). */
export interface SweepSurfaceSpec {
  readonly directions: 'random' | 'pca' | 'line';
  readonly points: number;
  /** [lo, hi] of both axes; undefined for `pca`: the trajectory's extent with a 20 % margin. */
  readonly range?: readonly [number, number];
  readonly split: 'train' | 'test';
  readonly examples?: number;
  readonly seed: number;
}

/** A sweep's resolved `measure` block. */
export interface SweepMeasureSpec {
  /** Checkpoint steps to measure; undefined: each run's last checkpoint. */
  readonly at?: readonly number[];
  readonly sharpness?: SweepSharpnessSpec;
  readonly sensitivity?: SweepSensitivitySpec;
  /** The surfaces, in spec order (empty: none). */
  readonly surfaces: readonly SweepSurfaceSpec[];
}

/** The middle positive σ of a grid (the lower of the two middle ones for an even count). */
function middleSigma(sigmas: readonly number[]): number | undefined {
  const positive = [...new Set(sigmas.filter((s) => s > 0))].sort((a, b) => a - b);
  return positive[Math.floor((positive.length - 1) / 2)];
}

/**
 * Fill the defaults of a parsed `measure` block and check what no single field's schema sees;
 * returns the spec and the problems (one line each, naming the field).
 */
export function resolveSweepMeasure(m: z.output<typeof SweepMeasureSchema>): {
  measure: SweepMeasureSpec;
  problems: string[];
} {
  const problems: string[] = [];
  const duplicates = (values: readonly unknown[], field: string) => {
    if (new Set(values.map((v) => JSON.stringify(v))).size !== values.length) {
      problems.push(`${field}: contains duplicates`);
    }
  };
  if (!m.sharpness && !m.sensitivity && !m.surface) {
    problems.push('measure: nothing to measure (give sharpness, sensitivity or surface)');
  }
  if (m.at) duplicates(m.at, 'measure.at');
  let sharpness: SweepSharpnessSpec | undefined;
  if (m.sharpness) {
    const s = m.sharpness;
    const topK = s.topK ?? 1;
    const steps = s.steps ?? Math.max(50, topK);
    if (steps < topK) problems.push(`measure.sharpness.steps: must be >= topK = ${topK} (got ${steps})`);
    sharpness = {
      ...(s.examples !== undefined && { examples: s.examples }),
      topK,
      steps,
      probes: s.probes ?? 100,
      seed: s.seed ?? 0,
    };
  }
  let sensitivity: SweepSensitivitySpec | undefined;
  if (m.sensitivity) {
    const s = m.sensitivity;
    duplicates(s.sigmas, 'measure.sensitivity.sigmas');
    const noise = s.noise ?? ['iid'];
    duplicates(noise, 'measure.sensitivity.noise');
    const correlateAt = s.correlateAt ?? middleSigma(s.sigmas);
    if (s.correlateAt !== undefined && !s.sigmas.includes(s.correlateAt)) {
      problems.push(
        `measure.sensitivity.correlateAt: must be one of the sigmas (got ${s.correlateAt}; sigmas ${s.sigmas.join(', ')})`,
      );
    }
    sensitivity = {
      sigmas: s.sigmas,
      draws: s.draws ?? 10,
      noise,
      drop: s.drop ?? 0.1,
      split: s.split ?? 'test',
      ...(s.examples !== undefined && { examples: s.examples }),
      seed: s.seed ?? 0,
      ...(correlateAt !== undefined && { correlateAt }),
    };
  }
  const list = m.surface === undefined ? [] : Array.isArray(m.surface) ? m.surface : [m.surface];
  const surfaces = list.map((s, i): SweepSurfaceSpec => {
    const field = `measure.surface${Array.isArray(m.surface) ? `[${i}]` : ''}`;
    let range: [number, number] | undefined;
    if (typeof s.range === 'number') range = [-s.range, s.range];
    else if (s.range) {
      range = [s.range[0], s.range[1]];
      if (!(range[0] < range[1]) || !range.every(Number.isFinite)) {
        problems.push(`${field}.range: expected [lo, hi] with lo < hi (got [${range.join(', ')}])`);
      }
    }
    if (s.directions !== 'pca' && range === undefined) range = [-1, 1];
    return {
      directions: s.directions,
      points: s.points ?? 51,
      ...(range && { range }),
      split: s.split ?? 'train',
      ...(s.examples !== undefined && { examples: s.examples }),
      seed: s.seed ?? 0,
    };
  });
  duplicates(surfaces, 'measure.surface');
  return {
    measure: {
      ...(m.at && { at: [...m.at].sort((a, b) => a - b) }),
      ...(sharpness && { sharpness }),
      ...(sensitivity && { sensitivity }),
      surfaces,
    },
    problems,
  };
}
