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
import { type Activation, defaultInit, type InitSpec, type ModelSpec } from '../model/spec.js';
import type { CheckpointSchedule } from './checkpoint-schedule.js';
import type { CheckpointScheduleSchema, RunSpecSchema } from './schemas.js';

/** A model spec with its defaults filled (activation relu, bias true, init {@link defaultInit}). */
export type ResolvedModelSpec =
  | { kind: 'mlp'; hidden: number[]; activation: Activation; bias: boolean; init: InitSpec }
  | { kind: 'deep-linear-chain'; depth: number; init: InitSpec }
  | { kind: 'linear'; bias: boolean; init: InitSpec };

/** An optimizer spec with PyTorch's defaults filled in. */
export type ResolvedOptimizerSpec =
  | { kind: 'sgd'; lr: number; momentum: number; dampening: number; nesterov: boolean; weightDecay: number }
  | { kind: 'adam' | 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };

/** The engine that trains a run: ONNX Runtime (`ort`) or the tfjs reference engine (`tfjs`). */
export type EngineKind = 'ort' | 'tfjs';

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
  /** Intra-op threads, 1..64. Default 1. */
  threads: number;
  /** Default 'ort'. */
  engine: EngineKind;
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
