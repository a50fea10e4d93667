/**
 * Weight-perturbation sensitivity of one network (seed paper 000; METHODS.md §6 "Geometry around one
 * network"; docs/methods.md has no section for it yet).
 *
 * For each σ of a grid, θ' = θ + ε is evaluated for `draws` independent noise draws:
 * - `iid`: ε_i = σ z_i, z_i ~ N(0, 1), i.e. ε ~ N(0, σ² I);
 * - `relative` (magnitude-aware): ε_i = σ |θ_i| z_i, i.e. ε_i ~ N(0, σ² θ_i²); zero weights stay zero.
 * Each entry θ_i + ε_i is formed in float64 and rounded once to float32. σ = 0 adds no noise at all:
 * θ' is θ itself (bit for bit), and its draws are the clean evaluation.
 *
 * Random numbers (docs/methods.md §1): draw d at the i-th σ of the grid uses the stream
 * `Rng.fromSeed(seed).stream('eval').stream('sensitivity', i, d)`, one N(0, 1) deviate per parameter in
 * layout order, so every draw depends only on (seed, i, d): not on the order in which draws are
 * evaluated, nor on the other σ of the grid before it. With `streams: 'common'` the draw uses
 * `…stream('sensitivity-common', d)` instead, the same z at every σ (common random numbers: ε scales
 * with σ along fixed directions, and the mean accuracy is a deterministic, much smoother function of
 * σ). Both noise kinds share z, so `iid` and `relative` results of one seed use the same deviates.
 *
 * The critical σ (Jiang et al. 2019) is the σ at which the mean accuracy over the draws falls `drop`
 * (default 0.1, i.e. 10 percentage points) below the clean accuracy, found by bisection on log σ
 * with common random numbers; see {@link criticalSigma}.
 *
 * The algorithms take an evaluation callback ({@link ParamsEvaluator}); {@link engineEvaluator}
 * binds one to an {@link Engine} and a data set (one engine, one compiled session: weights are
 * graph inputs). When the evaluator has a batch method (`many`, as engineEvaluator's has), all draws
 * of a σ grid (in blocks of {@link POINTS_PER_CALL}) and all draws of a bisection probe go to it at
 * once; on the ORT engine that is one batched graph per group of points for a small model (one call
 * per draw for a large one, where batching gains nothing), with the same results as one evaluation
 * per draw, bit for bit (`Engine.evaluateMany`).
 */
import type { Engine, EvalResult, ParamsBatch } from '../engine/types.js';
import { Rng } from '../rng/rng.js';
import { type CurveData, hasAccuracy } from './barrier.js';

/** Loss and accuracy of one parameter vector on a fixed data set. */
export interface LossAccuracy {
  /** Mean loss over the examples (the engine's training loss). */
  readonly loss: number;
  /** Fraction of examples classified correctly, in [0, 1]; NaN for regression data (see {@link hasAccuracy}). */
  readonly accuracy: number;
}

/**
 * Evaluates a flat parameter vector (in the model's {@link ParameterLayout} order) on a fixed data
 * set. The measurements here call it once per point, one call at a time, and never reuse or modify
 * the arrays they pass.
 *
 * `many`, when present, evaluates many points in one call ({@link ParamsBatch}: a list, or linear
 * combinations of a few vectors), one result per point in order, with the results the evaluator
 * gives point by point (for a combination: the point Σ_k c_k v_k formed in float64 and rounded once
 * to float32, within the tolerance `Engine.evaluateMany` states). The measurements use it instead of
 * one call per point when it is there; `onProgress` reports points done.
 */
export interface ParamsEvaluator {
  (params: Float32Array): Promise<LossAccuracy>;
  readonly many?: (
    points: ParamsBatch,
    onProgress?: (done: number, total: number) => void,
  ) => Promise<LossAccuracy[]>;
}

/**
 * A {@link ParamsEvaluator} for `engine` on `data`: {@link Engine.evaluate} on all `data.n` examples,
 * accuracy = correct / count (NaN where the data has no classes, see {@link hasAccuracy}, and for n = 0);
 * its `many` is {@link Engine.evaluateMany} on the same data.
 */
export function engineEvaluator(engine: Engine, data: CurveData): ParamsEvaluator {
  const regression = !hasAccuracy(engine, data);
  const toLossAccuracy = (r: EvalResult): LossAccuracy => ({
    loss: r.loss,
    accuracy: regression || r.count === 0 ? Number.NaN : r.correct / r.count,
  });
  const evaluate = async (params: Float32Array) =>
    toLossAccuracy(await engine.evaluate(params, data.x, data.y, data.n));
  const many = async (points: ParamsBatch, onProgress?: (done: number, total: number) => void) =>
    (await engine.evaluateMany(points, data.x, data.y, data.n, { onProgress })).map(toLossAccuracy);
  return Object.assign(evaluate, { many });
}

/** Points per call of an evaluator's `many` when the points are listed (bounds their memory). */
const POINTS_PER_CALL = 64;

/**
 * Evaluate `count` points, point k being `pointAt(k)` (called once per point, in order): through
 * `evaluate.many` in lists of up to {@link POINTS_PER_CALL} points when there is one, else one call per
 * point. Results in point order.
 */
export async function evaluatePoints(
  evaluate: ParamsEvaluator,
  count: number,
  pointAt: (k: number) => Float32Array,
): Promise<LossAccuracy[]> {
  const results: LossAccuracy[] = [];
  for (let first = 0; first < count; first += evaluate.many ? POINTS_PER_CALL : 1) {
    if (!evaluate.many) {
      results.push(await evaluate(pointAt(first)));
      continue;
    }
    const points = Array.from({ length: Math.min(POINTS_PER_CALL, count - first) }, (_, b) =>
      pointAt(first + b),
    );
    const block = await evaluate.many(points);
    if (block.length !== points.length) {
      throw new Error(`the evaluator returned ${block.length} results for ${points.length} points`);
    }
    results.push(...block);
  }
  return results;
}

/** How the noise is scaled: `iid` ε_i = σ z_i; `relative` ε_i = σ |θ_i| z_i (see the module comment). */
export type NoiseKind = 'iid' | 'relative';

/**
 * Where each draw's deviates come from: `per-sigma` (independent streams per (σ index, draw)) or
 * `common` (one stream per draw, shared by every σ). See the module comment.
 */
export type NoiseStreams = 'per-sigma' | 'common';

/** Mean, sample standard deviation, minimum and maximum of a list of values. */
export interface SummaryStats {
  readonly mean: number;
  /** Sample standard deviation sqrt(Σ (v − mean)² / (n − 1)); NaN for a single value. */
  readonly std: number;
  readonly min: number;
  readonly max: number;
}

/** The draws at one σ and their summaries. */
export interface SensitivityLevel {
  readonly sigma: number;
  readonly loss: SummaryStats;
  readonly accuracy: SummaryStats;
  /** The raw draws, in draw order: loss[d] and accuracy[d] of θ + ε_d. */
  readonly draws: { readonly loss: number[]; readonly accuracy: number[] };
}

/** What {@link weightSensitivity} measured. */
export interface SensitivityResult {
  readonly noise: NoiseKind;
  readonly streams: NoiseStreams;
  readonly seed: number;
  /** Draws per σ. */
  readonly draws: number;
  /** Loss and accuracy of θ itself. */
  readonly clean: LossAccuracy;
  /** One entry per σ, in the order given. */
  readonly levels: SensitivityLevel[];
  /** Calls made to the evaluator: 1 (clean) + draws × (number of σ > 0). */
  readonly evaluations: number;
}

/** Options of {@link weightSensitivity}. */
export interface SensitivityOptions {
  /** Noise kind. Default `iid`. */
  readonly noise?: NoiseKind;
  /** Noise draws per σ, an integer ≥ 1. Default 10 (METHODS.md asks for at least 10). */
  readonly draws?: number;
  /** Seed of the noise streams, an integer in [0, 2^53). Default 0. */
  readonly seed?: number;
  /** Stream layout. Default `per-sigma`. */
  readonly streams?: NoiseStreams;
  /**
   * Ranges of θ left unperturbed (BatchNorm's running statistics: state, not weights). The noise
   * streams are drawn as without them, so the other entries get the same noise. Default none.
   */
  readonly frozen?: readonly FrozenRange[];
}

/** Entries [offset, offset + size) of a flat parameter vector. */
export interface FrozenRange {
  readonly offset: number;
  readonly size: number;
}

/** `noisy` with the `frozen` ranges copied back from `theta`. */
function restoreFrozen(
  noisy: Float32Array,
  theta: Float32Array,
  frozen: readonly FrozenRange[] | undefined,
): Float32Array {
  for (const r of frozen ?? []) noisy.set(theta.subarray(r.offset, r.offset + r.size), r.offset);
  return noisy;
}

/**
 * θ + ε for one noise draw: ε_i = σ z_i (`iid`) or σ |θ_i| z_i (`relative`) with z_i the successive
 * {@link Rng.normal} deviates of `rng` (one per parameter, in order, also for zero weights), each entry
 * formed in float64 and rounded once to float32. σ = 0 returns a copy of θ and draws nothing.
 * @throws if σ is negative or not finite, or `noise` is unknown.
 */
export function perturbWeights(theta: Float32Array, sigma: number, noise: NoiseKind, rng: Rng): Float32Array {
  checkSigma('perturbWeights', sigma);
  checkNoise('perturbWeights', noise);
  if (sigma === 0) return Float32Array.from(theta);
  const out = new Float32Array(theta.length);
  if (noise === 'iid') {
    for (let i = 0; i < theta.length; i++) out[i] = (theta[i] as number) + sigma * rng.normal();
  } else {
    for (let i = 0; i < theta.length; i++) {
      const t = theta[i] as number;
      out[i] = t + sigma * Math.abs(t) * rng.normal();
    }
  }
  return out;
}

/**
 * The generator of draw `draw` at the `sigmaIndex`-th σ (`per-sigma`) or of draw `draw` at any σ
 * (`common`), under `seed` (see the module comment).
 */
export function noiseStream(seed: number, streams: NoiseStreams, sigmaIndex: number, draw: number): Rng {
  const root = Rng.fromSeed(seed).stream('eval');
  return streams === 'common'
    ? root.stream('sensitivity-common', draw)
    : root.stream('sensitivity', sigmaIndex, draw);
}

/**
 * Mean, sample std, min and max of `values` (float64, two passes; the mean is accumulated relative to
 * the first value, so n equal values have exactly that value as mean and std 0). All NaN for an empty
 * list or when any value is NaN (e.g. the accuracies of an `mse` model).
 */
export function summaryStats(values: readonly number[]): SummaryStats {
  const n = values.length;
  if (n === 0 || values.some((v) => Number.isNaN(v))) {
    return { mean: Number.NaN, std: Number.NaN, min: Number.NaN, max: Number.NaN };
  }
  // Shifted by the first value: equal values give exactly that value as their mean (and std 0).
  const shift = values[0] as number;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const v of values) {
    sum += v - shift;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const mean = shift + sum / n;
  let ss = 0;
  for (const v of values) ss += (v - mean) ** 2;
  return { mean, std: n > 1 ? Math.sqrt(ss / (n - 1)) : Number.NaN, min, max };
}

/**
 * Weight-perturbation sensitivity: for each σ in `sigmas`, loss and accuracy of θ + ε over `draws`
 * noise draws (see the module comment for the noise and its streams), with mean, sample std, min and
 * max and the raw draws. θ is evaluated once (`clean`); σ = 0 is not evaluated again, its draws are
 * the clean evaluation (θ + 0 is θ), so its mean accuracy equals the clean accuracy exactly and its
 * std is 0. With `evaluate.many` the draws go to it as lists of up to 64 points, in (σ, draw) order;
 * otherwise evaluations run one after another.
 * @throws for an empty σ list, a σ that is negative or not finite, draws not an integer ≥ 1, an
 * unknown noise kind or stream layout, or a bad seed.
 */
export async function weightSensitivity(
  evaluate: ParamsEvaluator,
  theta: Float32Array,
  sigmas: readonly number[],
  options: SensitivityOptions = {},
): Promise<SensitivityResult> {
  const { noise, draws, seed, streams } = resolveOptions('weightSensitivity', options);
  if (sigmas.length === 0) throw new Error('weightSensitivity: sigmas is empty');
  for (const s of sigmas) checkSigma('weightSensitivity', s);
  const clean = await evaluate(Float32Array.from(theta));
  // Every draw of every σ > 0, in (σ, draw) order: one list for the evaluator.
  const noisy: Array<{ i: number; d: number }> = [];
  sigmas.forEach((sigma, i) => {
    if (sigma > 0) for (let d = 0; d < draws; d++) noisy.push({ i, d });
  });
  const results = await evaluatePoints(evaluate, noisy.length, (k) => {
    const { i, d } = noisy[k] as { i: number; d: number };
    const point = perturbWeights(theta, sigmas[i] as number, noise, noiseStream(seed, streams, i, d));
    return restoreFrozen(point, theta, options.frozen);
  });
  const evaluations = 1 + results.length;
  let next = 0;
  const levels: SensitivityLevel[] = [];
  for (let i = 0; i < sigmas.length; i++) {
    const sigma = sigmas[i] as number;
    const loss: number[] = [];
    const accuracy: number[] = [];
    for (let d = 0; d < draws; d++) {
      const r = sigma > 0 ? (results[next++] as LossAccuracy) : clean;
      loss.push(r.loss);
      accuracy.push(r.accuracy);
    }
    levels.push({
      sigma,
      loss: summaryStats(loss),
      accuracy: summaryStats(accuracy),
      draws: { loss, accuracy },
    });
  }
  return { noise, streams, seed, draws, clean, levels, evaluations };
}

/** Options of {@link findCriticalSigma} (and, with the noise options, {@link criticalSigma}). */
export interface CriticalSigmaSearchOptions {
  /** Accuracy drop that defines the critical σ, in (0, 1]. Default 0.1. */
  readonly drop?: number;
  /**
   * Initial bracket [lo, hi], 0 < lo < hi. Default [1e-3, 1]. It is widened by factors of 10 (lo down
   * while the accuracy at lo is already at or below the target, hi up while the accuracy at hi is still
   * above it), at most `maxExpansions` times per side.
   */
  readonly bracket?: readonly [number, number];
  /**
   * Relative tolerance: bisection stops when hi / lo ≤ 1 + tolerance, and the result √(lo·hi) is
   * then within a factor √(1 + tolerance) of a crossing σ*. Default 0.01. Must be in (0, 1].
   */
  readonly tolerance?: number;
  /** Widenings per side of the bracket before giving up. Default 20. */
  readonly maxExpansions?: number;
}

/** One probe of the search: σ and the (mean) accuracy there. */
export interface SigmaProbe {
  readonly sigma: number;
  readonly accuracy: number;
}

/** The critical σ and how it was found. */
export interface CriticalSigmaResult {
  /** √(lo·hi) of the final bracket. */
  readonly sigma: number;
  /** Final bracket: accuracy(lo) > target ≥ accuracy(hi), hi / lo ≤ 1 + tolerance. */
  readonly lo: number;
  readonly hi: number;
  readonly cleanAccuracy: number;
  /** cleanAccuracy − drop. */
  readonly targetAccuracy: number;
  /** Every σ probed, in order (bracketing first, then bisection). */
  readonly probes: SigmaProbe[];
}

/**
 * The σ at which a (mean) accuracy curve `accuracyAt(σ)` first falls to `cleanAccuracy − drop`, by
 * bisection on log σ: the bracket [lo, hi] (see {@link CriticalSigmaSearchOptions.bracket}) is first
 * widened by factors of 10 until accuracy(lo) > target ≥ accuracy(hi), then halved in log space
 * (mid = √(lo·hi)) until hi / lo ≤ 1 + tolerance. The result σ = √(lo·hi) satisfies
 * |ln σ − ln σ*| ≤ ½ ln(1 + tolerance) for a crossing σ* in the final bracket (the crossing when the
 * curve is monotone). Every σ is probed at most once. `accuracyAt` is the injected curve; see
 * {@link criticalSigma} for the one built from noise draws.
 * @throws for bad options, a non-finite clean accuracy, a NaN accuracy at a probe, or a bracket that
 * cannot be found within `maxExpansions` widenings per side (e.g. an accuracy that never drops by
 * `drop`).
 */
export async function findCriticalSigma(
  accuracyAt: (sigma: number) => Promise<number> | number,
  cleanAccuracy: number,
  options: CriticalSigmaSearchOptions = {},
): Promise<CriticalSigmaResult> {
  const drop = options.drop ?? 0.1;
  const [lo0, hi0] = options.bracket ?? [1e-3, 1];
  const tolerance = options.tolerance ?? 0.01;
  const maxExpansions = options.maxExpansions ?? 20;
  const name = 'criticalSigma';
  if (!(drop > 0 && drop <= 1)) throw new Error(`${name}: drop must be in (0, 1], got ${drop}`);
  if (!(lo0 > 0 && hi0 > lo0 && Number.isFinite(hi0))) {
    throw new Error(`${name}: bracket must satisfy 0 < lo < hi < ∞, got [${lo0}, ${hi0}]`);
  }
  if (!(tolerance > 0 && tolerance <= 1)) {
    throw new Error(`${name}: tolerance must be in (0, 1], got ${tolerance}`);
  }
  if (!Number.isInteger(maxExpansions) || maxExpansions < 0) {
    throw new Error(`${name}: maxExpansions must be an integer >= 0, got ${maxExpansions}`);
  }
  if (!Number.isFinite(cleanAccuracy)) {
    throw new Error(`${name}: the clean accuracy is ${cleanAccuracy} (a classification model is needed)`);
  }
  const target = cleanAccuracy - drop;
  const probes: SigmaProbe[] = [];
  const seen = new Map<number, number>();
  const above = async (sigma: number): Promise<boolean> => {
    let a = seen.get(sigma);
    if (a === undefined) {
      a = await accuracyAt(sigma);
      if (Number.isNaN(a)) throw new Error(`${name}: accuracy at σ = ${sigma} is NaN`);
      seen.set(sigma, a);
      probes.push({ sigma, accuracy: a });
    }
    return a > target;
  };
  let lo = lo0;
  let hi = hi0;
  let expansions = 0;
  while (!(await above(lo))) {
    if (expansions++ === maxExpansions) {
      throw new Error(
        `${name}: accuracy is already at or below the target ${target} at σ = ${lo} after ${maxExpansions} widenings down`,
      );
    }
    hi = lo;
    lo /= 10;
  }
  expansions = 0;
  while (await above(hi)) {
    if (expansions++ === maxExpansions) {
      throw new Error(
        `${name}: accuracy is still above the target ${target} at σ = ${hi} after ${maxExpansions} widenings up`,
      );
    }
    lo = hi;
    hi *= 10;
  }
  while (hi / lo > 1 + tolerance) {
    const mid = Math.sqrt(lo * hi);
    if (await above(mid)) lo = mid;
    else hi = mid;
  }
  return { sigma: Math.sqrt(lo * hi), lo, hi, cleanAccuracy, targetAccuracy: target, probes };
}

/** Options of {@link criticalSigma}. */
export interface CriticalSigmaOptions extends CriticalSigmaSearchOptions {
  /** Noise kind. Default `iid`. */
  readonly noise?: NoiseKind;
  /** Noise draws per probe (the accuracy at σ is their mean), an integer ≥ 1. Default 10. */
  readonly draws?: number;
  /** Seed of the noise streams. Default 0. */
  readonly seed?: number;
  /** Ranges of θ left unperturbed (see {@link SensitivityOptions.frozen}). */
  readonly frozen?: readonly FrozenRange[];
}

/** The critical σ with the evaluation count. */
export interface CriticalSigmaMeasurement extends CriticalSigmaResult {
  readonly noise: NoiseKind;
  readonly draws: number;
  readonly seed: number;
  /** Calls made to the evaluator: 1 (clean) + draws × probes. */
  readonly evaluations: number;
}

/**
 * The σ at which the mean accuracy of θ + ε over `draws` noise draws falls `drop` (default 0.1) below
 * the clean accuracy of θ (Jiang et al. 2019), by {@link findCriticalSigma} (bisection on log σ,
 * default bracket [1e-3, 1] widened by factors of 10, relative tolerance 0.01). Each probe evaluates
 * `draws` (default 10) draws from the `common` streams (the module comment): the same z_d at every σ,
 * so the result is a deterministic function of (θ, evaluator, seed, options), and it agrees with
 * {@link weightSensitivity} run with `streams: 'common'` at the probed σ. Cost: 1 + draws × probes
 * evaluations (about 12 probes with the defaults when no widening is needed); with `evaluate.many`,
 * the draws of a probe go to it in one list.
 * @throws as {@link findCriticalSigma}, and for draws not an integer ≥ 1, an unknown noise kind or
 * a bad seed.
 */
export async function criticalSigma(
  evaluate: ParamsEvaluator,
  theta: Float32Array,
  options: CriticalSigmaOptions = {},
): Promise<CriticalSigmaMeasurement> {
  const { noise, draws, seed } = resolveOptions('criticalSigma', options);
  const clean = await evaluate(Float32Array.from(theta));
  let evaluations = 1;
  const accuracyAt = async (sigma: number) => {
    const results = await evaluatePoints(evaluate, draws, (d) =>
      restoreFrozen(
        perturbWeights(theta, sigma, noise, noiseStream(seed, 'common', 0, d)),
        theta,
        options.frozen,
      ),
    );
    evaluations += draws;
    let sum = 0;
    for (const r of results) sum += r.accuracy;
    return sum / draws;
  };
  const found = await findCriticalSigma(accuracyAt, clean.accuracy, options);
  return { ...found, noise, draws, seed, evaluations };
}

function resolveOptions(name: string, options: SensitivityOptions) {
  const noise = options.noise ?? 'iid';
  const draws = options.draws ?? 10;
  const seed = options.seed ?? 0;
  const streams = options.streams ?? 'per-sigma';
  checkNoise(name, noise);
  if (!Number.isInteger(draws) || draws < 1) {
    throw new Error(`${name}: draws must be an integer >= 1, got ${draws}`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`${name}: seed must be an integer in [0, 2^53), got ${seed}`);
  }
  if (streams !== 'per-sigma' && streams !== 'common') {
    throw new Error(`${name}: unknown streams '${streams as string}' (per-sigma, common)`);
  }
  return { noise, draws, seed, streams };
}

function checkSigma(name: string, sigma: number): void {
  if (!(sigma >= 0 && Number.isFinite(sigma))) {
    throw new Error(`${name}: σ must be a finite number >= 0, got ${sigma}`);
  }
}

function checkNoise(name: string, noise: NoiseKind): void {
  if (noise !== 'iid' && noise !== 'relative') {
    throw new Error(`${name}: unknown noise '${noise as string}' (iid, relative)`);
  }
}
