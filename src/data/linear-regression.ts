/** Linear regression with a power-law input spectrum and a random linear teacher. */
import type { Rng } from '../rng/rng.js';
import { checkFraction, checkInt, checkNonNegative } from './check.js';
import { regressionSplit } from './rows.js';
import { splitIndices } from './split.js';
import type { Dataset, LinearRegressionSpec } from './types.js';

/** The generated data and its ground truth. */
export interface LinearRegressionData {
  /** [n, dim] inputs. */
  readonly x: Float32Array;
  /** [n] targets. */
  readonly y: Float32Array;
  /** Teacher weights w* (length dim). */
  readonly wStar: Float64Array;
  /** Input covariance eigenvalues λ_i = i^(−decay), i = 1..dim (the covariance is diag(λ)). */
  readonly lambda: Float64Array;
}

/**
 * n examples x ~ N(0, diag(λ)), λ_i = i^(−decay), with targets y = xᵀw* + noise·ε, ε ~ N(0, 1), and
 * w* ~ N(0, I/dim). Streams: `rng.stream('teacher')` for w*, `rng.stream('inputs')` for x,
 * `rng.stream('noise')` for ε.
 */
export function makeLinearRegression(
  n: number,
  dim: number,
  decay: number,
  noise: number,
  rng: Rng,
): LinearRegressionData {
  const lambda = Float64Array.from({ length: dim }, (_, i) => (i + 1) ** -decay);
  const wStar = rng.stream('teacher').fillNormal(new Float64Array(dim), 1 / Math.sqrt(dim));
  const z = rng.stream('inputs').fillNormal(new Float64Array(n * dim));
  const eps = rng.stream('noise').fillNormal(new Float64Array(n), noise);
  const sd = lambda.map(Math.sqrt);
  const x = new Float32Array(n * dim);
  const y = new Float32Array(n);
  for (let r = 0; r < n; r++) {
    let t = eps[r] as number;
    for (let j = 0; j < dim; j++) {
      const v = (z[r * dim + j] as number) * (sd[j] as number);
      x[r * dim + j] = v;
      t += v * (wStar[j] as number);
    }
    y[r] = t;
  }
  return { x, y, wStar, lambda };
}

/** The linear-regression dataset of `spec`, generated from `rng.stream('generate')` and split by
 * `rng.stream('split')`; meta holds `wStar` and `lambda` as number arrays. */
export function loadLinearRegression(spec: LinearRegressionSpec, rng: Rng): Dataset {
  const n = checkInt('data.n', spec.n, 2);
  const dim = checkInt('data.dim', spec.dim);
  const decay = checkNonNegative('data.decay', spec.decay);
  const noise = checkNonNegative('data.noise', spec.noise ?? 0);
  const testFraction = checkFraction('data.testFraction', spec.testFraction ?? 0.2);
  const d = makeLinearRegression(n, dim, decay, noise, rng.stream('generate'));
  const idx = splitIndices(n, testFraction, rng.stream('split'));
  return {
    name: 'linear-regression',
    inputDim: dim,
    outputDim: 1,
    task: 'regression',
    train: regressionSplit(d.x, dim, d.y, 1, idx.train),
    test: regressionSplit(d.x, dim, d.y, 1, idx.test),
    meta: { n, dim, decay, noise, testFraction, wStar: [...d.wStar], lambda: [...d.lambda] },
  };
}
