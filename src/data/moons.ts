/** scikit-learn's `make_moons`: two interleaving half circles. */
import type { Rng } from '../rng/rng.js';
import { checkFraction, checkInt, checkNonNegative } from './check.js';
import { classificationSplit } from './rows.js';
import { splitIndices } from './split.js';
import type { Dataset, MoonsSpec } from './types.js';

/** numpy.linspace(0, π, m): i·π/(m − 1), with the last point exactly π (m = 1 gives [0]). */
function linspacePi(m: number): Float64Array {
  const t = new Float64Array(m);
  const step = Math.PI / (m - 1);
  for (let i = 0; i < m; i++) t[i] = i * step;
  if (m > 1) t[m - 1] = Math.PI;
  return t;
}

/**
 * `n` points with the geometry of scikit-learn's make_moons: n_out = ⌊n/2⌋ outer points
 * (cos t, sin t) with label 0 and n_in = n − n_out inner points (1 − cos t, 1 − sin t − 0.5) with
 * label 1, t on linspace(0, π, ·); rows shuffled by `rng.stream('shuffle')`, then N(0, noise²) added
 * to every coordinate from `rng.stream('noise')`. Returns x [n, 2] and labels.
 */
export function makeMoons(n: number, noise: number, rng: Rng): { x: Float32Array; labels: Int32Array } {
  const nOut = Math.floor(n / 2);
  const nIn = n - nOut;
  const px = new Float64Array(n);
  const py = new Float64Array(n);
  const lab = new Int32Array(n);
  linspacePi(nOut).forEach((t, i) => {
    px[i] = Math.cos(t);
    py[i] = Math.sin(t);
  });
  linspacePi(nIn).forEach((t, i) => {
    px[nOut + i] = 1 - Math.cos(t);
    py[nOut + i] = 1 - Math.sin(t) - 0.5;
    lab[nOut + i] = 1;
  });
  const perm = rng.stream('shuffle').permutation(n);
  const eps = rng.stream('noise').fillNormal(new Float64Array(2 * n), noise);
  const x = new Float32Array(2 * n);
  const labels = new Int32Array(n);
  perm.forEach((src, r) => {
    x[2 * r] = (px[src] as number) + (eps[2 * r] as number);
    x[2 * r + 1] = (py[src] as number) + (eps[2 * r + 1] as number);
    labels[r] = lab[src] as number;
  });
  return { x, labels };
}

/** The moons dataset of `spec`, generated from `rng.stream('generate')` and split by `rng.stream('split')`. */
export function loadMoons(spec: MoonsSpec, rng: Rng): Dataset {
  const n = checkInt('data.n', spec.n, 2);
  const noise = checkNonNegative('data.noise', spec.noise ?? 0.1);
  const testFraction = checkFraction('data.testFraction', spec.testFraction ?? 0.2);
  const { x, labels } = makeMoons(n, noise, rng.stream('generate'));
  const idx = splitIndices(n, testFraction, rng.stream('split'));
  return {
    name: 'moons',
    inputDim: 2,
    outputDim: 2,
    task: 'classification',
    train: classificationSplit(x, 2, labels, 2, idx.train),
    test: classificationSplit(x, 2, labels, 2, idx.test),
    meta: { n, noise, testFraction },
  };
}
