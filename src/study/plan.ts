/**
 * The study planner: turns a study spec into the runs to train and the pairs to measure.
 *
 * Work is shared: one parent run per seed, trained once with a checkpoint at every fork step; at
 * each fork step t one reference twin A (the unperturbed copy) and every weight-perturbed twin B
 * start from the parent's checkpoint at t and train on the parent's data stream (so they can train
 * in lock-step, one graph for the whole group). `seed` twins leave the parent at t with a different
 * data seed; `init` baselines are independent runs from another init seed, compared with the
 * parent. Names are stable and readable (`s0/t10/gaussian-1e-4-r0`); each run directory's run.json
 * holds the hash of its spec and lineage, so a changed study never silently reuses a run.
 *
 * Seeds: the perturbation of repeat r draws from seed `derivedSeed(parent seed, 'perturb', r)`, the
 * same for every σ and t, so that a σ sweep changes the size of one direction only; `seed` twins
 * and `init` baselines take their batch-order / init seeds from streams 'order-seed' and 'init-seed'
 * (a `seed` twin sees the same examples in another order).
 */

import type { PerturbationKind, TwinInfo } from '../results/metrics.js';
import { Rng } from '../rng/rng.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import { planRun } from '../spec/run-plan.js';
import type { WeightPerturbation } from '../train/fork.js';
import type { ForkStep, ResolvedStudySpec } from './spec.js';

/** A run of the study: trained from scratch (`fork` absent) or forked from a parent's checkpoint. */
export interface PlannedRun {
  /** Name within the study; the directory is `runs/<name>`. */
  readonly name: string;
  readonly spec: ResolvedRunSpec;
  readonly fork?: {
    readonly parent: string;
    readonly step: number;
    /** Weight perturbation (absent: an unperturbed copy, or a `seed` twin with its own data seed). */
    readonly perturbation?: WeightPerturbation;
  };
}

/** The runs that leave one parent at one fork step on the parent's data stream (a lock-step unit). */
export interface ForkGroup {
  readonly parent: string;
  readonly forkStep: number;
  /** The reference twin A first, then the perturbed twins. */
  readonly members: readonly PlannedRun[];
}

/** Everything a study trains and measures. */
export interface StudyPlan {
  readonly parents: readonly PlannedRun[];
  /** Independent-init baselines (trained from scratch). */
  readonly baselines: readonly PlannedRun[];
  readonly groups: readonly ForkGroup[];
  /** `seed` twins: forked, but on another data stream, so never in a lock-step group. */
  readonly seedTwins: readonly PlannedRun[];
  /** The compared pairs. */
  readonly twins: readonly TwinInfo[];
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** Checkpoint steps of every run (fork steps included). */
  readonly checkpoints: readonly number[];
}

/** A seed for `name` and `ids` derived from `seed` (31 bits, stable across versions). */
export function derivedSeed(seed: number, name: string, ...ids: number[]): number {
  return Rng.fromSeed(seed)
    .stream(name, ...ids)
    .int(2 ** 31 - 1);
}

/** Fork step as a step number (epochs × steps per epoch, rounded). */
export function resolveForkStep(f: ForkStep, stepsPerEpoch: number): number {
  return typeof f === 'number' ? f : Math.round(f.epochs * stepsPerEpoch);
}

/** σ as it appears in run names: `0`, `1e-8`, `0.01` → `1e-2`. */
export function sigmaLabel(sigma: number): string {
  if (sigma === 0) return '0';
  const [m, e] = sigma.toExponential().split('e') as [string, string];
  return `${m}e${Number(e)}`;
}

/** Names of the runs a study trains (see the module comment). */
export const runNames = {
  parent: (seed: number) => `s${seed}/parent`,
  reference: (seed: number, t: number) => `s${seed}/t${t}/a`,
  weightTwin: (seed: number, t: number, kind: string, sigma: number, r: number) =>
    `s${seed}/t${t}/${kind}-${sigmaLabel(sigma)}-r${r}`,
  seedTwin: (seed: number, t: number, r: number) => `s${seed}/t${t}/seed-r${r}`,
  baseline: (seed: number, r: number) => `s${seed}/init-r${r}`,
};

/** The parent spec of one seed: the base with that seed and a checkpoint at every fork step. */
function parentSpec(study: ResolvedStudySpec, seed: number, checkpoints: number[]): ResolvedRunSpec {
  const base = study.base;
  const dataSeed = base.dataSeed === base.seed ? seed : base.dataSeed;
  return {
    ...base,
    name: `${study.name}-s${seed}`,
    seed,
    dataSeed,
    threads: study.threadsPerWorker,
    checkpoints: { steps: checkpoints },
  };
}

/** The fork steps the study's grid uses (sorted, unique). */
function gridForkSteps(study: ResolvedStudySpec, perEpoch: number): number[] {
  const steps = new Set<number>();
  for (const p of study.perturbations) {
    if (p.kind === 'init') continue;
    for (const f of p.forkSteps) steps.add(resolveForkStep(f, perEpoch));
  }
  return [...steps].sort((a, b) => a - b);
}

/**
 * Plan a study on a training set of `nTrain` examples. `extraForkSteps` adds fork steps outside
 * the grid (the stability-onset search): groups at those steps hold the onset's perturbations only.
 */
export function planStudy(
  study: ResolvedStudySpec,
  nTrain: number,
  extraForkSteps: number[] = [],
): StudyPlan {
  const basePlan = planRun(study.base, nTrain);
  const { stepsPerEpoch, totalSteps } = basePlan;
  const forkSteps = gridForkSteps(study, stepsPerEpoch);
  for (const t of [...forkSteps, ...extraForkSteps]) {
    if (t >= totalSteps) {
      throw new Error(
        `study ${study.name}: fork step ${t} is not before the last step ${totalSteps} of the base run`,
      );
    }
  }
  const checkpoints = [...new Set([...basePlan.checkpoints, ...forkSteps])].sort((a, b) => a - b);
  // Extra fork steps must already be parent checkpoints: adding them would change the parents.
  for (const t of extraForkSteps) {
    if (!checkpoints.includes(t))
      throw new Error(`study ${study.name}: extra fork step ${t} is not a parent checkpoint`);
  }
  const parents: PlannedRun[] = [];
  const baselines: PlannedRun[] = [];
  const groups: ForkGroup[] = [];
  const seedTwins: PlannedRun[] = [];
  const twins: TwinInfo[] = [];
  for (const seed of study.seeds) {
    const spec = parentSpec(study, seed, checkpoints);
    const parent = runNames.parent(seed);
    parents.push({ name: parent, spec });
    const members = new Map<number, PlannedRun[]>();
    const memberOf = (t: number) => {
      let list = members.get(t);
      if (!list) {
        list = [{ name: runNames.reference(seed, t), spec, fork: { parent, step: t } }];
        members.set(t, list);
      }
      return list;
    };
    const twin = (runB: string, runA: string, kind: PerturbationKind, sigma: number, t: number, r: number) =>
      twins.push({ runA, runB, kind, sigma, forkStep: t, repeat: r, seed });
    const addWeightTwin = (
      kind: 'gaussian' | 'batch',
      sigma: number,
      t: number,
      r: number,
      scope: { mask?: string; fraction?: number },
    ) => {
      const name = runNames.weightTwin(seed, t, kind, sigma, r);
      const list = memberOf(t);
      if (list.some((m) => m.name === name)) return;
      const perturbation: WeightPerturbation = {
        kind,
        sigma,
        seed: derivedSeed(seed, 'perturb', r),
        ...scope,
      };
      list.push({ name, spec, fork: { parent, step: t, perturbation } });
      twin(name, runNames.reference(seed, t), kind, sigma, t, r);
    };
    const addSeedTwin = (t: number, r: number) => {
      const name = runNames.seedTwin(seed, t, r);
      if (seedTwins.some((m) => m.name === name)) return;
      memberOf(t);
      const orderSeed = derivedSeed(spec.dataSeed, 'order-seed', r);
      seedTwins.push({ name, spec: { ...spec, orderSeed }, fork: { parent, step: t } });
      twin(name, runNames.reference(seed, t), 'seed', 0, t, r);
    };
    for (const p of study.perturbations) {
      for (let r = 0; r < p.repeats; r++) {
        if (p.kind === 'init') {
          const name = runNames.baseline(seed, r);
          const initSeed = derivedSeed(seed, 'init-seed', r);
          baselines.push({
            name,
            spec: { ...spec, name: `${study.name}-s${seed}-init-r${r}`, seed: initSeed },
          });
          twin(name, parent, 'init', 0, 0, r);
          continue;
        }
        for (const f of p.forkSteps) {
          const t = resolveForkStep(f, stepsPerEpoch);
          if (p.kind === 'seed') addSeedTwin(t, r);
          else {
            const scope = { ...(p.mask && { mask: p.mask }), ...(p.fraction && { fraction: p.fraction }) };
            for (const sigma of p.sigmas) addWeightTwin(p.kind, sigma, t, r, scope);
          }
        }
      }
    }
    const onset = study.onset;
    if (onset) {
      for (const t of extraForkSteps) {
        for (let r = 0; r < onset.repeats; r++) {
          if (onset.kind === 'seed') addSeedTwin(t, r);
          else for (const sigma of onset.sigmas) addWeightTwin(onset.kind, sigma, t, r, {});
        }
      }
    }
    for (const [forkStep, list] of [...members].sort(([a], [b]) => a - b)) {
      groups.push({ parent, forkStep, members: list });
    }
  }
  return { parents, baselines, groups, seedTwins, twins, stepsPerEpoch, totalSteps, checkpoints };
}
