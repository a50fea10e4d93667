/**
 * The geometry of one run of a sweep (the sweep's `measure` block, sweep-measure-spec.ts;
 * docs/methods.md §12), as long-form result rows (run_a = the run, run_b null) and surface files:
 *
 * - sharpness: the top-k Hessian eigenvalues of the training loss by {@link lanczos} and the trace by
 *   {@link hutchinsonTrace}, on {@link engineHvp} over the first `examples` training examples (in
 *   batches of at most {@link HVP_CHUNK} rows);
 * - sensitivity: {@link weightSensitivity} per noise kind (independent draws per σ) and
 *   {@link criticalSigma} (common random numbers) on {@link engineEvaluator};
 * - surfaces: {@link randomPlaneSurface} or {@link pcaSurface} (the trajectory up to the measured
 *   step), each written as its own Arrow file (results/surface-files.ts) next to the rows.
 *
 * One engine serves every measurement of the run (weights are graph inputs). A diverged run is not
 * measured: its one row is a `diverged` row saying why.
 */
import { join } from 'node:path';
import { firstRows } from '../data/rows.js';
import type { Batch, Dataset } from '../data/types.js';
import {
  adamPreconditioner,
  engineHvp,
  hutchinsonTrace,
  lanczos,
  preconditionedHvp,
  stabilityThreshold,
} from '../measure/hessian.js';
import { criticalSigma, engineEvaluator, weightSensitivity } from '../measure/sensitivity.js';
import {
  lossLine,
  pcaSurface,
  randomDirection,
  randomPlaneSurface,
  surfaceAxis,
} from '../measure/surface.js';
import { METRICS } from '../results/metrics.js';
import type { ResultRow } from '../results/rows.js';
import { type SurfaceData, writeSurface } from '../results/surface-files.js';
import { planRun } from '../spec/run-plan.js';
import type { Checkpoint } from '../store/index.js';
import { createEngine, type RunJson, readRunJson, runContextParts } from '../train/run.js';
import { readRunCheckpoints } from '../train/run-files.js';
import type { FileDigest } from '../util/file-digest.js';
import type { PhaseClock } from './breakdown.js';
import type { SweepMeasureSpec, SweepSurfaceSpec } from './sweep-measure-spec.js';

/** Rows per Hessian-vector product call: larger example sets are split into batches of this size. */
const HVP_CHUNK = 2048;

type Row = Omit<ResultRow, 'study' | 'runA' | 'runB'>;

/** What {@link measureRun} measured: the rows, and the surface files written (name → digest). */
export interface RunMeasurement {
  readonly rows: ResultRow[];
  /** Surface files written next to the rows' file (file names in `surfaceDir`), with their digests. */
  readonly surfaces: Record<string, FileDigest>;
}

/** Where a run's measurements go: the sweep, the run's name and the surface files' folder and stem. */
export interface RunMeasureTarget {
  /** The sweep's name (the `study` column). */
  readonly sweep: string;
  /** The run's name (the `run_a` column). */
  readonly run: string;
  /** The folder of the surface files (the sweep's measurements/). */
  readonly surfaceDir: string;
  /** The stem of the surface files (the measurement key): `<stem>.surface-<i>-<directions>-<step>.arrow`. */
  readonly stem: string;
  /** Prefix of `file` in the surface rows: the folder of the surface files relative to the sweep. */
  readonly relativeDir: string;
}

/**
 * The first `examples` (all when undefined) examples of a split as batches of at most
 * {@link HVP_CHUNK} rows of nearly equal size (so at most two batch shapes are compiled).
 */
function hvpBatches(split: Dataset['train'], examples: number | undefined): { batches: Batch[]; n: number } {
  const set = firstRows(split, examples ?? split.n);
  const count = Math.ceil(set.n / HVP_CHUNK);
  const inDim = set.x.length / set.n;
  const outDim = set.y.length / set.n;
  const batches: Batch[] = [];
  for (let b = 0; b < count; b++) {
    const lo = Math.floor((b * set.n) / count);
    const hi = Math.floor(((b + 1) * set.n) / count);
    batches.push({
      x: set.x.subarray(lo * inDim, hi * inDim),
      y: set.y.subarray(lo * outDim, hi * outDim),
      size: hi - lo,
    });
  }
  return { batches, n: set.n };
}

/** The first `examples` of `split` (the train split when the test split is empty), and the split used. */
function evaluationSet(data: Dataset, split: 'train' | 'test', examples: number | undefined) {
  const used = split === 'test' && data.test.n === 0 ? 'train' : split;
  const s = data[used];
  return { set: { ...firstRows(s, examples ?? s.n), task: data.task }, split: used };
}

/**
 * Measure the run in `runDir` at its last checkpoint (or at each step of `measure.at`): see the
 * module comment. Surface files are written into `target.surfaceDir`; the caller writes the rows
 * and the index that records every file (results/measurement-files.ts). `clock` times the
 * measurement kinds (`measure:sharpness`, `measure:sensitivity`, `measure:surface`; study/breakdown.ts).
 * @throws when the run has not ended, or a step of `measure.at` is not one of its checkpoints.
 */
export async function measureRun(
  runDir: string,
  measure: SweepMeasureSpec,
  target: RunMeasureTarget,
  clock?: PhaseClock,
): Promise<RunMeasurement> {
  const run = readRunJson(runDir);
  const tag = (rows: Row[]): ResultRow[] =>
    rows.map((r) => ({ study: target.sweep, runA: target.run, runB: null, ...r }));
  if (run.status === 'diverged') return { rows: tag([divergedRow(target.run, run, measure)]), surfaces: {} };
  if (run.status !== 'complete') {
    throw new Error(`measure ${target.run}: the run has not ended (run.json status ${run.status})`);
  }
  const checkpoints = readRunCheckpoints(runDir, run.layout);
  const steps = measure.at ?? [(checkpoints.at(-1) as { step: number }).step];
  const byStep = new Map(checkpoints.map((c) => [c.step, c]));
  const missing = steps.filter((s) => !byStep.has(s));
  if (missing.length > 0) {
    throw new Error(
      `measure ${target.run}: measure.at step(s) ${missing.join(', ')} are not checkpoints of the run ` +
        `(checkpoints: ${checkpoints.map((c) => c.step).join(', ')})`,
    );
  }
  const { data, model } = runContextParts(run.spec);
  const engine = await createEngine(run.spec, model);
  const classification = data.task === 'classification';
  const rows: Row[] = [];
  const surfaces: Record<string, FileDigest> = {};
  try {
    for (const step of steps) {
      const theta = (byStep.get(step) as { params: Float32Array }).params;
      /**
       * Run one measurement; when it throws (e.g. Hessian-vector products that overflow float32 on
       * the huge weights of a run at the edge of diverging), record `metric` as NaN with the error
       * instead: the failure is deterministic, so a re-run could not help.
       */
      const attempt = async (metric: string, split: 'train' | 'test', measured: () => Promise<void>) => {
        try {
          await measured();
        } catch (e) {
          const error = (e as Error).message;
          rows.push({ step, metric, layer: null, split, value: Number.NaN, options: { error } });
        }
      };
      const stopSharpness = measure.sharpness && clock?.start('measure:sharpness');
      if (measure.sharpness) {
        const s = measure.sharpness;
        const { batches, n } = hvpBatches(data.train, s.examples);
        const hvp = engineHvp(engine, theta, batches);
        const base = { step, layer: null, split: 'train' as const };
        await attempt(METRICS.sharpness, 'train', async () => {
          const top = await lanczos(hvp, theta.length, { k: s.topK, steps: s.steps, seed: s.seed });
          top.values.forEach((value, i) => {
            rows.push({
              ...base,
              metric: METRICS.sharpness,
              value,
              options: {
                k: i + 1,
                topK: s.topK,
                examples: n,
                steps: top.steps,
                residual: top.residuals[i] as number,
                converged: top.converged,
                seed: s.seed,
              },
            });
          });
        });
        const cp = byStep.get(step) as Checkpoint;
        if (run.spec.optimizer.kind !== 'sgd' && cp.opt.step >= 1 && cp.opt.slots.length >= 2) {
          // Adam's own edge of stability: λ_max(P⁻¹H) against (2 + 2β₁)/((1 − β₁)η).
          await attempt(METRICS.preconditionedSharpness, 'train', async () => {
            const plan = planRun(run.spec, data.train.n);
            const lrStep = Math.min(step, plan.totalSteps - 1);
            const lr = plan.lr(lrStep, Math.floor(lrStep / plan.stepsPerEpoch));
            const pre = preconditionedHvp(hvp, adamPreconditioner(cp.opt, run.spec.optimizer));
            const top = await lanczos(pre, theta.length, { k: 1, steps: s.steps, seed: s.seed });
            rows.push({
              ...base,
              metric: METRICS.preconditionedSharpness,
              value: top.values[0] as number,
              options: {
                threshold: stabilityThreshold(run.spec.optimizer, lr),
                lr,
                examples: n,
                steps: top.steps,
                residual: top.residuals[0] as number,
                converged: top.converged,
                seed: s.seed,
              },
            });
          });
        }
        if (s.probes > 0) {
          await attempt(METRICS.hessianTrace, 'train', async () => {
            const trace = await hutchinsonTrace(hvp, theta.length, { probes: s.probes, seed: s.seed });
            rows.push({
              ...base,
              metric: METRICS.hessianTrace,
              value: trace.mean,
              options: { probes: trace.probes, stderr: trace.stderr, examples: n, seed: s.seed },
            });
          });
        }
      }
      if (stopSharpness) stopSharpness();
      const stopSensitivity = measure.sensitivity && clock?.start('measure:sensitivity');
      if (measure.sensitivity) {
        const s = measure.sensitivity;
        const { set, split } = evaluationSet(data, s.split, s.examples);
        const evaluate = engineEvaluator(engine, set);
        // BatchNorm's running statistics are state, not weights: no noise on them.
        const frozen = engine.model.layout.tensors.filter((t) => t.role === 'buffer');
        for (const noise of s.noise) {
          const r = await weightSensitivity(evaluate, theta, s.sigmas, {
            noise,
            draws: s.draws,
            seed: s.seed,
            frozen,
          });
          for (const level of r.levels) {
            for (const stat of ['mean', 'std', 'min', 'max'] as const) {
              const options = {
                sigma: level.sigma,
                noise,
                draws: r.draws,
                stat,
                examples: set.n,
                seed: s.seed,
                streams: r.streams,
              };
              const base = { step, layer: null, split, options };
              rows.push({ ...base, metric: METRICS.sensitivityLoss, value: level.loss[stat] });
              if (classification) {
                rows.push({ ...base, metric: METRICS.sensitivityAccuracy, value: level.accuracy[stat] });
              }
            }
          }
          if (!classification) continue;
          const options = { noise, drop: s.drop, draws: s.draws, examples: set.n, seed: s.seed };
          try {
            const c = await criticalSigma(evaluate, theta, {
              noise,
              draws: s.draws,
              seed: s.seed,
              drop: s.drop,
              frozen,
            });
            rows.push({
              step,
              metric: METRICS.criticalSigma,
              layer: null,
              split,
              value: c.sigma,
              options: { ...options, clean: c.cleanAccuracy, lo: c.lo, hi: c.hi, probes: c.probes.length },
            });
          } catch (e) {
            // No crossing within the widened bracket (e.g. an accuracy already at chance): a NaN row.
            rows.push({
              step,
              metric: METRICS.criticalSigma,
              layer: null,
              split,
              value: Number.NaN,
              options: { ...options, clean: r.clean.accuracy, error: (e as Error).message },
            });
          }
        }
      }
      /** Surface `i` at this step: its file written, its row added. */
      const measureSurface = async (i: number, s: SweepSurfaceSpec) => {
        const { set, split } = evaluationSet(data, s.split, s.examples);
        const evaluate = engineEvaluator(engine, set);
        const axis = s.range && surfaceAxis(s.range[0], s.range[1], s.points);
        let surface: SurfaceData;
        const meta = { run: target.run, step, directions: s.directions, split, examples: set.n };
        if (s.directions === 'line') {
          const d = randomDirection(theta, run.layout, 0, { seed: s.seed });
          const r = await lossLine(evaluate, theta, { direction: d }, axis as number[]);
          const line = { seed: s.seed, normalization: 'filter', biases: 'zero', stream: 'eval/direction/0' };
          surface = {
            meta: { ...meta, ...line, norm: Math.sqrt(d.reduce((acc, v) => acc + v * v, 0)) },
            x: r.alphas,
            y: [0],
            loss: [r.loss],
            accuracy: [r.accuracy],
            path: [],
          };
        } else if (s.directions === 'random') {
          const r = await randomPlaneSurface(evaluate, theta, run.layout, {
            seed: s.seed,
            x: axis as number[],
            y: axis as number[],
          });
          const { kind: _kind, ...plane } = r.directions;
          surface = { meta: { ...meta, ...plane }, ...grid(r), path: [] };
        } else {
          const trajectory = checkpoints.filter((c) => c.step <= step);
          const r = await pcaSurface(
            evaluate,
            trajectory.map((c) => c.params),
            axis ? { x: axis, y: axis } : { points: s.points },
          );
          const path = [];
          for (const [t, c] of trajectory.entries()) {
            const [x, y] = r.plane.coordinates[t] as [number, number];
            const e = await evaluate(c.params);
            path.push({ step: c.step, x, y, loss: e.loss, accuracy: classification ? e.accuracy : null });
          }
          const plane = {
            explainedVarianceRatio: r.plane.explainedVarianceRatio,
            reference: r.plane.reference,
            checkpoints: trajectory.length,
          };
          surface = { meta: { ...meta, ...plane }, ...grid(r), path };
        }
        const file = `${target.stem}.surface-${i}-${s.directions}-${step}.arrow`;
        const digest = writeSurface(join(target.surfaceDir, file), surface);
        const center = await evaluate(theta);
        rows.push({
          step,
          metric: METRICS.surface,
          layer: null,
          split,
          value: center.loss,
          options: {
            directions: s.directions,
            points: s.points,
            x: [surface.x[0], surface.x.at(-1)],
            y: [surface.y[0], surface.y.at(-1)],
            examples: set.n,
            ...(s.directions !== 'pca' && { seed: s.seed }),
            file: `${target.relativeDir}/${file}`,
            sha256: digest.sha256,
            bytes: digest.bytes,
          },
        });
        return { file, digest };
      };
      if (stopSensitivity) stopSensitivity();
      const stopSurface = measure.surfaces.length > 0 && clock?.start('measure:surface');
      for (const [i, s] of measure.surfaces.entries()) {
        const { split } = evaluationSet(data, s.split, s.examples);
        await attempt(METRICS.surface, split, async () => {
          const written = await measureSurface(i, s);
          surfaces[written.file] = written.digest;
        });
      }
      if (stopSurface) stopSurface();
    }
  } finally {
    await engine.dispose();
  }
  return { rows: tag(rows), surfaces };
}

/** The grid of a measured surface, as stored. */
function grid(s: { x: number[]; y: number[]; loss: number[][]; accuracy: number[][] }) {
  return { x: s.x, y: s.y, loss: s.loss, accuracy: s.accuracy };
}

/** The row of a diverged run: not measured (value NaN), with the reason and what was skipped. */
function divergedRow(name: string, run: RunJson, measure: SweepMeasureSpec): Row {
  const d = run.diverged as NonNullable<RunJson['diverged']>;
  const skipped = [
    ...(measure.sharpness ? ['sharpness'] : []),
    ...(measure.sensitivity ? ['sensitivity'] : []),
    ...(measure.surfaces.length > 0 ? ['surface'] : []),
  ];
  return {
    step: d.step,
    metric: METRICS.diverged,
    layer: null,
    split: null,
    value: Number.NaN,
    options: {
      run: name,
      reason: d.reason,
      ...(d.value !== undefined && { nonFinite: d.value }),
      ...(d.lastCheckpoint !== undefined && { lastCheckpoint: d.lastCheckpoint }),
      skipped,
    },
  };
}
