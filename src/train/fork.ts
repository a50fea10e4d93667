/**
 * Twins: fork a run from a parent's checkpoint at step t, perturb it before the update of step t,
 * and train it to the parent's last step on the same data stream (METHODS §1).
 */
import { gatherBatch } from '../data/batching.js';
import { loadDataset } from '../data/load.js';
import { modelGraphSpec } from '../model/graph.js';
import { Rng } from '../rng/rng.js';
import { readCheckpoints } from '../store/index.js';
import {
  applyPerturbation,
  gaussianPerturbation,
  gradientPerturbation,
  type Perturbation,
  type PerturbationScope,
} from './perturb.js';
import { createEngine, type RunJson, readRunJson, type TrainRunOptions, trainRun } from './run.js';

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
  const data = loadDataset(spec.data, spec.dataSeed);
  const model = modelGraphSpec(spec.model, data.inputDim, data.outputDim, spec.loss);
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

/**
 * Train a twin of the run in `parentDir` into `outDir`: start from the parent's checkpoint at
 * `forkStep` (which must exist), add the perturbation, train to the parent's last step with the
 * parent's spec (hence its data order). A twin with σ = 0 reproduces the parent bit for bit.
 */
export async function forkRun(
  parentDir: string,
  forkStep: number,
  perturbation: WeightPerturbation,
  outDir: string,
  options: Omit<TrainRunOptions, 'start'> = {},
): Promise<RunJson> {
  const parent = readRunJson(parentDir);
  const cp = readCheckpoints(parentDir).find((c) => c.step === forkStep);
  if (!cp) {
    throw new Error(
      `${parentDir} has no checkpoint at step ${forkStep} (has ${parent.checkpointSteps.join(', ')}); fork at a checkpointed step`,
    );
  }
  const eps = await perturbationFor(parent, cp.params, perturbation);
  return trainRun(parent.spec, outDir, {
    ...options,
    start: {
      params: applyPerturbation(cp.params, eps),
      opt: cp.opt,
      lineage: { parent: parentDir, forkStep, perturbation: { ...perturbation, norm: eps.norm } },
    },
  });
}
