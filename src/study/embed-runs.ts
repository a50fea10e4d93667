/**
 * Trajectory embeddings of several runs in one shared low-dimensional space (docs/methods.md §10): every
 * checkpoint of every run becomes one point.
 *
 * - `pca`: {@link trajectoryPca} of all checkpoints' flat parameters (reference: their mean). The
 *   runs must share one parameter layout. Coordinates are projections onto the principal directions.
 * - `inpca`: each checkpoint is the distribution of its outputs on a fixed set of examples (the
 *   first `examples` test examples, or train examples when the dataset has no test split): for
 *   cross-entropy classifiers the softmax outputs, with the categorical Bhattacharyya distances of
 *   {@link bhattacharyyaMatrix} (float64); for mse models (regression) a Gaussian N(prediction, s²)
 *   per example, with {@link gaussianBhattacharyyaMatrix} (‖Δμ‖² / 8s² per example). The distances
 *   between all checkpoints are embedded by {@link inpca}. The runs must share the dataset (spec
 *   and data seed) and the loss; their architectures may differ.
 *
 * `writeEmbedding` (results/embedding.ts) stores the result.
 */
import { availableParallelism } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { createOrtEngine } from '../engine/ort/engine.js';
import type { Engine } from '../engine/types.js';
import { bhattacharyyaMatrix, gaussianBhattacharyyaMatrix } from '../measure/bhattacharyya.js';
import { inpca } from '../measure/inpca.js';
import { trajectoryPca } from '../measure/pca.js';
import { modelGraphSpec } from '../model/graph.js';
import type { ParameterLayout } from '../model/layout.js';
import type { EmbedMethod, RunEmbedding } from '../results/embedding.js';
import { CHECKPOINTS_FILE, readCheckpoints } from '../store/index.js';
import { type RunJson, readRunJson, runContextParts } from '../train/run.js';
import { checkRunFiles } from '../train/run-files.js';
import { InputError } from '../util/errors.js';
import { canonical } from '../util/json.js';

/** Options of {@link embedRuns}. */
export interface EmbedRunsOptions {
  /** `pca` (weights) or `inpca` (softmax outputs, Bhattacharyya distances). */
  readonly method: EmbedMethod;
  /** Axes kept (k). Default 3, capped at the number of checkpoints. */
  readonly components?: number;
  /** InPCA: the first N test examples (train when there is no test split). Default 1,000. */
  readonly examples?: number;
  /** InPCA of mse models: the standard deviation s of the Gaussian outputs. Default 1. */
  readonly sigma?: number;
  /** ORT intra-op threads (InPCA only). Default: all available cores for the distance matrix, 1 for the forward passes. */
  readonly threads?: number;
  /** Progress messages. Default: none. */
  readonly log?: (message: string) => void;
}

/** Bad input to {@link embedRuns}: no runs, not a run directory, runs that cannot share an embedding. */
export class EmbedInputError extends InputError {
  override name = 'EmbedInputError';
}

interface LoadedRun {
  readonly dir: string;
  readonly label: string;
  readonly json: RunJson;
}

function loadRuns(runDirs: readonly string[]): LoadedRun[] {
  if (runDirs.length === 0) throw new EmbedInputError('no run directories given');
  const seen = new Set<string>();
  const runs = runDirs.map((dir) => {
    if (seen.has(resolve(dir))) throw new EmbedInputError(`${dir}: given twice`);
    seen.add(resolve(dir));
    let json: RunJson;
    try {
      json = readRunJson(dir);
    } catch (e) {
      throw new EmbedInputError((e as Error).message);
    }
    if (!json.spec || !json.layout)
      throw new EmbedInputError(`${join(dir, 'run.json')}: not a run's run.json`);
    return { dir, json };
  });
  const names = runs.map((r) => basename(resolve(r.dir)));
  const unique = new Set(names).size === names.length;
  return runs.map((r, i) => ({ ...r, label: unique ? (names[i] as string) : r.dir }));
}

function readAll(run: LoadedRun) {
  // A file that does not match its recorded checksum is a failure (exit 1), not bad input.
  checkRunFiles(run.dir, [CHECKPOINTS_FILE]);
  let checkpoints: ReturnType<typeof readCheckpoints>;
  try {
    checkpoints = readCheckpoints(run.dir);
  } catch (e) {
    // A missing or unreadable checkpoints.arrow: the directory does not hold a usable run.
    throw new EmbedInputError(`${run.dir}: cannot read its checkpoints (${(e as Error).message})`);
  }
  if (checkpoints.length === 0) throw new EmbedInputError(`${run.dir}: no checkpoints`);
  return checkpoints;
}

/**
 * Embed all checkpoints of `runDirs` in one space with PCA of the weights or InPCA of the softmax
 * outputs (see the module comment).
 * @throws EmbedInputError for no directories, a directory without run.json or checkpoints, or runs
 *   that cannot share the embedding (the message names the offending directory).
 */
export async function embedRuns(
  runDirs: readonly string[],
  options: EmbedRunsOptions,
): Promise<RunEmbedding> {
  const method = options.method;
  if (method !== 'pca' && method !== 'inpca') {
    throw new EmbedInputError(`unknown method '${String(method)}' (expected pca or inpca)`);
  }
  const wanted = options.components ?? 3;
  if (!Number.isInteger(wanted) || wanted < 1) {
    throw new EmbedInputError(`components must be a positive integer, got ${wanted}`);
  }
  const runs = loadRuns(runDirs);
  return method === 'pca' ? embedPca(runs, wanted, options) : embedInpca(runs, wanted, options);
}

function embedPca(runs: LoadedRun[], wanted: number, options: EmbedRunsOptions): RunEmbedding {
  const first = runs[0] as LoadedRun;
  // One layout: the same tensors at the same offsets (their init scales may differ: an init sweep).
  const shape = (l: ParameterLayout) =>
    canonical({ size: l.size, tensors: l.tensors.map((t) => [t.name, t.shape, t.offset]) });
  const layoutKey = shape(first.json.layout);
  for (const run of runs.slice(1)) {
    if (shape(run.json.layout) !== layoutKey) {
      throw new EmbedInputError(
        `${run.dir}: parameter layout differs from ${first.dir} (${run.json.layout.size} vs ` +
          `${first.json.layout.size} parameters); PCA of weights needs one model layout`,
      );
    }
  }
  const labels: { run: string; step: number }[] = [];
  const params: Float32Array[] = [];
  for (const run of runs) {
    for (const c of readAll(run)) {
      if (!c.params.every(Number.isFinite)) {
        throw new EmbedInputError(`${run.dir}: non-finite weights at step ${c.step} (did the run diverge?)`);
      }
      labels.push({ run: run.label, step: c.step });
      params.push(c.params);
    }
  }
  const k = Math.min(wanted, params.length);
  options.log?.(`pca of ${params.length} checkpoints × ${first.json.layout.size} parameters`);
  const pca = trajectoryPca(params, { components: k, reference: 'mean' });
  return {
    method: 'pca',
    runs: runs.map((r) => r.label),
    runDirs: runs.map((r) => r.dir),
    points: labels.map((l, i) => ({ ...l, coords: Array.from(pca.coordinates.subarray(i * k, i * k + k)) })),
    components: k,
    eigenvalues: pca.eigenvalues,
    explainedVarianceRatio: pca.explainedVarianceRatio,
    options: { components: k },
    pca,
  };
}

async function embedInpca(
  runs: LoadedRun[],
  wanted: number,
  options: EmbedRunsOptions,
): Promise<RunEmbedding> {
  const first = runs[0] as LoadedRun;
  const dataKey = (j: RunJson) => canonical({ data: j.spec.data, dataSeed: j.spec.dataSeed });
  const loss = first.json.spec.loss;
  for (const run of runs) {
    if (run.json.spec.loss !== loss) {
      throw new EmbedInputError(
        `${run.dir}: loss '${run.json.spec.loss}' differs from '${loss}' in ${first.dir}; InPCA reads ` +
          'all checkpoints as the same kind of distribution',
      );
    }
    if (dataKey(run.json) !== dataKey(first.json)) {
      throw new EmbedInputError(
        `${run.dir}: dataset differs from ${first.dir} (data spec or data seed); InPCA compares ` +
          'outputs on one fixed set of examples',
      );
    }
  }
  const gaussian = loss === 'mse';
  const sigma = options.sigma ?? 1;
  if (!(sigma > 0) || !Number.isFinite(sigma)) {
    throw new EmbedInputError(`sigma must be a positive number, got ${sigma}`);
  }
  const { data } = runContextParts(first.json.spec);
  const split = data.test.n > 0 ? 'test' : 'train';
  const source = data[split];
  const n = Math.min(options.examples ?? 1000, source.n);
  if (!Number.isInteger(n) || n < 1)
    throw new EmbedInputError(`examples must be a positive integer, got ${n}`);
  const x = source.x.subarray(0, n * data.inputDim);
  const classes = data.outputDim;

  const labels: { run: string; step: number }[] = [];
  const outputs: Float32Array[] = [];
  options.log?.(
    `${gaussian ? 'predictions' : 'softmax outputs'} of every checkpoint of ${runs.length} runs ` +
      `on ${n} ${split} examples`,
  );
  for (const run of runs) {
    const model = modelGraphSpec(run.json.spec.model, data.inputDim, data.outputDim, run.json.spec.loss);
    if (model.layout.size !== run.json.layout.size) {
      throw new EmbedInputError(`${run.dir}: the layout in run.json does not match its model spec`);
    }
    const engine: Engine = await createOrtEngine(model, {
      optimizer: run.json.spec.optimizer,
      threads: options.threads ?? 1,
    });
    try {
      const forward = gaussian ? engine.predictions : engine.probabilities;
      if (!forward) throw new Error(`${engine.backend}: no ${gaussian ? 'predictions' : 'probabilities'}`);
      for (const c of readAll(run)) {
        const out = await forward.call(engine, c.params, x, n);
        // A diverged run (NaN / ∞ weights) has no distribution to compare: name it, not a matrix index.
        if (!out.every(Number.isFinite)) {
          throw new EmbedInputError(
            `${run.dir}: non-finite outputs at step ${c.step} (did the run diverge?)`,
          );
        }
        labels.push({ run: run.label, step: c.step });
        outputs.push(out);
      }
    } finally {
      await engine.dispose();
    }
  }
  const m = outputs.length;
  options.log?.(`${gaussian ? 'Gaussian' : 'categorical'} Bhattacharyya distances between ${m} checkpoints`);
  const distances = gaussian
    ? gaussianBhattacharyyaMatrix(outputs, n, classes, { sigma })
    : await bhattacharyyaMatrix(outputs, n, classes, { threads: options.threads ?? availableParallelism() });
  const k = Math.min(wanted, m);
  const embedding = inpca({ rows: m, cols: m, data: distances }, { components: k });
  return {
    method: 'inpca',
    runs: runs.map((r) => r.label),
    runDirs: runs.map((r) => r.dir),
    points: labels.map((l, i) => ({
      ...l,
      coords: Array.from(embedding.coordinates.subarray(i * k, i * k + k)),
    })),
    components: k,
    eigenvalues: embedding.eigenvalues,
    explainedStress: embedding.explainedStress,
    options: {
      components: k,
      examples: n,
      split,
      likelihood: gaussian ? 'gaussian' : 'categorical',
      ...(gaussian && { sigma }),
    },
    inpca: embedding,
    distances,
  };
}
