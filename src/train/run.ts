/**
 * One run on disk: a resolved run spec trained into a run directory (run.json, checkpoints.arrow,
 * metrics.arrow), resumable after a crash or kill at any moment.
 *
 * Order of writes: metrics rows of the steps up to a checkpoint, then the checkpoint. On resume the
 * store drops metric rows past the last complete checkpoint and training continues from it; the data
 * order depends on (data seed, step) only, so a resumed run ends bit-identical to an uninterrupted one.
 *
 * Measurements along training: a spec with `diagnostics` or `sharpness` also keeps diagnostics.arrow,
 * filled by a {@link RunProbe} (probe.ts) at the scheduled steps; its rows are appended with the
 * metric rows before each checkpoint and dropped with them on resume, so they too end bit-identical.
 *
 * Divergence: a non-finite training loss (checked every step) or non-finite parameters (checked at
 * every checkpoint and evaluation, and at a forked run's start) ends the run with status `diverged`
 * ({@link Divergence}): the store keeps the checkpoints up to the last finite one and is finalized,
 * and a re-run does not retrain it (a deterministic run diverges the same way again).
 */

import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset } from '../data/load.js';
import { firstRows } from '../data/rows.js';
import type { Dataset } from '../data/types.js';
import { createOrtEngine } from '../engine/ort/engine.js';
import { createTfjsEngine } from '../engine/tfjs/engine.js';
import { type Engine, optimizerSlotCount, resolveOptimizer, type TrainState } from '../engine/types.js';
import { modelGraphSpec } from '../model/graph.js';
import { initParams } from '../model/init.js';
import { defaultInit } from '../model/spec.js';
import { Rng } from '../rng/rng.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import { planRun } from '../spec/run-plan.js';
import {
  CHECKPOINTS_FILE,
  type DiagnosticRow,
  type MetricRow,
  NotARunDirError,
  openRunWriter,
  StoreError,
} from '../store/index.js';
import { InputError } from '../util/errors.js';
import { lockFolder } from '../util/folder-lock.js';
import { configHash } from '../util/json.js';
import { formatBelow, readSealedJson, writeSealedJson } from '../util/sealed-json.js';
import { removeStrayTemps } from '../util/stray-temps.js';
import { toolkitVersion } from '../version.js';
import { type StepRecord, trainUntil } from './loop.js';
import type { RunProbe } from './probe.js';

/**
 * Version of the run directory layout written to run.json. 2: run.json is sealed (its own sha256 in
 * `checksum`, util/sealed-json.ts); 1 had no seal and is still read.
 */
const RUN_FORMAT = 2;

/**
 * Where and why a run diverged (run.json `diverged`): the first non-finite value seen.
 *
 * - `loss`: the batch loss of training step `step` (before its update) is not finite;
 * - `parameters`: the parameters after `step` updates (at a checkpoint or an evaluation, or a
 *   forked run's perturbed start) hold a non-finite entry;
 * - `parent`: a twin forked at a step its parent never reached: the parent diverged at `step`, before
 *   the fork step, so the twin has no start state and was not trained.
 */
export interface Divergence {
  readonly reason: 'loss' | 'parameters' | 'parent';
  readonly step: number;
  /** The non-finite value as text (`NaN`, `Infinity`, `-Infinity`; JSON has no NaN); absent for `parent`. */
  readonly value?: string;
  /** For `parameters`: the tensor holding the first non-finite entry. */
  readonly tensor?: string;
  /** The last checkpoint kept (all kept checkpoints are finite); absent when none was written. */
  readonly lastCheckpoint?: number;
}

/** A divergence in words: `at step 10 (training loss NaN)`. */
export function formatDivergence(d: Divergence): string {
  const what =
    d.reason === 'loss'
      ? `training loss ${d.value ?? 'not finite'}`
      : d.reason === 'parameters'
        ? `non-finite parameters${d.tensor ? ` in ${d.tensor}` : ''}${d.value ? ` (${d.value})` : ''}`
        : 'its parent diverged before the fork step';
  const kept =
    d.lastCheckpoint === undefined ? 'no checkpoint kept' : `checkpoints kept to step ${d.lastCheckpoint}`;
  return `at step ${d.step} (${what}; ${kept})`;
}

/** The first non-finite entry of `params` (index and value), or undefined when all are finite. */
function firstNonFinite(params: Float32Array): { index: number; value: number } | undefined {
  for (let i = 0; i < params.length; i++) {
    const v = params[i] as number;
    // v - v is 0 for finite v and NaN for ±∞ and NaN: one subtraction per entry.
    if (v - v !== 0) return { index: i, value: v };
  }
  return undefined;
}

/** What a run directory's run.json holds. */
export interface RunJson {
  readonly format: number;
  readonly toolkit: string;
  /** `running` until the run ends; then `complete`, or `diverged` (see {@link RunJson.diverged}). */
  readonly status: 'running' | 'complete' | 'diverged';
  /** sha256 of the canonical JSON of the resolved spec: a directory holds one spec only. */
  readonly specHash: string;
  readonly spec: ResolvedRunSpec;
  readonly seeds: { readonly init: number; readonly data: number; readonly order?: number };
  readonly lineage: { readonly parent?: string; readonly forkStep?: number; readonly perturbation?: unknown };
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
  readonly checkpointSteps: readonly number[];
  readonly layout: ReturnType<typeof modelGraphSpec>['layout'];
  readonly backend?: string;
  readonly files?: Record<string, { sha256: string; rows: number; bytes: number }>;
  readonly final?: MetricRow;
  /** Present when status is `diverged`; `checkpointSteps` then lists the checkpoints kept. */
  readonly diverged?: Divergence;
}

/** Progress of a run, reported after every step. */
export interface RunProgress {
  readonly step: number;
  readonly totalSteps: number;
  readonly loss: number;
  readonly resumedFrom: number;
}

/** Where a forked run starts: a parent's state at `lineage.forkStep`, already perturbed. */
export interface RunStart {
  readonly params: Float32Array;
  readonly opt: { step: number; slots: Float32Array[] };
  readonly lineage: RunJson['lineage'];
  /**
   * Set when there is no start state (the parent diverged before the fork step): the run is
   * recorded as diverged with this reason, without training; `params` is then ignored.
   */
  readonly diverged?: Divergence;
}

/** Options of {@link trainRun}: a forked start, and progress callbacks. */
export interface TrainRunOptions {
  /** Start from this state instead of a fresh initialization (twins forked from a parent). */
  readonly start?: RunStart;
  /**
   * Measures the spec's `diagnostics` / `sharpness` along training (`trainingProbe` from
   * src/measure/diagnostics.ts); required when the spec has either key.
   */
  readonly probe?: RunProbe;
  /**
   * Drop the optimizer slots (momentum, Adam moments) from every checkpoint when the run completes
   * (default false: every checkpoint keeps them). For runs nothing will fork from (a study's twins
   * and baselines, a sweep's runs): only a fork reads a finished run's optimizer state, and an
   * interrupted run resumes from its last checkpoint, which keeps its slots until the run
   * completes. A diverged run keeps them, and so does a run of Adam or AdamW: their moments are
   * also a measurement's input (the preconditioned sharpness of `twinscope sharpness` and of a
   * sweep's `measure.sharpness`). See docs/formats.md, "checkpoints.arrow".
   */
  readonly dropOptimizerState?: boolean;
  readonly onProgress?: (p: RunProgress) => void;
  /**
   * Called once before training with what will happen: 'fresh', 'resume', or nothing because the
   * run is 'complete' or 'diverged' (a diverged run is final: it is not retrained).
   */
  readonly onStart?: (info: {
    mode: 'fresh' | 'resume' | 'complete' | 'diverged';
    fromStep: number;
    totalSteps: number;
  }) => void;
}

/** Identity of a run: its resolved spec and its lineage (a twin differs from its parent by lineage only). */
export function specHash(spec: ResolvedRunSpec, lineage: RunJson['lineage'] = {}): string {
  return configHash({ spec, lineage });
}

/** Read a run directory's run.json, with an error naming the file when it is missing or invalid. */
export function readRunJson(dir: string): RunJson {
  const path = join(dir, 'run.json');
  if (!existsSync(path)) {
    const kind = statSync(dir, { throwIfNoEntry: false });
    const why = !kind ? 'no such folder' : kind.isDirectory() ? 'no run.json' : 'a file, not a folder';
    throw new NotARunDirError(`${dir}: not a run directory (${why})`);
  }
  // A damaged run.json (not JSON, or its seal does not match) is an IntegrityError: exit 1.
  return readSealedJson(path, formatBelow(RUN_FORMAT)) as unknown as RunJson;
}

/** Write a run directory's run.json atomically, sealed, in the current format. */
export function writeRunJson(dir: string, run: RunJson): void {
  writeSealedJson(join(dir, 'run.json'), { ...run, format: RUN_FORMAT });
}

/** The engine a run spec asks for. */
export async function createEngine(
  spec: ResolvedRunSpec,
  model: ReturnType<typeof modelGraphSpec>,
): Promise<Engine> {
  const options = { optimizer: spec.optimizer, threads: spec.threads };
  return spec.engine === 'tfjs' ? createTfjsEngine(model, options) : createOrtEngine(model, options);
}

async function evalRow(
  engine: Engine,
  data: Dataset,
  params: Float32Array,
  step: number,
  epoch: number,
  trainExamples?: number,
) {
  const train = firstRows(data.train, trainExamples ?? data.train.n);
  const tr = await engine.evaluate(params, train.x, train.y, train.n);
  const te = await engine.evaluate(params, data.test.x, data.test.y, data.test.n);
  const classification = data.task === 'classification';
  return {
    kind: 'eval',
    step,
    epoch,
    trainEvalLoss: tr.loss,
    trainAcc: classification ? tr.correct / tr.count : null,
    testLoss: te.loss,
    testAcc: classification && te.count > 0 ? te.correct / te.count : null,
  } as MetricRow;
}

/** A run directory opened for training: its state (fresh, started from a fork, or resumed) and a recorder. */
export interface OpenedRun {
  /** `complete` and `diverged`: the run has ended; nothing is trained or written. */
  readonly mode: 'fresh' | 'resume' | 'complete' | 'diverged';
  /** The state to train from (the final one when complete); training mutates it in place. */
  readonly state: TrainState;
  readonly totalSteps: number;
  /** Checkpoint steps of this run (a forked run's start first). */
  readonly checkpoints: readonly number[];
  /**
   * Record step `r` taken on `state` (the state after the update): metrics, evals, checkpoints.
   * A non-finite loss or parameters set {@link OpenedRun.diverged}; later calls record nothing.
   */
  recordStep(r: StepRecord): Promise<void>;
  /** Set once the run has diverged (also when it was opened `diverged`): stop training it. */
  readonly diverged: Divergence | undefined;
  /** Finalize the store (atomic rewrite, checksums) and mark run.json complete or diverged. */
  finish(): Promise<RunJson>;
  /** Release the writer (idempotent; call in finally). */
  close(): void;
}

/** What {@link openRun} needs besides the spec: loaded once by callers that train several runs. */
export interface RunContext {
  readonly data: Dataset;
  readonly model: ReturnType<typeof modelGraphSpec>;
  /** Engine used for evaluations (and, for {@link trainRun}, training). */
  readonly engine: Engine;
  /** Recorded in run.json as what executes the training steps (default: the engine's backend). */
  readonly backend?: string;
  /** Measures the spec's `diagnostics` / `sharpness` (see {@link TrainRunOptions.probe}). */
  readonly probe?: RunProbe;
  /** See {@link TrainRunOptions.dropOptimizerState}. */
  readonly dropOptimizerState?: boolean;
}

/** The dataset and model of a run spec. */
export function runContextParts(spec: ResolvedRunSpec) {
  const data = loadDataset(spec.data, spec.dataSeed);
  const model = modelGraphSpec(spec.model, data.inputDim, data.outputDim, spec.loss);
  return { data, model };
}

/**
 * Open `dir` for training `spec`: check that it holds this run (spec hash), and either report it
 * complete, resume it from its last complete checkpoint, or start it (fresh init, or `start`).
 *
 * The run holds the folder's lock (util/folder-lock.ts) from here to {@link OpenedRun.close}: another
 * writer is refused with a LockedError (exit code 2). A spec the dataset cannot train (a batch
 * larger than the train split) is refused before the folder is created; a refused open removes a
 * folder it created.
 */
export async function openRun(
  spec: ResolvedRunSpec,
  dir: string,
  ctx: RunContext,
  start?: RunStart,
): Promise<OpenedRun> {
  planRun(spec, ctx.data.train.n);
  const lock = await lockFolder(dir);
  let run: OpenedRun;
  try {
    run = await openLockedRun(spec, dir, ctx, start);
  } catch (e) {
    lock.release(e);
    throw e;
  }
  const { recordStep, finish, close } = run;
  run.recordStep = async (r) => {
    lock.assertHeld();
    await recordStep(r);
  };
  run.finish = async () => {
    lock.assertHeld();
    return finish();
  };
  run.close = () => {
    try {
      close();
    } finally {
      lock.release();
    }
  };
  return run;
}

/** {@link openRun} once `dir` is locked. */
async function openLockedRun(
  spec: ResolvedRunSpec,
  dir: string,
  ctx: RunContext,
  start?: RunStart,
): Promise<OpenedRun> {
  const lineage = start?.lineage ?? {};
  const hash = specHash(spec, lineage);
  // Temp files a killed writer left (a finalize cut short leaves a whole checkpoints.arrow.tmp-PID).
  removeStrayTemps(dir);
  const runJsonPath = join(dir, 'run.json');
  if (existsSync(runJsonPath)) {
    const existing = readRunJson(dir);
    if (existing.specHash !== hash) {
      throw new InputError(
        `${dir} holds a different run ('${existing.spec.name}', spec hash ${existing.specHash.slice(0, 12)}); use another --out`,
      );
    }
    if (existing.status === 'complete' || existing.status === 'diverged') {
      // Ended: a diverged run is final too (deterministic training would diverge again).
      const done = async () => existing;
      const params = new Float32Array(0);
      return {
        mode: existing.status,
        state: { params, opt: { step: existing.totalSteps, slots: [] } },
        totalSteps: existing.totalSteps,
        checkpoints: existing.checkpointSteps,
        recordStep: async () => {
          throw new Error(`${dir} is ${existing.status}`);
        },
        diverged: existing.diverged,
        finish: done,
        close: () => {},
      };
    }
  }
  const { data, model, engine } = ctx;
  const plan = planRun(spec, data.train.n);
  const { stepsPerEpoch: perEpoch, totalSteps } = plan;
  const diagnosticSteps = new Set(plan.diagnostics);
  const sharpnessSteps = new Set(plan.sharpness);
  const measuring = diagnosticSteps.size + sharpnessSteps.size > 0;
  const { probe } = ctx;
  if (measuring && !probe) {
    throw new Error(
      `${dir}: the run spec asks for ${spec.diagnostics ? 'diagnostics' : 'sharpness'} along training; pass a probe (trainingProbe from src/measure/diagnostics.ts) to train it`,
    );
  }
  /** The probe's rows for the state after `step` updates (none at unscheduled steps). */
  const measure = async (state: TrainState, step: number): Promise<DiagnosticRow[]> => {
    const diagnostics = diagnosticSteps.has(step);
    const sharpness = sharpnessSteps.has(step);
    if (!probe || (!diagnostics && !sharpness)) return [];
    // The update taken from this state; the last state has none, so it gets the last update's rate.
    const lrStep = Math.min(step, totalSteps - 1);
    const lr = plan.lr(lrStep, Math.floor(lrStep / perEpoch));
    return probe({ spec, engine, data, state, step, epoch: step / perEpoch, lr, diagnostics, sharpness });
  };
  // A forked run's first checkpoint is its (perturbed) starting state at the fork step.
  const forkStep = start?.opt.step;
  const checkpoints =
    forkStep === undefined ? plan.checkpoints : [forkStep, ...plan.checkpoints.filter((c) => c > forkStep)];
  let runJson: RunJson = {
    format: RUN_FORMAT,
    toolkit: toolkitVersion(),
    status: 'running',
    specHash: hash,
    spec,
    seeds: { init: spec.seed, data: spec.dataSeed, order: spec.orderSeed ?? spec.dataSeed },
    lineage,
    totalSteps,
    stepsPerEpoch: perEpoch,
    checkpointSteps: checkpoints,
    layout: model.layout,
    backend: ctx.backend ?? engine.backend,
  };
  writeRunJson(dir, runJson);
  const slotCount = optimizerSlotCount(resolveOptimizer(spec.optimizer));
  const { writer: out, last } = await openRunWriter(dir, model.layout, slotCount, {
    diagnostics: measuring,
  });
  let divergence: Divergence | undefined;
  let lastCheckpoint = last?.step;
  /** Non-finite parameters after `step` updates, as a divergence; undefined when all are finite. */
  const badParams = (params: Float32Array, step: number): Divergence | undefined => {
    const bad = firstNonFinite(params);
    if (!bad) return undefined;
    const tensor = model.layout.tensors.find((t) => bad.index >= t.offset && bad.index < t.offset + t.size);
    return {
      reason: 'parameters',
      step,
      value: String(bad.value),
      ...(tensor && { tensor: tensor.name }),
      ...(lastCheckpoint !== undefined && { lastCheckpoint }),
    };
  };
  try {
    let state: TrainState;
    if (last && last.opt.slots.length !== slotCount && last.step < totalSteps) {
      // Only a run that completed drops its slots: this one cannot have (or was tampered with).
      throw new StoreError(
        `${dir}: checkpoint at step ${last.step} keeps no optimizer state; the run cannot resume from it (remove the folder to retrain it)`,
        CHECKPOINTS_FILE,
      );
    }
    if (last) {
      state = { params: last.params, opt: { step: last.opt.step, slots: last.opt.slots } };
    } else if (start?.diverged) {
      state = { params: start.params, opt: { step: start.opt.step, slots: [] } };
      divergence = start.diverged;
    } else {
      const init = spec.model.init ?? defaultInit(spec.model);
      state = start
        ? {
            params: start.params,
            opt: { step: start.opt.step, slots: start.opt.slots.map((s) => s.slice()) },
          }
        : {
            params: initParams(model.layout, init, Rng.fromSeed(spec.seed).stream('init')),
            opt: engine.initOptimizerState(),
          };
      const first = state.opt.step;
      // A perturbed start can already be non-finite (an overflowing perturbation).
      divergence = badParams(state.params, first);
      if (!divergence) {
        await out.appendMetrics([
          await evalRow(engine, data, state.params, first, first / perEpoch, spec.evalTrainExamples),
        ]);
        if (measuring) out.appendDiagnostics(await measure(state, first));
        await out.appendCheckpoint({
          step: first,
          epoch: first / perEpoch,
          params: state.params,
          opt: state.opt,
        });
        lastCheckpoint = first;
      }
    }
    const checkpointSet = new Set(checkpoints);
    const evalSet = new Set(plan.evals);
    let pending: MetricRow[] = [];
    let pendingDiagnostics: DiagnosticRow[] = [];
    /** Append the rows measured since the last checkpoint (before the next checkpoint, or at a divergence). */
    const flush = async () => {
      await out.appendMetrics(pending);
      pending = [];
      if (measuring) out.appendDiagnostics(pendingDiagnostics);
      pendingDiagnostics = [];
    };
    return {
      mode: last ? 'resume' : 'fresh',
      state,
      totalSteps,
      checkpoints,
      recordStep: async (r) => {
        if (divergence) return;
        pending.push({
          kind: 'step',
          step: r.step,
          epoch: r.epoch,
          lr: r.lr,
          trainLoss: r.loss,
          batchHash: r.batchHash,
        } as MetricRow);
        const done = r.step + 1;
        const epoch = done / perEpoch;
        // The loss every step (free); the parameters where they are read anyway (evals, checkpoints).
        divergence = Number.isFinite(r.loss)
          ? evalSet.has(done) || checkpointSet.has(done)
            ? badParams(state.params, done)
            : undefined
          : {
              reason: 'loss',
              step: r.step,
              value: String(r.loss),
              ...(lastCheckpoint !== undefined && { lastCheckpoint }),
            };
        if (divergence) {
          // Keep the metric rows up to the divergence (the non-finite loss included).
          await flush();
          return;
        }
        if (evalSet.has(done))
          pending.push(await evalRow(engine, data, state.params, done, epoch, spec.evalTrainExamples));
        if (measuring) pendingDiagnostics.push(...(await measure(state, done)));
        if (!checkpointSet.has(done)) return;
        await flush();
        await out.appendCheckpoint({ step: done, epoch, params: state.params, opt: state.opt });
        lastCheckpoint = done;
      },
      get diverged() {
        return divergence;
      },
      finish: async () => {
        // A completed run nothing forks from keeps no momentum; a diverged one keeps it, and so does
        // Adam (its moments are what the preconditioned sharpness of a checkpoint reads).
        const drop = ctx.dropOptimizerState === true && !divergence && spec.optimizer.kind === 'sgd';
        const files = await out.finalize({ dropOptimizerState: drop });
        if (divergence) {
          const kept = lastCheckpoint;
          runJson = {
            ...runJson,
            status: 'diverged',
            checkpointSteps: kept === undefined ? [] : checkpoints.filter((c) => c <= kept),
            files,
            diverged: divergence,
          };
        } else {
          const final = await evalRow(
            engine,
            data,
            state.params,
            totalSteps,
            totalSteps / perEpoch,
            spec.evalTrainExamples,
          );
          runJson = { ...runJson, status: 'complete', files, final };
        }
        writeRunJson(dir, runJson);
        return runJson;
      },
      close: () => out.close(),
    };
  } catch (e) {
    out.close();
    throw e;
  }
}

/**
 * Train `spec` into `dir`. A finished run (complete or diverged) is not retrained; an interrupted
 * one resumes from its last complete checkpoint. Returns the final run.json: status `complete`, or
 * `diverged` when a loss or the parameters became non-finite (see {@link Divergence}).
 */
export async function trainRun(
  spec: ResolvedRunSpec,
  dir: string,
  options: TrainRunOptions = {},
): Promise<RunJson> {
  const existing = existsSync(join(dir, 'run.json')) ? readRunJson(dir) : undefined;
  const ended = existing?.status === 'complete' || existing?.status === 'diverged';
  if (existing && ended && existing.specHash === specHash(spec, options.start?.lineage ?? {})) {
    const mode = existing.status === 'diverged' ? 'diverged' : 'complete';
    options.onStart?.({ mode, fromStep: existing.totalSteps, totalSteps: existing.totalSteps });
    return existing;
  }
  const { data, model } = runContextParts(spec);
  const engine = await createEngine(spec, model);
  let run: OpenedRun | undefined;
  try {
    const ctx = {
      data,
      model,
      engine,
      ...(options.probe && { probe: options.probe }),
      ...(options.dropOptimizerState && { dropOptimizerState: true }),
    };
    run = await openRun(spec, dir, ctx, options.start);
    const opened = run;
    const { state, totalSteps } = opened;
    const resumedFrom = state.opt.step;
    options.onStart?.({
      mode: opened.mode === 'resume' ? 'resume' : 'fresh',
      fromStep: resumedFrom,
      totalSteps,
    });
    const plan = planRun(spec, data.train.n);
    const checkpointSet = new Set(opened.checkpoints);
    if (!opened.diverged) {
      await trainUntil(state, totalSteps, {
        engine,
        train: data.train,
        batchSize: spec.batchSize,
        dataSeed: spec.orderSeed ?? spec.dataSeed,
        lr: plan.lr,
        stopAt: (done) => checkpointSet.has(done),
        stop: () => opened.diverged !== undefined,
        onStep: async (r) => {
          await opened.recordStep(r);
          options.onProgress?.({ step: r.step + 1, totalSteps, loss: r.loss, resumedFrom });
        },
      });
    }
    return await opened.finish();
  } finally {
    run?.close();
    await engine.dispose();
  }
}
