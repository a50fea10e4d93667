/**
 * The measurements of one twin pair, as long-form result rows (docs/methods.md §6–8): distances at every
 * checkpoint step the two runs share (from the fork step on) or at the last one, interpolation
 * curves and barriers (both conventions, loss and error, on the chosen splits), weight and
 * activation matching followed by aligned L2 and aligned barriers, and CKA per hidden layer.
 * Every row carries the options of the definition that produced it.
 *
 * A pair with a diverged run (run.json status `diverged`) is measured at the checkpoint steps both
 * runs kept (all finite: up to the divergence); measurements taken at the end are not taken (the
 * pair has no end), and a measurement that fails or gives a non-finite value at a kept step (the
 * weights just before a divergence can be huge) is dropped. One `diverged` row per diverged run
 * records where it diverged and what was left out.
 */
import { join } from 'node:path';
import { firstRows } from '../data/rows.js';
import type { Dataset } from '../data/types.js';
import type { Engine } from '../engine/types.js';
import {
  activationMatching,
  applyPermutations,
  type PermutationSpec,
  weightMatching,
} from '../measure/align.js';
import {
  alphaGrid,
  barrier,
  type InterpolationCurve,
  interpolationCurve,
  type NormHandling,
} from '../measure/barrier.js';
import { cka } from '../measure/cka.js';
import { cosineSimilarity, l2Distance, normalizedL2, perTensorL2 } from '../measure/distance.js';
import { permutationSpecFor } from '../measure/net-permutation-spec.js';
import { hasNormBuffers } from '../model/graph.js';
import { trainableEntries } from '../model/layout.js';
import { METRICS, type TwinInfo } from '../results/metrics.js';
import type { ResultRow } from '../results/rows.js';
import type { Checkpoint } from '../store/index.js';
import { createEngine, type RunJson, readRunJson, runContextParts } from '../train/run.js';
import { readRunCheckpoints } from '../train/run-files.js';
import type { PhaseClock } from './breakdown.js';
import type { MeasureSpec } from './spec.js';

type Row = Omit<ResultRow, 'study' | 'runA' | 'runB'>;

/** Rows per batch, and most batches, of the data pass that recomputes BatchNorm statistics. */
const NORM_BATCH = 128;
const NORM_BATCHES = 100;

/**
 * BatchNorm statistics along a curve (docs/methods.md §6.2): recomputed for every point on the first
 * min(n_train, 100 × 128) train examples in batches of 128; undefined for models without BatchNorm.
 */
function normHandling(engine: Engine, data: Dataset): NormHandling | undefined {
  if (!hasNormBuffers(engine.model)) return undefined;
  const pass = firstRows(data.train, NORM_BATCH * NORM_BATCHES);
  return { mode: 'recompute', x: pass.x, n: pass.n, batch: NORM_BATCH };
}

/**
 * Interpolation curves of one step by the permutations B was aligned with ('' = B as trained) and
 * split. An alignment that finds B's own order (the identity: most twins), or the same permutations
 * as another method, gives bit for bit the same B, hence the same curve: it is evaluated once.
 */
type CurveCache = Map<string, InterpolationCurve>;

/** The cache key of B permuted by `perms`: '' when every permutation is the identity. */
function permutationKey(perms: readonly Int32Array[]): string {
  const identity = perms.every((p) => p.every((v, i) => v === i));
  return identity ? '' : perms.map((p) => p.join(',')).join(';');
}

/** Interpolation curve and barriers (both conventions, loss and error) of θ_A → θ_B on each split. */
async function barrierRows(
  engine: Engine,
  a: Float32Array,
  b: Float32Array,
  step: number,
  data: Dataset,
  spec: NonNullable<MeasureSpec['barrier']>,
  prefix: { loss: string; error: string } | undefined,
  extra: Record<string, unknown>,
  cached?: { curves: CurveCache; key: string },
): Promise<Row[]> {
  const rows: Row[] = [];
  const alphas = alphaGrid(spec.alphas);
  const norm = normHandling(engine, data);
  const tagged = norm ? { ...extra, bn: norm.mode, bnExamples: norm.n, bnBatch: norm.batch } : extra;
  for (const split of spec.splits) {
    const set = { ...firstRows(data[split], spec.examples), task: data.task };
    if (set.n === 0) continue;
    const key = cached && `${cached.key}|${split}`;
    let curve = key === undefined ? undefined : cached?.curves.get(key);
    if (!curve) {
      curve = await interpolationCurve(engine, a, b, set, alphas, norm);
      if (key !== undefined) cached?.curves.set(key, curve);
    }
    const base = { step, layer: null, split } as const;
    if (!prefix) {
      curve.alphas.forEach((alpha, i) => {
        const options = { ...tagged, alpha, alphas: alphas.length, examples: set.n };
        rows.push({ ...base, metric: METRICS.interpLoss, value: curve.loss[i] as number, options });
        rows.push({ ...base, metric: METRICS.interpError, value: curve.error[i] as number, options });
      });
    }
    for (const convention of ['linear', 'midpoint-mean'] as const) {
      for (const [metric, values] of [
        [prefix?.loss ?? METRICS.lossBarrier, curve.loss],
        [prefix?.error ?? METRICS.errorBarrier, curve.error],
      ] as const) {
        const r = barrier(values, curve.alphas, convention);
        // The barrier's own options win: `examples` is the set the curve was evaluated on (an
        // activation alignment's matching set size is in its aligned_l2 row).
        const options = {
          ...tagged,
          convention,
          alphaStar: r.alphaStar,
          alphas: alphas.length,
          examples: set.n,
        };
        rows.push({ ...base, metric, value: r.value, options });
      }
    }
  }
  return rows;
}

/** What {@link measurePair} returns: the rows, and B aligned to A at the last step per method. */
export interface PairMeasurement {
  readonly rows: ResultRow[];
  readonly aligned: { method: 'weight' | 'activation'; step: number; perms: Int32Array[] }[];
}

/**
 * Measure twin B (`runs/<twin.runB>`) against twin A (`runs/<twin.runA>`) under `root`.
 * Amplification uses the perturbation norm recorded in B's lineage (weight perturbations only).
 * Either run may have diverged (see the module comment); both must have ended. `clock` times each
 * measurement kind (`measure:distance`, `measure:barrier`, `measure:align-weight`,
 * `measure:align-activation`, `measure:cka`; study/breakdown.ts).
 */
export async function measurePair(
  root: string,
  study: string,
  twin: TwinInfo,
  measure: MeasureSpec,
  clock?: PhaseClock,
): Promise<PairMeasurement> {
  const dirA = join(root, twin.runA);
  const dirB = join(root, twin.runB);
  const runA = readRunJson(dirA);
  const runB = readRunJson(dirB);
  const ended = (r: RunJson) => r.status === 'complete' || r.status === 'diverged';
  if (!ended(runA) || !ended(runB)) {
    throw new Error(`measure ${twin.runB}: both runs must be complete or diverged (${dirA}, ${dirB})`);
  }
  const diverged = [
    { name: twin.runA, run: runA },
    { name: twin.runB, run: runB },
  ].filter(({ run }) => run.diverged);
  const layout = runA.layout;
  const cpsB = new Map(readRunCheckpoints(dirB).map((c) => [c.step, c]));
  const pairs: [Checkpoint, Checkpoint][] = [];
  for (const c of readRunCheckpoints(dirA)) {
    const other = cpsB.get(c.step);
    if (other && c.step >= twin.forkStep) pairs.push([c, other]);
  }
  if (pairs.length === 0 && diverged.length === 0)
    throw new Error(`measure ${twin.runB}: no checkpoint step shared with ${twin.runA}`);
  const lastStep = pairs.at(-1)?.[0].step;
  // A pair with a diverged run has no end: what is measured at the end is not measured.
  const endStep = diverged.length === 0 ? lastStep : undefined;
  const when = (at: 'checkpoints' | 'end' | undefined, step: number) =>
    at === 'checkpoints' || (at === 'end' && step === endStep);
  const epsNorm = (runB.lineage.perturbation as { norm?: number } | undefined)?.norm ?? 0;

  const spec = runA.spec;
  const needsEngine = pairs.length > 0 && Boolean(measure.barrier || measure.align || measure.cka);
  const parts = needsEngine ? runContextParts(spec) : undefined;
  const data = parts?.data;
  const engine = parts ? await createEngine(spec, parts.model) : undefined;
  /** The model's permutation spec (src/measure/net-permutation-spec.ts), built on first use. */
  let permSpec: PermutationSpec | undefined;
  const permutationSpec = (): PermutationSpec => {
    if (!parts) throw new Error(`measure ${twin.runB}: alignment needs the model`);
    permSpec ??= permutationSpecFor(parts.model);
    return permSpec;
  };
  const rows: Row[] = [];
  const aligned: PairMeasurement['aligned'] = [];
  const dropped: { step: number; measurement: string; error: string }[] = [];
  /**
   * Add the rows of one measurement at one step. In a pair with a diverged run, a measurement that
   * fails or gives a non-finite value is dropped and noted instead of failing the pair.
   */
  const take = async (step: number, measurement: string, measured: () => Row[] | Promise<Row[]>) => {
    const stop = clock?.start(`measure:${measurement.replace(' ', '-')}`);
    try {
      await takeRows(step, measurement, measured);
    } finally {
      stop?.();
    }
  };
  const takeRows = async (step: number, measurement: string, measured: () => Row[] | Promise<Row[]>) => {
    if (diverged.length === 0) {
      rows.push(...(await measured()));
      return;
    }
    try {
      const got = await measured();
      const bad = got.find((r) => !Number.isFinite(r.value));
      if (bad) dropped.push({ step, measurement, error: `${bad.metric} is ${bad.value}` });
      else rows.push(...got);
    } catch (e) {
      dropped.push({ step, measurement, error: (e as Error).message });
    }
  };
  try {
    for (const [ca, cb] of pairs) {
      const { step } = ca;
      const a = ca.params;
      const b = cb.params;
      if (when(measure.distance?.at, step)) {
        await take(step, 'distance', () => {
          const base = { step, split: null, options: {} } as const;
          // Distances are over the parameters: BatchNorm's running statistics are state, not weights.
          const [pa, pb] = [trainableEntries(a, layout), trainableEntries(b, layout)];
          const l2 = l2Distance(pa, pb);
          const out: Row[] = [{ ...base, metric: METRICS.l2, layer: null, value: l2 }];
          for (const [name, value] of Object.entries(perTensorL2(a, b, layout))) {
            out.push({ ...base, metric: METRICS.l2, layer: name, value });
          }
          out.push({ ...base, metric: METRICS.normalizedL2, layer: null, value: normalizedL2(pa, pb) });
          out.push({ ...base, metric: METRICS.cosine, layer: null, value: cosineSimilarity(pa, pb) });
          if (epsNorm > 0) {
            out.push({
              ...base,
              metric: METRICS.amplification,
              layer: null,
              value: l2 / epsNorm,
              options: { epsNorm },
            });
          }
          return out;
        });
      }
      if (!engine || !data) continue;
      const curves: CurveCache = new Map();
      const barrierSpec = measure.barrier;
      if (barrierSpec && when(barrierSpec.at, step)) {
        await take(step, 'barrier', () =>
          barrierRows(engine, a, b, step, data, barrierSpec, undefined, {}, { curves, key: '' }),
        );
      }
      const alignSpec = measure.align;
      if (alignSpec && when(alignSpec.at, step) && permutationSpec().perms.length > 0) {
        for (const method of alignSpec.methods) {
          await take(step, `align ${method}`, async () => {
            let perms: Int32Array[];
            let extra: Record<string, unknown> = { method };
            if (method === 'weight') {
              const r = weightMatching(a, b, layout, { seed: 0, spec: permutationSpec() });
              perms = r.perms;
              extra = { method, sweeps: r.sweeps, converged: r.converged };
            } else {
              const set = firstRows(data.train, alignSpec.examples);
              const [actsA, actsB] = [
                await engine.activations(a, set.x, set.n),
                await engine.activations(b, set.x, set.n),
              ];
              perms = activationMatching(actsA, actsB, set.n, {
                spec: permutationSpec(),
                weights: { a, b, layout },
              });
              extra = { method, examples: set.n, correlation: 'pearson' };
            }
            const bAligned = applyPermutations(b, layout, perms, permutationSpec());
            const out: Row[] = [
              {
                step,
                metric: METRICS.alignedL2,
                layer: null,
                split: null,
                value: l2Distance(a, bAligned),
                options: extra,
              },
            ];
            if (measure.barrier) {
              const names = { loss: METRICS.alignedLossBarrier, error: METRICS.alignedErrorBarrier };
              const cached = { curves, key: permutationKey(perms) };
              out.push(
                ...(await barrierRows(
                  engine,
                  a,
                  bAligned,
                  step,
                  data,
                  measure.barrier,
                  names,
                  extra,
                  cached,
                )),
              );
            }
            if (step === endStep) aligned.push({ method, step, perms });
            return out;
          });
        }
      }
      const ckaSpec = measure.cka;
      if (ckaSpec && when(ckaSpec.at, step)) {
        await take(step, 'cka', async () => {
          const set = firstRows(data.test.n > 0 ? data.test : data.train, ckaSpec.examples);
          const split = data.test.n > 0 ? 'test' : 'train';
          const [actsA, actsB] = [
            await engine.activations(a, set.x, set.n),
            await engine.activations(b, set.x, set.n),
          ];
          const { kernel, debiased } = ckaSpec;
          const out: Row[] = [];
          for (const [layer, xa] of actsA) {
            const xb = actsB.get(layer) as Float32Array;
            const cols = xa.length / set.n;
            const value = cka(
              { rows: set.n, cols, data: xa },
              { rows: set.n, cols, data: xb },
              { kernel, debiased },
            );
            out.push({
              step,
              metric: METRICS.cka,
              layer,
              split,
              value,
              options: { kernel, debiased, examples: set.n },
            });
          }
          return out;
        });
      }
    }
  } finally {
    await engine?.dispose();
  }
  // What a diverged run left unmeasured: everything after the last kept step, the end, drops.
  const endSkipped = (['distance', 'barrier', 'align', 'cka'] as const).filter(
    (k) => measure[k]?.at === 'end',
  );
  for (const { name, run } of diverged) {
    const d = run.diverged as NonNullable<RunJson['diverged']>;
    rows.push({
      step: d.step,
      metric: METRICS.diverged,
      layer: null,
      split: null,
      value: lastStep ?? Number.NaN,
      options: {
        run: name,
        reason: d.reason,
        ...(d.value !== undefined && { nonFinite: d.value }),
        endSkipped,
        dropped,
      },
    });
  }
  return {
    rows: rows.map((r) => ({ study, runA: twin.runA, runB: twin.runB, ...r })),
    aligned,
  };
}
