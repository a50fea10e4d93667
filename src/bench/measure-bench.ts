/**
 * Measurement benchmark: how long twinscope's measurements take at the sizes a study uses, each
 * against a straightforward reference computed on the same inputs, with the agreement between the
 * two results.
 *
 * Cases (full sizes; `quick` shrinks every size so the test runs in seconds):
 * 1. `barrier`: {@link interpolationCurve} of two MLP 784-512-512-10 (He init, seeds 1 and 2) on
 *    10,000 random examples (standard normal inputs, uniform labels), 11 α points, on the ORT
 *    engine. Reference: the same curve with a plain-JS float64 forward pass (same float32
 *    interpolated parameters, softmax cross-entropy via log-sum-exp). The JS pass runs on the first
 *    `referenceExamples` examples only (1,000) and its time is scaled linearly to the full set
 *    (`reference.scaledFrom`); agreement is the largest |loss difference| over α between the ORT
 *    curve and the JS curve on that same subset (and the error curves' difference is reported too).
 * 2. `cka-linear dense{l}` / `cka-debiased dense{l}`: linear CKA between the two networks' hidden
 *    activations (engine.activations, n = 5,000, 512 units) in the feature-space form
 *    (`linearForm: 'auto'`). Reference: the n × n Gram-matrix form (`linearForm: 'gram'`).
 *    Agreement: |difference| of the two CKA values.
 * 3. `weight-matching`: {@link weightMatching} between two independent inits. Reference: the
 *    permuted-copy sanity check, weight matching of A against a randomly permuted copy of A; its
 *    agreement is the largest |aligned − A| entry (0 when the copy is recovered exactly). Both
 *    report sweeps and ms per sweep; `linearAssignmentMs` times one 512 × 512 assignment alone so
 *    that the rest of a sweep (building the C matrices) can be read off.
 *
 * 4. `activation-matching`: {@link activationMatching} (Pearson) of the two networks' hidden
 *    activations on the CKA examples. Reference: the same with `backend: 'js'`; agreement is the
 *    number of permutation entries that differ (0: the same permutations).
 *
 * Baselines (issue 16): every CKA, weight-matching and activation-matching case also times, once, the
 * previous implementation in the same run (`baseline`: plain-JS float64 products, `backend: 'js'`,
 * and for weight matching the Hungarian solver) and reports `speedupVsBaseline` = baseline ms ÷ ms
 * with the baseline's result compared to the new one (`baselineAgreement`). `cka-linear dense0` also
 * times both Gram forms (GEMM and plain JS) as `gram`.
 *
 * Timing: `warmup` untimed runs then the median of `repeats` timed runs for the twinscope side; the
 * references and baselines run once (they are slow and deterministic in cost). `speedup` =
 * reference ms ÷ ms. The GEMM kernels run at the benchmark's thread count.
 */

import type { Engine } from '../engine/types.js';
import { activationMatching, applyPermutations, weightMatching } from '../measure/align.js';
import { linearAssignment } from '../measure/assignment.js';
import { alphaGrid, interpolate, interpolationCurve } from '../measure/barrier.js';
import { cka, type Matrix } from '../measure/cka.js';
import { gemmThreads, setGemmThreads } from '../measure/gemm.js';
import type { ModelGraphSpec } from '../model/graph.js';
import { Rng } from '../rng/rng.js';
import { median } from '../util/stats.js';
import { checkPositiveInt } from './checks.js';
import { mlpSpec, modelName, randomBatch, randomParams } from './inputs.js';
import { type MachineInfo, machineInfo } from './machine.js';

export interface MeasureBenchOptions {
  /** Intra-op threads of the ORT engine. Default 1. */
  readonly threads?: number;
  /** Small sizes (for tests): seconds instead of minutes. Default false. */
  readonly quick?: boolean;
  /** Timed runs of the twinscope side (median reported). Default 3 (quick: 1). */
  readonly repeats?: number;
  /** Progress messages (the CLI sends them to stderr). Default: none. */
  readonly log?: (message: string) => void;
}

interface MeasureBenchCase {
  readonly name: string;
  /** What was timed on the twinscope side. */
  readonly what: string;
  readonly ms: number;
  readonly reference: {
    readonly name: string;
    readonly what: string;
    readonly ms: number;
    /** Set when the reference ran on a subset and `ms` was scaled up: measured ms and the subset. */
    readonly scaledFrom?: { readonly ms: number; readonly examples: number; readonly of: number };
  };
  /** reference.ms ÷ ms. */
  readonly speedup: number;
  /** Largest |difference| between the two results (see `agreementOf`). */
  readonly agreement: number;
  readonly agreementOf: string;
  readonly [extra: string]: unknown;
}

export interface MeasureBenchResult {
  readonly cases: MeasureBenchCase[];
  readonly sizes: MeasureBenchSizes;
  readonly threads: number;
  readonly timing: { readonly warmup: number; readonly repeats: number; readonly statistic: 'median' };
  readonly backend: string;
  readonly machine: MachineInfo;
}

interface MeasureBenchSizes {
  readonly widths: readonly number[];
  readonly barrierExamples: number;
  readonly referenceExamples: number;
  readonly alphas: number;
  readonly ckaExamples: number;
}

const FULL_SIZES: MeasureBenchSizes = {
  widths: [784, 512, 512, 10],
  barrierExamples: 10_000,
  referenceExamples: 1_000,
  alphas: 11,
  ckaExamples: 5_000,
};

const QUICK_SIZES: MeasureBenchSizes = {
  widths: [64, 48, 48, 10],
  barrierExamples: 400,
  referenceExamples: 200,
  alphas: 5,
  ckaExamples: 300,
};

/** Run the benchmark (see the module comment). */
export async function runMeasureBenchmark(options: MeasureBenchOptions = {}): Promise<MeasureBenchResult> {
  const threads = options.threads ?? 1;
  const quick = options.quick ?? false;
  const repeats = options.repeats ?? (quick ? 1 : 3);
  const warmup = 1;
  const log = options.log ?? (() => {});
  checkPositiveInt('threads', threads);
  checkPositiveInt('repeats', repeats);
  const sizes = quick ? QUICK_SIZES : FULL_SIZES;
  const { widths } = sizes;
  const spec = mlpSpec(widths);
  const a = randomParams(spec, 1);
  const b = randomParams(spec, 2);
  const { x, y } = randomBatch(spec, Math.max(sizes.barrierExamples, sizes.ckaExamples), 3);

  const { createOrtEngine } = await import('../engine/ort/engine.js');
  const engine = await createOrtEngine(spec, { optimizer: { kind: 'sgd', lr: 0.01 }, threads });
  const cases: MeasureBenchCase[] = [];
  const previousGemmThreads = gemmThreads();
  setGemmThreads(threads);
  try {
    const model = modelName(widths);
    cases.push(await barrierCase(engine, spec, a, b, x, y, sizes, model, warmup, repeats, log));
    cases.push(...(await ckaCases(engine, a, b, x, sizes.ckaExamples, warmup, repeats, log)));
    cases.push(weightMatchingCase(spec, a, b, model, warmup, repeats, log));
  } finally {
    setGemmThreads(previousGemmThreads);
    await engine.dispose();
  }
  return {
    cases,
    sizes,
    threads,
    timing: { warmup, repeats, statistic: 'median' },
    backend: engine.backend,
    machine: machineInfo(),
  };
}

async function barrierCase(
  engine: Engine,
  spec: ModelGraphSpec,
  a: Float32Array,
  b: Float32Array,
  x: Float32Array,
  y: Float32Array,
  sizes: MeasureBenchSizes,
  model: string,
  warmup: number,
  repeats: number,
  log: (message: string) => void,
): Promise<MeasureBenchCase> {
  const alphas = alphaGrid(sizes.alphas);
  const full = {
    x: x.subarray(0, sizes.barrierExamples * spec.inputDim),
    y: y.subarray(0, sizes.barrierExamples * spec.outputDim),
    n: sizes.barrierExamples,
  };
  log(`barrier: ORT interpolationCurve, ${sizes.barrierExamples} examples, ${alphas.length} alphas`);
  const ms = await medianMsAsync(warmup, repeats, () => interpolationCurve(engine, a, b, full, alphas));

  const m = Math.min(sizes.referenceExamples, sizes.barrierExamples);
  const sub = { x: x.subarray(0, m * spec.inputDim), y: y.subarray(0, m * spec.outputDim), n: m };
  const ortSub = await interpolationCurve(engine, a, b, sub, alphas);
  log(`barrier: JS float64 reference on ${m} examples`);
  const t0 = performance.now();
  const refLoss: number[] = [];
  const refError: number[] = [];
  for (const alpha of alphas) {
    const r = jsEvaluate(spec, interpolate(a, b, alpha), sub.x, sub.y, m);
    refLoss.push(r.loss);
    refError.push(r.error);
  }
  const refMeasured = performance.now() - t0;
  const refMs = (refMeasured * sizes.barrierExamples) / m;
  const maxDiff = (p: readonly number[], q: readonly number[]) =>
    Math.max(...p.map((v, i) => Math.abs(v - (q[i] as number))));
  return {
    name: 'barrier',
    what: `interpolationCurve on ORT (threads as given): ${model}, ${sizes.barrierExamples} random examples, ${alphas.length} alphas`,
    ms,
    reference: {
      name: 'js-float64-forward',
      what: `plain-JS float64 forward pass + softmax cross-entropy at the same float32 interpolated parameters, ${m} examples, time scaled ×${sizes.barrierExamples / m}`,
      ms: refMs,
      ...(m < sizes.barrierExamples
        ? { scaledFrom: { ms: refMeasured, examples: m, of: sizes.barrierExamples } }
        : {}),
    },
    speedup: refMs / ms,
    agreement: maxDiff(ortSub.loss, refLoss),
    agreementOf: `max over alpha of |ORT loss - JS loss| on the ${m}-example subset`,
    errorAgreement: maxDiff(ortSub.error, refError),
    lossCurve: ortSub.loss,
  };
}

async function ckaCases(
  engine: Engine,
  a: Float32Array,
  b: Float32Array,
  x: Float32Array,
  n: number,
  warmup: number,
  repeats: number,
  log: (message: string) => void,
): Promise<MeasureBenchCase[]> {
  const xs = x.subarray(0, n * engine.model.inputDim);
  const actA = await engine.activations(a, xs, n);
  const actB = await engine.activations(b, xs, n);
  const cases: MeasureBenchCase[] = [];
  for (const [layer, dataA] of actA) {
    const dataB = actB.get(layer) as Float32Array;
    const cols = dataA.length / n;
    const mx: Matrix = { rows: n, cols, data: dataA };
    const my: Matrix = { rows: n, cols: dataB.length / n, data: dataB };
    for (const debiased of [false, true]) {
      const name = `cka-${debiased ? 'debiased' : 'linear'} ${layer}`;
      log(`${name}: n = ${n}, ${cols} units`);
      let value = Number.NaN;
      const ms = medianMs(warmup, repeats, () => {
        value = cka(mx, my, { debiased });
      });
      const t0 = performance.now();
      const ref = cka(mx, my, { debiased, linearForm: 'gram' });
      const refMs = performance.now() - t0;
      const t1 = performance.now();
      const before = cka(mx, my, { debiased, backend: 'js' });
      const beforeMs = performance.now() - t1;
      let gram: Record<string, number> | undefined;
      if (!debiased && layer === actA.keys().next().value) {
        log(`${name}: Gram form, GEMM and plain JS`);
        const t2 = performance.now();
        const gramJs = cka(mx, my, { linearForm: 'gram', backend: 'js' });
        const gramJsMs = performance.now() - t2;
        gram = {
          gemmMs: refMs,
          jsMs: gramJsMs,
          speedup: gramJsMs / refMs,
          agreement: Math.abs(ref - gramJs),
        };
      }
      cases.push({
        name,
        what: `cka(linear${debiased ? ', debiased' : ''}) feature-space form on the GEMM, n = ${n}, ${cols} x ${my.cols} units`,
        ms,
        reference: {
          name: 'gram-form',
          what: `cka(..., { linearForm: 'gram'${debiased ? ', debiased: true' : ''} }): two n x n Gram matrices (GEMM)`,
          ms: refMs,
        },
        speedup: refMs / ms,
        agreement: Math.abs(value - ref),
        agreementOf: '|CKA feature form - CKA Gram form|',
        value,
        referenceValue: ref,
        baseline: {
          what: "cka(..., { backend: 'js' }): the feature form with plain-JS float64 cross-products",
          ms: beforeMs,
        },
        speedupVsBaseline: beforeMs / ms,
        baselineAgreement: Math.abs(value - before),
        ...(gram ? { gram } : {}),
      });
    }
  }
  log(`activation-matching: n = ${n}, GEMM and plain JS`);
  let perms: Int32Array[] = [];
  const amMs = medianMs(warmup, repeats, () => {
    perms = activationMatching(actA, actB, n);
  });
  const t3 = performance.now();
  const refPerms = activationMatching(actA, actB, n, { backend: 'js' });
  const amRefMs = performance.now() - t3;
  let differ = 0;
  perms.forEach((p, l) => {
    p.forEach((v, i) => {
      if (v !== refPerms[l]?.[i]) differ++;
    });
  });
  cases.push({
    name: 'activation-matching',
    what: `activationMatching (Pearson) of the hidden activations, n = ${n}, cross-moments on the GEMM`,
    ms: amMs,
    reference: {
      name: 'js-cross-moments',
      what: "activationMatching(..., { backend: 'js' }): plain-JS float64 cross-moments",
      ms: amRefMs,
    },
    speedup: amRefMs / amMs,
    agreement: differ,
    agreementOf: 'permutation entries that differ from the plain-JS result (0: identical)',
  });
  return cases;
}

function weightMatchingCase(
  spec: ModelGraphSpec,
  a: Float32Array,
  b: Float32Array,
  model: string,
  warmup: number,
  repeats: number,
  log: (message: string) => void,
): MeasureBenchCase {
  const layout = spec.layout;
  log(`weight-matching: ${model}, independent inits`);
  let result = weightMatching(a, b, layout, { seed: 0 });
  const ms = medianMs(warmup - 1, repeats, () => {
    result = weightMatching(a, b, layout, { seed: 0 });
  });

  const permRng = Rng.fromSeed(4).stream('perm');
  const hidden = spec.layers.slice(0, -1).map((l) => l.outputs);
  const truePerms = hidden.map((w, i) => Int32Array.from(permRng.stream('layer', i).permutation(w)));
  const copy = applyPermutations(a, layout, truePerms);
  log('weight-matching: permuted-copy sanity check');
  const t0 = performance.now();
  const ref = weightMatching(a, copy, layout, { seed: 0 });
  const refMs = performance.now() - t0;
  let maxDiff = 0;
  for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(ref.aligned[i]! - a[i]!));

  log('weight-matching: the previous implementation (plain-JS products, Hungarian solver)');
  const t1 = performance.now();
  const before = weightMatching(a, b, layout, { seed: 0, backend: 'js' });
  const beforeMs = performance.now() - t1;
  let differ = 0;
  result.perms.forEach((p, l) => {
    p.forEach((v, i) => {
      if (v !== before.perms[l]?.[i]) differ++;
    });
  });

  // One assignment of the widest hidden layer's size, alone, with each solver.
  const w = Math.max(...hidden);
  const cost = Rng.fromSeed(5)
    .stream('cost')
    .fillNormal(new Float64Array(w * w));
  const lapMs = medianMs(1, 3, () => linearAssignment({ rows: w, cols: w, data: cost }, { maximize: true }));
  const hungarianMs = medianMs(0, 1, () =>
    linearAssignment({ rows: w, cols: w, data: cost }, { maximize: true, solver: 'hungarian' }),
  );
  return {
    name: 'weight-matching',
    what: `weightMatching(A, B) of two independent He inits of ${model}, seed 0`,
    ms,
    reference: {
      name: 'permuted-copy',
      what: 'weightMatching(A, A with random hidden permutations): the sanity check that recovers the copy',
      ms: refMs,
    },
    speedup: refMs / ms,
    agreement: maxDiff,
    agreementOf: 'max |aligned permuted copy - A| (0: recovered exactly)',
    sweeps: result.sweeps,
    converged: result.converged,
    msPerSweep: ms / result.sweeps,
    referenceSweeps: ref.sweeps,
    referenceConverged: ref.converged,
    referenceMsPerSweep: refMs / ref.sweeps,
    linearAssignmentMs: lapMs,
    hungarianMs,
    linearAssignmentSize: w,
    baseline: {
      what: "weightMatching(A, B, { backend: 'js' }): plain-JS float64 similarity products, Hungarian assignment",
      ms: beforeMs,
      sweeps: before.sweeps,
      converged: before.converged,
    },
    speedupVsBaseline: beforeMs / ms,
    baselineAgreement: differ,
    baselineAgreementOf: 'permutation entries that differ from the baseline (0: identical)',
    hiddenLayers: hidden.length,
  };
}

/**
 * Plain float64 forward pass of a dense MLP (weights [out, in] row-major, bias, per-layer
 * activation relu, tanh or linear) with mean softmax cross-entropy and argmax error.
 */
export function jsEvaluate(
  spec: ModelGraphSpec,
  params: Float32Array,
  x: Float32Array,
  y: Float32Array,
  n: number,
): { loss: number; error: number } {
  const slots = new Map(spec.layout.tensors.map((t) => [t.name, t]));
  const layers = spec.layers.map((layer) => {
    const w = slots.get(`${layer.name}.weight`)!;
    const bias = slots.get(`${layer.name}.bias`);
    return {
      inputs: layer.inputs,
      outputs: layer.outputs,
      activation: layer.activation,
      w: Float64Array.from(params.subarray(w.offset, w.offset + w.size)),
      b: bias ? Float64Array.from(params.subarray(bias.offset, bias.offset + bias.size)) : null,
    };
  });
  const outDim = spec.outputDim;
  let lossSum = 0;
  let wrong = 0;
  for (let r = 0; r < n; r++) {
    let h = Float64Array.from(x.subarray(r * spec.inputDim, (r + 1) * spec.inputDim));
    for (const l of layers) {
      const out = new Float64Array(l.outputs);
      for (let o = 0; o < l.outputs; o++) {
        const wo = o * l.inputs;
        let s = l.b ? l.b[o]! : 0;
        for (let i = 0; i < l.inputs; i++) s += l.w[wo + i]! * h[i]!;
        out[o] = l.activation === 'relu' ? Math.max(s, 0) : l.activation === 'tanh' ? Math.tanh(s) : s;
      }
      h = out;
    }
    let max = -Infinity;
    let argmax = 0;
    for (let k = 0; k < outDim; k++) {
      if (h[k]! > max) {
        max = h[k]!;
        argmax = k;
      }
    }
    let sumExp = 0;
    for (let k = 0; k < outDim; k++) sumExp += Math.exp(h[k]! - max);
    const lse = max + Math.log(sumExp);
    let target = 0;
    let yDot = 0;
    let ySum = 0;
    for (let k = 0; k < outDim; k++) {
      const t = y[r * outDim + k]!;
      if (t > y[r * outDim + target]!) target = k;
      yDot += t * h[k]!;
      ySum += t;
    }
    lossSum += ySum * lse - yDot;
    if (argmax !== target) wrong++;
  }
  return { loss: lossSum / n, error: wrong / n };
}

/** Median wall time in ms of `repeats` runs of `fn` after `warmup` untimed runs. */
function medianMs(warmup: number, repeats: number, fn: () => void): number {
  for (let i = 0; i < warmup; i++) fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** {@link medianMs} for an async `fn`. */
async function medianMsAsync(warmup: number, repeats: number, fn: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    times.push(performance.now() - t0);
  }
  return median(times);
}

/** Human-readable table of a result (the CLI prints it without --json). */
export function formatMeasureBench(result: MeasureBenchResult): string {
  const lines = [`threads ${result.threads}, ${result.backend}, ${result.machine.cpu}`, ''];
  const header = ['case', 'ms', 'reference', 'ref ms', 'speedup', 'agreement'];
  const rows = result.cases.map((c) => [
    c.name,
    c.ms.toFixed(1),
    c.reference.name,
    c.reference.ms.toFixed(1),
    `${c.speedup.toFixed(2)}x`,
    c.agreement.toExponential(2),
  ]);
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) {
    lines.push(
      row.map((cell, i) => (i === 0 || i === 2 ? cell.padEnd(w[i]!) : cell.padStart(w[i]!))).join('  '),
    );
  }
  return lines.join('\n');
}
