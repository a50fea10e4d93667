/**
 * Twins: fork a run from a parent's checkpoint at step t, perturb it before the update of step t,
 * and train it to the parent's last step on the same data stream (docs/methods.md §5).
 *
 * Divergence: each twin diverges on its own (see run.ts); in a lock-step group a diverged member
 * leaves the group and the others go on without it. A twin forked at a step its parent never
 * reached (the parent diverged before it) is recorded as diverged with reason `parent`, untrained.
 */
import { relative } from 'node:path';
import { gatherBatch } from '../data/batching.js';
import { createLockstepEngine, type LockstepEngine } from '../engine/ort/lockstep.js';
import { optimizerSlotCount, resolveOptimizer } from '../engine/types.js';
import { Rng } from '../rng/rng.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import { planRun } from '../spec/run-plan.js';
import type { Checkpoint } from '../store/index.js';
import { batchForStep } from './loop.js';
import {
  applyPerturbation,
  gaussianPerturbation,
  gradientPerturbation,
  type Perturbation,
  type PerturbationScope,
} from './perturb.js';
import type { RunProbe } from './probe.js';
import {
  createEngine,
  type Divergence,
  type OpenedRun,
  openRun,
  type RunJson,
  type RunStart,
  readRunJson,
  runContextParts,
  type TrainRunOptions,
  trainRun,
} from './run.js';
import { findRunCheckpoint } from './run-files.js';

/** A weight perturbation applied at the fork step. */
export interface WeightPerturbation extends PerturbationScope {
  /** `gaussian`: init-scaled noise; `batch`: the gradient of one extra minibatch. */
  readonly kind: 'gaussian' | 'batch';
  /** Size relative to the init norm (see initScaleNorm). */
  readonly sigma: number;
  /** Seed of the perturbation's own random stream (noise, entry subset, extra minibatch). */
  readonly seed: number;
}

/** Size of the extra minibatch of a `batch` perturbation when the run trains full-batch. */
const FULL_BATCH_PERTURBATION_SIZE = 128;

/** The perturbation vector for a parent state, from the parent's data and model. */
async function perturbationFor(
  parent: RunJson,
  params: Float32Array,
  p: WeightPerturbation,
): Promise<Perturbation> {
  const rng = Rng.fromSeed(p.seed).stream('perturb');
  if (p.kind === 'gaussian') return gaussianPerturbation(parent.layout, p.sigma, rng, p);
  const { spec } = parent;
  const { data, model } = runContextParts(spec);
  const size =
    spec.batchSize === 'full' ? Math.min(FULL_BATCH_PERTURBATION_SIZE, data.train.n) : spec.batchSize;
  const indices = rng.stream('batch').permutation(data.train.n).subarray(0, size);
  const engine = await createEngine(spec, model);
  try {
    const { grad } = await engine.gradient(params, gatherBatch(data.train, indices));
    return gradientPerturbation(parent.layout, p.sigma, grad, rng, p);
  } finally {
    await engine.dispose();
  }
}

/** One twin of a fork: where it goes and how it differs from the parent at the fork step. */
export interface ForkMember {
  readonly dir: string;
  /** Weight perturbation; absent for an unperturbed copy (the reference twin). */
  readonly perturbation?: WeightPerturbation;
}

/** How a twin differs from its parent, recorded in run.json (and hence in its spec hash). */
export interface ForkLineage {
  /** The parent's directory relative to the twin's, so that a study directory can move. */
  readonly parent: string;
  readonly forkStep: number;
  readonly perturbation?: WeightPerturbation & { readonly norm: number };
  /** Trained with batched weights in one graph per fork group (results differ in rounding only). */
  readonly lockstep?: true;
}

/**
 * The parent's run.json and its checkpoint at `forkStep`, which must exist unless the parent
 * diverged before it (then `cp` is undefined).
 */
function forkPoint(parentDir: string, forkStep: number): { parent: RunJson; cp?: Checkpoint } {
  const parent = readRunJson(parentDir);
  // Decode checkpoints one at a time up to the fork step, not the whole file.
  const { cp } = findRunCheckpoint(parentDir, undefined, forkStep);
  if (!cp && parent.status === 'diverged') return { parent };
  if (!cp) {
    throw new Error(
      `${parentDir} has no checkpoint at step ${forkStep} (has ${parent.checkpointSteps.join(', ')}); fork at a checkpointed step`,
    );
  }
  const slots = optimizerSlotCount(resolveOptimizer(parent.spec.optimizer));
  if (cp.opt.slots.length !== slots) {
    // Dropped when the run finished (TrainRunOptions.dropOptimizerState): a twin would start
    // without its parent's momentum, so it is refused rather than trained on a different state.
    throw new Error(
      `${parentDir}@${forkStep}: the checkpoint keeps no optimizer state (its run dropped it when it finished); a fork needs it: fork from a run trained with it kept (twinscope train, or a study's parent)`,
    );
  }
  return { parent, cp };
}

/** The start state of a twin: the parent's checkpoint at `forkStep`, perturbed. */
async function forkStart(
  parentDir: string,
  forkStep: number,
  member: ForkMember,
  lockstep: boolean,
  point = forkPoint(parentDir, forkStep),
): Promise<RunStart> {
  const { parent, cp } = point;
  if (!cp) {
    // The parent diverged before the fork step: no state to fork, nor to draw a perturbation norm from.
    const lineage = {
      parent: relative(member.dir, parentDir),
      forkStep,
      ...(member.perturbation && { perturbation: member.perturbation }),
      ...(lockstep && { lockstep: true }),
    };
    const diverged: Divergence = { reason: 'parent', step: parent.diverged?.step ?? forkStep };
    return { params: new Float32Array(0), opt: { step: forkStep, slots: [] }, lineage, diverged };
  }
  let params = cp.params;
  const lineage: { -readonly [K in keyof ForkLineage]: ForkLineage[K] } = {
    parent: relative(member.dir, parentDir),
    forkStep,
  };
  if (member.perturbation) {
    const eps = await perturbationFor(parent, cp.params, member.perturbation);
    params = applyPerturbation(cp.params, eps);
    lineage.perturbation = { ...member.perturbation, norm: eps.norm };
  }
  if (lockstep) lineage.lockstep = true;
  return { params, opt: cp.opt, lineage };
}

/**
 * Train a twin of the run in `parentDir` into `outDir`: start from the parent's checkpoint at
 * `forkStep` (which must exist, unless the parent diverged before it: the twin is then recorded as
 * diverged, reason `parent`), add the perturbation (if any), train to the parent's last step with
 * the parent's spec (hence its data order) or with `options.spec` (a `seed` twin: another data
 * seed). A twin with σ = 0 reproduces the parent bit for bit.
 */
export async function forkRun(
  parentDir: string,
  forkStep: number,
  perturbation: WeightPerturbation | undefined,
  outDir: string,
  options: Omit<TrainRunOptions, 'start'> & { spec?: ResolvedRunSpec } = {},
): Promise<RunJson> {
  const point = forkPoint(parentDir, forkStep);
  const member = perturbation ? { dir: outDir, perturbation } : { dir: outDir };
  const start = await forkStart(parentDir, forkStep, member, false, point);
  return trainRun(options.spec ?? point.parent.spec, outDir, { ...options, start });
}

/** Progress of a fork group: run-steps taken since the call started. */
export type GroupProgress = (runSteps: number) => void;

/**
 * Train every member of a fork group in lock-step: all start from the parent's checkpoint at
 * `forkStep` (each with its own perturbation) and see the parent's data stream, so one call of a
 * {@link LockstepEngine} per step trains them all with batched weights. Complete (or diverged)
 * members are skipped; interrupted ones resume from their last checkpoint, in sub-groups of equal
 * step. A member that diverges leaves its sub-group, which goes on with a new engine for the rest.
 * Members that share inputs stay bit-identical (the σ = 0 control).
 *
 * A spec with `diagnostics` or `sharpness` needs `options.probe`; each member is then measured at
 * the scheduled steps with the group's single-run evaluation engine, one member after another
 * (the measurements read the states, so the lock-step training is unchanged). With
 * `options.dropOptimizerState`, each member that completes keeps no optimizer slots (see
 * {@link TrainRunOptions.dropOptimizerState}).
 */
export async function trainForkGroup(
  parentDir: string,
  forkStep: number,
  members: readonly ForkMember[],
  onProgress?: GroupProgress,
  options: { readonly probe?: RunProbe; readonly dropOptimizerState?: boolean } = {},
): Promise<RunJson[]> {
  const point = forkPoint(parentDir, forkStep);
  const spec = point.parent.spec;
  const { data, model } = runContextParts(spec);
  const plan = planRun(spec, data.train.n);
  const engine = await createEngine(spec, model);
  const opened: OpenedRun[] = [];
  let lockstep: LockstepEngine | undefined;
  try {
    for (const m of members) {
      const start = await forkStart(parentDir, forkStep, m, true, point);
      const backend = `${engine.backend}, lock-step`;
      const ctx = {
        data,
        model,
        engine,
        backend,
        ...(options.probe && { probe: options.probe }),
        ...(options.dropOptimizerState && { dropOptimizerState: true }),
      };
      opened.push(await openRun(spec, m.dir, ctx, start));
    }
    const byStep = new Map<number, OpenedRun[]>();
    for (const run of opened) {
      if (run.mode === 'complete' || run.diverged) continue;
      const list = byStep.get(run.state.opt.step) ?? [];
      list.push(run);
      byStep.set(run.state.opt.step, list);
    }
    for (const [from, group] of [...byStep].sort(([a], [b]) => a - b)) {
      let runs = group;
      let step = from;
      // One engine per membership: a diverged member leaves, so its NaNs never share a call again.
      while (runs.length > 0 && step < plan.totalSteps) {
        lockstep = await createLockstepEngine(model, {
          optimizer: spec.optimizer,
          threads: spec.threads,
          runs: runs.length,
        });
        const states = runs.map((r) => r.state);
        while (step < plan.totalSteps) {
          const { batch, epoch, hash } = batchForStep(
            data.train,
            spec.batchSize,
            spec.orderSeed ?? spec.dataSeed,
            step,
          );
          const lr = plan.lr(step, epoch);
          const losses = await lockstep.trainStep(states, batch, lr);
          for (const [r, run] of runs.entries()) {
            await run.recordStep({ step, epoch, lr, loss: losses[r] as number, batchHash: hash });
          }
          onProgress?.(runs.length);
          step++;
          if (runs.some((r) => r.diverged)) break;
        }
        await lockstep.dispose();
        lockstep = undefined;
        runs = runs.filter((r) => !r.diverged);
      }
    }
    const out: RunJson[] = [];
    for (const run of opened) out.push(await run.finish());
    return out;
  } finally {
    for (const run of opened) run.close();
    await lockstep?.dispose();
    await engine.dispose();
  }
}
