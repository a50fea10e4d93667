/**
 * One run on disk: a resolved run spec trained into a run directory (run.json, checkpoints.arrow,
 * metrics.arrow), resumable after a crash or kill at any moment.
 *
 * Order of writes: metrics rows of the steps up to a checkpoint, then the checkpoint. On resume the
 * store drops metric rows past the last complete checkpoint and training continues from it; the data
 * order depends on (data seed, step) only, so a resumed run ends bit-identical to an uninterrupted one.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadDataset } from '../data/load.js';
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
import { type MetricRow, openRunWriter } from '../store/index.js';
import { writeJsonAtomic } from '../util/atomic-file.js';
import { configHash } from '../util/json.js';
import { toolkitVersion } from '../version.js';
import { type StepRecord, trainUntil } from './loop.js';

/** Version of the run directory layout written to run.json. */
const RUN_FORMAT = 1;

/** What a run directory's run.json holds. */
export interface RunJson {
  readonly format: number;
  readonly toolkit: string;
  readonly status: 'running' | 'complete';
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
}

/** Options of {@link trainRun}: a forked start, and progress callbacks. */
export interface TrainRunOptions {
  /** Start from this state instead of a fresh initialization (twins forked from a parent). */
  readonly start?: RunStart;
  readonly onProgress?: (p: RunProgress) => void;
  /** Called once before training with what will happen ('fresh', 'resume' or 'complete'). */
  readonly onStart?: (info: {
    mode: 'fresh' | 'resume' | 'complete';
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
  if (!existsSync(path)) throw new Error(`${path}: no run.json (not a run directory)`);
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as RunJson;
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

/** The engine a run spec asks for. */
export async function createEngine(
  spec: ResolvedRunSpec,
  model: ReturnType<typeof modelGraphSpec>,
): Promise<Engine> {
  const options = { optimizer: spec.optimizer, threads: spec.threads };
  return spec.engine === 'tfjs' ? createTfjsEngine(model, options) : createOrtEngine(model, options);
}

async function evalRow(engine: Engine, data: Dataset, params: Float32Array, step: number, epoch: number) {
  const tr = await engine.evaluate(params, data.train.x, data.train.y, data.train.n);
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
  readonly mode: 'fresh' | 'resume' | 'complete';
  /** The state to train from (the final one when complete); training mutates it in place. */
  readonly state: TrainState;
  readonly totalSteps: number;
  /** Checkpoint steps of this run (a forked run's start first). */
  readonly checkpoints: readonly number[];
  /** Record step `r` taken on `state` (the state after the update): metrics, evals, checkpoints. */
  recordStep(r: StepRecord): Promise<void>;
  /** Finalize the store (atomic rewrite, checksums) and mark run.json complete. */
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
 */
export async function openRun(
  spec: ResolvedRunSpec,
  dir: string,
  ctx: RunContext,
  start?: RunStart,
): Promise<OpenedRun> {
  mkdirSync(dir, { recursive: true });
  const lineage = start?.lineage ?? {};
  const hash = specHash(spec, lineage);
  const runJsonPath = join(dir, 'run.json');
  if (existsSync(runJsonPath)) {
    const existing = readRunJson(dir);
    if (existing.specHash !== hash) {
      throw new Error(
        `${dir} holds a different run ('${existing.spec.name}', spec hash ${existing.specHash.slice(0, 12)}); use another --out`,
      );
    }
    if (existing.status === 'complete') {
      const done = async () => existing;
      const params = new Float32Array(0);
      return {
        mode: 'complete',
        state: { params, opt: { step: existing.totalSteps, slots: [] } },
        totalSteps: existing.totalSteps,
        checkpoints: existing.checkpointSteps,
        recordStep: async () => {
          throw new Error(`${dir} is complete`);
        },
        finish: done,
        close: () => {},
      };
    }
  }
  const { data, model, engine } = ctx;
  const plan = planRun(spec, data.train.n);
  const { stepsPerEpoch: perEpoch, totalSteps } = plan;
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
  writeJsonAtomic(runJsonPath, runJson);
  const slotCount = optimizerSlotCount(resolveOptimizer(spec.optimizer));
  const { writer: out, last } = await openRunWriter(dir, model.layout, slotCount);
  try {
    let state: TrainState;
    if (last) {
      state = { params: last.params, opt: { step: last.opt.step, slots: last.opt.slots } };
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
      await out.appendMetrics([await evalRow(engine, data, state.params, first, first / perEpoch)]);
      await out.appendCheckpoint({
        step: first,
        epoch: first / perEpoch,
        params: state.params,
        opt: state.opt,
      });
    }
    const checkpointSet = new Set(checkpoints);
    const evalSet = new Set(plan.evals);
    let pending: MetricRow[] = [];
    return {
      mode: last ? 'resume' : 'fresh',
      state,
      totalSteps,
      checkpoints,
      recordStep: async (r) => {
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
        if (evalSet.has(done)) pending.push(await evalRow(engine, data, state.params, done, epoch));
        if (!checkpointSet.has(done)) return;
        await out.appendMetrics(pending);
        pending = [];
        await out.appendCheckpoint({ step: done, epoch, params: state.params, opt: state.opt });
      },
      finish: async () => {
        const files = await out.finalize();
        const final = await evalRow(engine, data, state.params, totalSteps, totalSteps / perEpoch);
        runJson = { ...runJson, status: 'complete', files, final };
        writeJsonAtomic(runJsonPath, runJson);
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
 * Train `spec` into `dir`. A finished run is not retrained; an interrupted one resumes from its last
 * complete checkpoint. Returns the final run.json.
 */
export async function trainRun(
  spec: ResolvedRunSpec,
  dir: string,
  options: TrainRunOptions = {},
): Promise<RunJson> {
  const existing = existsSync(join(dir, 'run.json')) ? readRunJson(dir) : undefined;
  if (existing?.status === 'complete' && existing.specHash === specHash(spec, options.start?.lineage ?? {})) {
    options.onStart?.({ mode: 'complete', fromStep: existing.totalSteps, totalSteps: existing.totalSteps });
    return existing;
  }
  const { data, model } = runContextParts(spec);
  const engine = await createEngine(spec, model);
  let run: OpenedRun | undefined;
  try {
    run = await openRun(spec, dir, { data, model, engine }, options.start);
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
    await trainUntil(state, totalSteps, {
      engine,
      train: data.train,
      batchSize: spec.batchSize,
      dataSeed: spec.orderSeed ?? spec.dataSeed,
      lr: plan.lr,
      stopAt: (done) => checkpointSet.has(done),
      onStep: async (r) => {
        await opened.recordStep(r);
        options.onProgress?.({ step: r.step + 1, totalSteps, loss: r.loss, resumedFrom });
      },
    });
    return await opened.finish();
  } finally {
    run?.close();
    await engine.dispose();
  }
}
