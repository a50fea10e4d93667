/** `loadDataset`: one entry point for every dataset spec. */
import { Rng } from '../rng/rng.js';
import { loadArrow } from './arrow.js';
import { DataError } from './check.js';
import { loadFashionMnist } from './fashion-mnist.js';
import { loadLinearRegression } from './linear-regression.js';
import { loadMnist } from './mnist.js';
import { loadMoons } from './moons.js';
import { standardize } from './split.js';
import type { Dataset, DatasetSpec } from './types.js';
import { validateDataset } from './validate.js';

/**
 * Load (or generate) the dataset of `spec` with data seed `seed`. Every random choice (generation,
 * split, subsets) draws from `Rng.fromSeed(seed).stream('data')`, so the same spec and seed give the
 * same dataset everywhere. With `standardize`, inputs are z-scored with train statistics, which are
 * recorded in `meta.standardize` ({ mean, std }). Every dataset is checked once, here
 * ({@link validateDataset}); bad data or a bad dataset spec throws a DataError (bad input).
 * The arrays are shared with later calls for the same spec and seed (the process keeps the
 * {@link LOADED_DATASETS} most recently used; `arrow` datasets are re-read): do not modify them.
 */
export function loadDataset(spec: DatasetSpec, seed: number): Dataset {
  // Generated and bundled datasets are a function of (spec, seed): a process that loads the same
  // one again (a pool worker runs many jobs of one study) reuses it. Arrow files can change on disk
  // between loads, so they are read every time.
  if (spec.name === 'arrow') return loadFresh(spec, seed);
  const key = `${seed}:${JSON.stringify(spec)}`;
  const hit = loaded.get(key);
  if (hit) {
    loaded.delete(key);
    loaded.set(key, hit);
    return hit;
  }
  const data = loadFresh(spec, seed);
  loaded.set(key, data);
  if (loaded.size > LOADED_DATASETS) loaded.delete(loaded.keys().next().value as string);
  return data;
}

/** Datasets kept by {@link loadDataset} (least recently used first); full Fashion-MNIST is ≈ 220 MB. */
const LOADED_DATASETS = 2;
const loaded = new Map<string, Dataset>();

function loadFresh(spec: DatasetSpec, seed: number): Dataset {
  const rng = Rng.fromSeed(seed).stream('data');
  const raw = loadRaw(spec, rng);
  validateDataset(raw);
  if (!spec.standardize) return raw;
  const s = standardize(raw.train, raw.test, raw.inputDim);
  return {
    ...raw,
    train: s.train,
    test: s.test,
    meta: { ...raw.meta, standardize: { mean: s.mean, std: s.std } },
  };
}

function loadRaw(spec: DatasetSpec, rng: Rng): Dataset {
  switch (spec.name) {
    case 'moons':
      return loadMoons(spec, rng);
    case 'mnist':
      return loadMnist(spec, rng);
    case 'fashion-mnist':
      return loadFashionMnist(spec, rng);
    case 'arrow':
      return loadArrow(spec, rng);
    case 'linear-regression':
      return loadLinearRegression(spec, rng);
    default:
      throw new DataError(
        `unknown dataset '${(spec as { name?: unknown }).name}' (expected moons, mnist, fashion-mnist, arrow or linear-regression)`,
      );
  }
}
