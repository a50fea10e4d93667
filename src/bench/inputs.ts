/**
 * The benchmarks' models and inputs: MLPs by their layer widths, and parameters and batches drawn
 * from the project's {@link Rng} with fixed seeds. Timings do not depend on the values; the seeds only
 * make every run of a benchmark see the same inputs.
 */
import type { Batch } from '../data/types.js';
import { type ModelGraphSpec, modelGraphSpec } from '../model/graph.js';
import { initParams } from '../model/init.js';
import { Rng } from '../rng/rng.js';

/** Name of the MLP with layer widths `widths` (input to output), e.g. `mlp-784-256-256-10`. */
export function modelName(widths: readonly number[]): string {
  return `mlp-${widths.join('-')}`;
}

/** The MLP with layer widths `widths` (input to output): ReLU hidden layers, He init, softmax cross-entropy. */
export function mlpSpec(widths: readonly number[]): ModelGraphSpec {
  return modelGraphSpec(
    { kind: 'mlp', hidden: widths.slice(1, -1) },
    widths[0]!,
    widths.at(-1)!,
    'cross-entropy',
  );
}

/**
 * He-initialised parameters of an {@link mlpSpec} model, as a run with seed `seed` draws them
 * ({@link initParams} from stream `init`).
 */
export function randomParams(spec: ModelGraphSpec, seed: number): Float32Array {
  return initParams(spec.layout, { kind: 'he' }, Rng.fromSeed(seed).stream('init'));
}

/**
 * `size` examples from stream `data` of seed `seed`: standard-normal inputs (sub-stream `x`) and
 * one-hot targets with uniform labels (sub-stream `y`).
 */
export function randomBatch(spec: ModelGraphSpec, size: number, seed: number): Batch {
  const rng = Rng.fromSeed(seed).stream('data');
  const x = rng.stream('x').fillNormal(new Float32Array(size * spec.inputDim));
  const y = new Float32Array(size * spec.outputDim);
  const labels = rng.stream('y');
  for (let r = 0; r < size; r++) y[r * spec.outputDim + labels.int(spec.outputDim)] = 1;
  return { x, y, size };
}
