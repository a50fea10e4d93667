/**
 * Run specs with every default filled: the resolved types, and the defaults of models (activation
 * relu, bias true, init {@link defaultInit}), optimizers (PyTorch's), checkpoints, loss, seeds,
 * threads and engine.
 */
import type { z } from 'zod';
import type { BatchSize } from '../data/batching.js';
import type { DatasetSpec } from '../data/types.js';
import type { OptimizerSpec } from '../engine/types.js';
import type { LossKind } from '../model/graph.js';
import type { ImageShape, NormKind } from '../model/net.js';
import { type Activation, defaultInit, type InitSpec, type ModelSpec } from '../model/spec.js';
import type { CheckpointSchedule } from './checkpoint-schedule.js';
import type { CheckpointScheduleSchema, RunSpecSchema } from './schemas.js';

/** A model spec with its defaults filled (activation relu, bias true, init {@link defaultInit}). */
export type ResolvedModelSpec =
  | { kind: 'mlp'; hidden: number[]; activation: Activation; bias: boolean; init: InitSpec }
  | { kind: 'deep-linear-chain'; depth: number; init: InitSpec }
  | { kind: 'linear'; bias: boolean; init: InitSpec }
  | {
      kind: 'cnn';
      channels: number[];
      dense: number[];
      pool: 'max' | 'avg';
      norm: NormKind;
      groups?: number;
      image?: ImageShape;
      init: InitSpec;
    }
  | {
      kind: 'resnet';
      depth: number;
      width: number;
      norm: NormKind;
      groups?: number;
      image?: ImageShape;
      init: InitSpec;
    };

/** An optimizer spec with PyTorch's defaults filled in. */
export type ResolvedOptimizerSpec =
  | { kind: 'sgd'; lr: number; momentum: number; dampening: number; nesterov: boolean; weightDecay: number }
  | { kind: 'adam' | 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };

/** The engine that trains a run: ONNX Runtime (`ort`) or the tfjs reference engine (`tfjs`). */
export type EngineKind = 'ort' | 'tfjs';

/**
 * When a run measures along training: every `k` steps (0, k, 2k, …), or `'epoch'` (every epoch
 * boundary); the last step is always included (see `everySteps`).
 */
export type MeasureEvery = number | 'epoch';

/**
 * Diagnostics measured along training (docs/methods.md §12.1): the gradient norm on the train split,
 * ReLU saturation and dead units per hidden layer, per-tensor weight norms, and an evaluation row at
 * each of those steps.
 */
export interface DiagnosticsSpec {
  every: MeasureEvery;
  /** The first `examples` examples of the train split; absent: the whole split. */
  examples?: number;
}

/**
 * Sharpness measured along training (docs/methods.md §12.2): the top Hessian eigenvalues of the
 * training loss on a fixed subset of the train split, Adam's preconditioned sharpness, the stability
 * threshold and optionally Hutchinson's trace.
 */
export interface SharpnessSpec {
  every: MeasureEvery;
  /** The first `examples` examples of the train split; absent: the whole split. */
  examples?: number;
  /** Eigenvalues wanted, largest first. Default 1; `power` finds one. */
  topK: number;
  /** Default `lanczos`. */
  method: 'lanczos' | 'power';
  /** Most Hessian-vector products per eigenproblem: Lanczos steps (default 50) or power iterations (100). */
  steps: number;
  /** Stopping tolerance: Lanczos residual ≤ tol · |θ| (default 1e-4); power: relative change (1e-3). */
  tol: number;
  /** Rademacher probes of Hutchinson's trace estimate; 0 (the default) skips the trace. */
  probes: number;
}

/** A validated run spec with every default filled. Exactly one of `epochs` / `steps` is set. */
export interface ResolvedRunSpec {
  /** Folder-safe run name. */
  name: string;
  /** Seed of the model initialization (and everything but the data). */
  seed: number;
  /** Seed of the data (generation, split, batch order). Default: `seed`. */
  dataSeed: number;
  /** Seed of the minibatch order only (a `seed` twin changes it, not the data). Default: `dataSeed`. */
  orderSeed?: number;
  /** The dataset; for arrow data loaded by `loadRunSpec`, paths are absolute. */
  data: DatasetSpec;
  model: ResolvedModelSpec;
  /** Default 'cross-entropy' ('mse' for linear-regression data). */
  loss: LossKind;
  optimizer: ResolvedOptimizerSpec;
  /** Learning-rate expression (see `compileLrSchedule`); absent: constant `optimizer.lr`. */
  lrSchedule?: string;
  batchSize: BatchSize;
  epochs?: number;
  steps?: number;
  checkpoints: CheckpointSchedule;
  /** Steps between evaluations; absent: evaluate at the checkpoint steps. */
  evalEvery?: number;
  /**
   * Train examples of each evaluation row's train loss and accuracy: the first N of the train split
   * (absent: all of them). The test split is always evaluated whole.
   */
  evalTrainExamples?: number;
  /** Intra-op threads, 1..64. Default 1. */
  threads: number;
  /** Default 'ort'. */
  engine: EngineKind;
  /** Diagnostics along training; absent (not filled in) when the spec does not ask for them. */
  diagnostics?: DiagnosticsSpec;
  /** Sharpness along training; absent (not filled in) when the spec does not ask for it. */
  sharpness?: SharpnessSpec;
}

/** Fill every default of a run spec that passed {@link RunSpecSchema}. */
export function resolveRunSpec(spec: z.infer<typeof RunSpecSchema>): ResolvedRunSpec {
  const out: ResolvedRunSpec = {
    name: spec.name,
    seed: spec.seed,
    dataSeed: spec.dataSeed ?? spec.seed,
    data: spec.data,
    model: resolveModel(spec.model),
    loss: spec.loss ?? (spec.data.name === 'linear-regression' ? 'mse' : 'cross-entropy'),
    optimizer: resolveOptimizerSpec(spec.optimizer),
    batchSize: spec.batchSize,
    checkpoints: resolveCheckpoints(spec.checkpoints),
    threads: spec.threads ?? 1,
    engine: spec.engine ?? 'ort',
  };
  if (spec.orderSeed !== undefined) out.orderSeed = spec.orderSeed;
  if (spec.lrSchedule !== undefined) out.lrSchedule = spec.lrSchedule;
  if (spec.epochs !== undefined) out.epochs = spec.epochs;
  if (spec.steps !== undefined) out.steps = spec.steps;
  if (spec.evalEvery !== undefined) out.evalEvery = spec.evalEvery;
  if (spec.evalTrainExamples !== undefined) out.evalTrainExamples = spec.evalTrainExamples;
  // Opt-in measurements: only present when asked for, so the spec hashes of other runs stay as they were.
  if (spec.diagnostics !== undefined) out.diagnostics = resolveDiagnostics(spec.diagnostics);
  if (spec.sharpness !== undefined) out.sharpness = resolveSharpness(spec.sharpness);
  return out;
}

function resolveDiagnostics(d: NonNullable<z.infer<typeof RunSpecSchema>['diagnostics']>): DiagnosticsSpec {
  const out: DiagnosticsSpec = { every: d.every };
  if (d.examples !== undefined) out.examples = d.examples;
  return out;
}

/** Sharpness defaults: top 1 by Lanczos (≤ 50 steps, tol 1e-4) or power iteration (≤ 100, 1e-3), no trace. */
function resolveSharpness(s: NonNullable<z.infer<typeof RunSpecSchema>['sharpness']>): SharpnessSpec {
  const method = s.method ?? 'lanczos';
  const out: SharpnessSpec = {
    every: s.every,
    topK: s.topK ?? 1,
    method,
    steps: s.steps ?? (method === 'lanczos' ? 50 : 100),
    tol: s.tol ?? (method === 'lanczos' ? 1e-4 : 1e-3),
    probes: s.probes ?? 0,
  };
  if (s.examples !== undefined) out.examples = s.examples;
  return out;
}

/** Fill a model spec's defaults: activation relu, bias true, init {@link defaultInit}. */
function resolveModel(model: ModelSpec): ResolvedModelSpec {
  const init = model.init ?? defaultInit(model);
  switch (model.kind) {
    case 'mlp':
      return {
        kind: 'mlp',
        hidden: [...model.hidden],
        activation: model.activation ?? 'relu',
        bias: model.bias ?? true,
        init,
      };
    case 'deep-linear-chain':
      return { kind: 'deep-linear-chain', depth: model.depth, init };
    case 'linear':
      return { kind: 'linear', bias: model.bias ?? true, init };
    case 'cnn':
    case 'resnet': {
      const norm = model.norm ?? (model.kind === 'cnn' ? 'none' : 'batch');
      const common = {
        norm,
        ...(norm === 'group' ? { groups: model.groups ?? 4 } : {}),
        ...(model.image ? { image: model.image } : {}),
        init,
      };
      if (model.kind === 'cnn') {
        return {
          kind: 'cnn',
          channels: [...model.channels],
          dense: [...(model.dense ?? [])],
          pool: model.pool ?? 'max',
          ...common,
        };
      }
      return { kind: 'resnet', depth: model.depth, width: model.width ?? 1, ...common };
    }
  }
}

/** Fill PyTorch's optimizer defaults (SGD momentum/dampening/weight decay 0, nesterov false; Adam betas
 * 0.9/0.999, eps 1e-8, weight decay 0 — 0.01 for AdamW). */
function resolveOptimizerSpec(opt: OptimizerSpec): ResolvedOptimizerSpec {
  if (opt.kind === 'sgd') {
    return {
      kind: 'sgd',
      lr: opt.lr,
      momentum: opt.momentum ?? 0,
      dampening: opt.dampening ?? 0,
      nesterov: opt.nesterov ?? false,
      weightDecay: opt.weightDecay ?? 0,
    };
  }
  return {
    kind: opt.kind,
    lr: opt.lr,
    beta1: opt.beta1 ?? 0.9,
    beta2: opt.beta2 ?? 0.999,
    eps: opt.eps ?? 1e-8,
    weightDecay: opt.weightDecay ?? (opt.kind === 'adamw' ? 0.01 : 0),
  };
}

function resolveCheckpoints(c: z.infer<typeof CheckpointScheduleSchema>): CheckpointSchedule {
  if (c.every !== undefined) return { every: c.every };
  if (c.steps !== undefined) return { steps: [...c.steps] };
  if (c.log !== undefined) return { log: c.log };
  return { schedule: 'mao' };
}
