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
 */
export function loadDataset(spec: DatasetSpec, seed: number): Dataset {
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
