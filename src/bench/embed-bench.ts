/**
 * Trajectory-embedding benchmark (docs/methods.md §10): the InPCA pipeline at the size of a study — the
 * m × m Bhattacharyya distance matrix of m checkpoints' softmax outputs on N examples of C classes,
 * then the InPCA eigen-decomposition.
 *
 * Inputs are synthetic: `runs` trajectories (default 4) of m / runs checkpoints each; checkpoint t
 * of run r has logits z_n(c) = b_n(c) + s_t (a_{r,n}(c)) + 0.3 sin(3 s_t) e_{r,n}(c) with
 * s_t = 3t / (steps − 1) and standard-normal b, a, e (seeded), softmaxed to float32 probabilities.
 *
 * Timed:
 * - `distance`: {@link bhattacharyyaMatrix} (ORT backend, `floatType`, `threads`, `kernel`, `chunk`)
 *   on all m.
 * - `baseline` (only with `compareKernel`): the same call with `kernel: compareKernel` (e.g. the
 *   earlier 'blocks' graph) on the same inputs, in the same process right after `distance`;
 *   `baseline.ratio` = baseline ms ÷ distance ms, `baseline.agreementAbsolute` the largest
 *   |distance − baseline| over the whole matrix.
 * - `reference`: {@link bhattacharyyaMatrixJs} (plain JS float64) on the first
 *   `referenceCheckpoints` checkpoints, once; `reference.scaledMs` scales it by the pair count
 *   m(m−1) / (r(r−1)) to the full size. `speedup` = scaledMs ÷ distance ms. `agreement` is the
 *   largest relative difference between the two on the shared sub-matrix (`agreementAbsolute` the
 *   largest absolute one; the relative one is largest on the smallest distances, between
 *   neighbouring checkpoints).
 * - `inpca`: {@link inpca} on the full matrix (double centring + eigen-decomposition + top-k
 *   eigenvectors).
 * Memory: `peakRssBytes` is the largest `process.memoryUsage().rss` sampled every 100 ms during the
 * run; `vmHwmBytes` the kernel's high-water mark of the process (/proc/self/status VmHWM, Linux),
 * which also covers anything before the benchmark started.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { FloatType } from '../engine/onnx/emit.js';
import { bhattacharyyaMatrix, bhattacharyyaMatrixJs } from '../measure/bhattacharyya.js';
import { inpca } from '../measure/inpca.js';
import { Rng } from '../rng/rng.js';
import { checkPositiveInt } from './checks.js';
import { type MachineInfo, machineInfo } from './machine.js';

export interface EmbedBenchOptions {
  /** Checkpoints m. Default 2,000 (quick: 24). */
  readonly m?: number;
  /** Examples N. Default 10,000 (quick: 100). */
  readonly n?: number;
  /** Classes C. Default 10. */
  readonly classes?: number;
  /** Small sizes for tests. Default false. */
  readonly quick?: boolean;
  /** Trajectories the m checkpoints are split into. Default 4. */
  readonly runs?: number;
  /** Checkpoints the JS reference runs on. Default 64 (or m when smaller). */
  readonly referenceCheckpoints?: number;
  /** ORT intra-op threads. Default: all available cores. */
  readonly threads?: number;
  /** ORT float type. Default 'float64'. */
  readonly floatType?: FloatType;
  /** Checkpoints per ORT block. Default 64. */
  readonly block?: number;
  /** ORT kernel of {@link bhattacharyyaMatrix}. Default 'chunks'. */
  readonly kernel?: 'chunks' | 'blocks';
  /** Samples per ORT run of the 'chunks' kernel. Default: bhattacharyyaMatrix's. */
  readonly chunk?: number;
  /** Also time this kernel on the same inputs (before/after in one run). Default: none. */
  readonly compareKernel?: 'chunks' | 'blocks';
  /** InPCA axes. Default 3. */
  readonly components?: number;
  /** Progress messages. Default: none. */
  readonly log?: (message: string) => void;
}

export interface EmbedBenchResult {
  readonly sizes: { readonly m: number; readonly n: number; readonly classes: number; readonly runs: number };
  readonly threads: number;
  readonly floatType: FloatType;
  readonly block: number;
  readonly kernel: 'chunks' | 'blocks';
  /** Generating the synthetic probabilities (not part of the pipeline). */
  readonly generateMs: number;
  readonly distance: { readonly ms: number; readonly pairs: number; readonly nsPerPairSample: number };
  /** The `compareKernel` timing (null without it). */
  readonly baseline: {
    readonly kernel: 'chunks' | 'blocks';
    readonly ms: number;
    readonly nsPerPairSample: number;
    /** baseline ms ÷ distance ms. */
    readonly ratio: number;
    /** Largest |distance − baseline| over all m² entries. */
    readonly agreementAbsolute: number;
  } | null;
  readonly reference: {
    readonly checkpoints: number;
    readonly ms: number;
    readonly scaledMs: number;
    readonly nsPerPairSample: number;
  };
  /** reference.scaledMs ÷ distance.ms. */
  readonly speedup: number;
  /** Largest |fast − reference| / reference over the shared off-diagonal entries. */
  readonly agreement: number;
  /** Largest |fast − reference| over the shared entries. */
  readonly agreementAbsolute: number;
  readonly inpca: {
    readonly ms: number;
    readonly components: number;
    readonly eigenvalues: number[];
    readonly explainedStress: number[];
  };
  /** distance.ms + inpca.ms. */
  readonly totalMs: number;
  readonly peakRssBytes: number;
  readonly vmHwmBytes: number | null;
  readonly machine: MachineInfo;
}

/** Synthetic softmax trajectories (see the module comment). */
export function syntheticTrajectories(
  m: number,
  n: number,
  classes: number,
  runs: number,
  seed = 1,
): Float32Array[] {
  const size = n * classes;
  const rng = Rng.fromSeed(seed).stream('embed-bench');
  const base = rng.stream('base').fillNormal(new Float32Array(size));
  const out: Float32Array[] = [];
  const z = new Float64Array(classes);
  for (let r = 0; r < runs; r++) {
    const steps = Math.floor(m / runs) + (r < m % runs ? 1 : 0);
    const dir = rng.stream('dir', r).fillNormal(new Float32Array(size));
    const wobble = rng.stream('wobble', r).fillNormal(new Float32Array(size));
    for (let t = 0; t < steps; t++) {
      const s = steps > 1 ? (3 * t) / (steps - 1) : 0;
      const w = 0.3 * Math.sin(3 * s);
      const p = new Float32Array(size);
      for (let i = 0; i < n; i++) {
        const o = i * classes;
        let max = Number.NEGATIVE_INFINITY;
        for (let c = 0; c < classes; c++) {
          const v = (base[o + c] as number) + s * (dir[o + c] as number) + w * (wobble[o + c] as number);
          z[c] = v;
          max = Math.max(max, v);
        }
        let sum = 0;
        for (let c = 0; c < classes; c++) {
          const e = Math.exp((z[c] as number) - max);
          z[c] = e;
          sum += e;
        }
        for (let c = 0; c < classes; c++) p[o + c] = (z[c] as number) / sum;
      }
      out.push(p);
    }
  }
  return out;
}

function vmHwm(): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Run the benchmark (see the module comment). */
export async function runEmbedBenchmark(options: EmbedBenchOptions = {}): Promise<EmbedBenchResult> {
  const quick = options.quick ?? false;
  const m = options.m ?? (quick ? 24 : 2000);
  const n = options.n ?? (quick ? 100 : 10_000);
  const classes = options.classes ?? 10;
  const runs = Math.min(options.runs ?? 4, m);
  const threads = options.threads ?? availableParallelism();
  const floatType = options.floatType ?? 'float64';
  const block = Math.min(options.block ?? 64, m);
  const kernel = options.kernel ?? 'chunks';
  const components = Math.min(options.components ?? 3, m);
  const refM = Math.min(options.referenceCheckpoints ?? 64, m);
  const log = options.log ?? (() => {});
  for (const [name, v] of Object.entries({ m, n, classes, runs, threads, block, refM }))
    checkPositiveInt(name, v);
  if (refM < 2) throw new Error('referenceCheckpoints must be at least 2');

  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 100);
  try {
    log(`generating ${m} checkpoints × ${n} examples × ${classes} classes`);
    let t0 = performance.now();
    const probs = syntheticTrajectories(m, n, classes, runs);
    const generateMs = performance.now() - t0;

    const pairs = (m * (m - 1)) / 2;
    const distances = async (which: 'chunks' | 'blocks') => {
      log(`distance matrix (ORT ${floatType}, ${threads} threads, blocks of ${block}, kernel '${which}')`);
      const start = performance.now();
      let lastReport = start;
      const matrix = await bhattacharyyaMatrix(probs, n, classes, {
        threads,
        floatType,
        block,
        kernel: which,
        ...(options.chunk !== undefined && { chunk: options.chunk }),
        progress: (done, total) => {
          if (performance.now() - lastReport > 10_000) {
            lastReport = performance.now();
            log(
              `  ${done}/${total} ${which === 'chunks' ? 'sample chunks' : 'block pairs'}, ${((lastReport - start) / 1000).toFixed(0)} s`,
            );
          }
        },
      });
      return { matrix, ms: performance.now() - start };
    };
    const fast = await distances(kernel);
    const d = fast.matrix;
    const distanceMs = fast.ms;
    peak = Math.max(peak, process.memoryUsage().rss);
    let baseline: EmbedBenchResult['baseline'] = null;
    if (options.compareKernel !== undefined) {
      const other = await distances(options.compareKernel);
      let worst = 0;
      for (let i = 0; i < m * m; i++) {
        worst = Math.max(worst, Math.abs((other.matrix[i] as number) - (d[i] as number)));
      }
      baseline = {
        kernel: options.compareKernel,
        ms: other.ms,
        nsPerPairSample: (other.ms * 1e6) / (pairs * n),
        ratio: other.ms / distanceMs,
        agreementAbsolute: worst,
      };
      log(`  ${options.compareKernel} / ${kernel}: ${baseline.ratio.toFixed(2)}×`);
      peak = Math.max(peak, process.memoryUsage().rss);
    }

    log(`JS reference on ${refM} checkpoints`);
    t0 = performance.now();
    const ref = bhattacharyyaMatrixJs(probs.slice(0, refM), n, classes);
    const refMs = performance.now() - t0;
    let agreement = 0;
    let agreementAbsolute = 0;
    for (let u = 0; u < refM; u++) {
      for (let v = 0; v < refM; v++) {
        const r = ref[u * refM + v] as number;
        const diff = Math.abs((d[u * m + v] as number) - r);
        agreementAbsolute = Math.max(agreementAbsolute, diff);
        if (u !== v && r > 0) agreement = Math.max(agreement, diff / r);
      }
    }

    log(`InPCA (${components} axes) of the ${m} × ${m} matrix`);
    t0 = performance.now();
    const e = inpca({ rows: m, cols: m, data: d }, { components });
    const inpcaMs = performance.now() - t0;
    peak = Math.max(peak, process.memoryUsage().rss);

    const refPairs = (refM * (refM - 1)) / 2;
    const scaledMs = (refMs * pairs) / refPairs;
    return {
      sizes: { m, n, classes, runs },
      threads,
      floatType,
      block,
      kernel,
      generateMs,
      distance: { ms: distanceMs, pairs, nsPerPairSample: (distanceMs * 1e6) / (pairs * n) },
      baseline,
      reference: { checkpoints: refM, ms: refMs, scaledMs, nsPerPairSample: (refMs * 1e6) / (refPairs * n) },
      speedup: scaledMs / distanceMs,
      agreement,
      agreementAbsolute,
      inpca: { ms: inpcaMs, components, eigenvalues: e.eigenvalues, explainedStress: e.explainedStress },
      totalMs: distanceMs + inpcaMs,
      peakRssBytes: peak,
      vmHwmBytes: vmHwm(),
      machine: machineInfo(),
    };
  } finally {
    clearInterval(sampler);
  }
}
