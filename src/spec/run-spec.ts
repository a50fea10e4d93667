/**
 * Run specs: the JSON file that says what one twinscope run trains — data, model, loss, optimizer,
 * batch size, length, checkpoint schedule — validated with zod and resolved with every default filled.
 *
 * ```json
 * { "name": "moons-gd", "seed": 0,
 *   "data": { "name": "moons", "n": 2000, "noise": 0.2, "testFraction": 0.3, "standardize": true },
 *   "model": { "kind": "mlp", "hidden": [64, 64], "activation": "relu", "init": { "kind": "normal", "std": 0.1 } },
 *   "loss": "cross-entropy",
 *   "optimizer": { "kind": "adam", "lr": 0.001 },
 *   "batchSize": 32, "epochs": 200,
 *   "checkpoints": { "every": 100 },
 *   "threads": 2 }
 * ```
 *
 * Every object is strict: an unknown field is an error. Problems are reported all at once, one line
 * each, naming the field path (`optimizer.lr`, `model.hidden[0]`) and what was expected.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { type BatchSize, stepsPerEpoch as batchStepsPerEpoch } from '../data/batching.js';
import type { DatasetSpec } from '../data/types.js';
import type { OptimizerSpec } from '../engine/types.js';
import type { LossKind } from '../model/graph.js';
import { type Activation, defaultInit, type InitSpec, type ModelSpec } from '../model/spec.js';
import { type CheckpointSchedule, checkpointSteps, everySteps } from './checkpoint-schedule.js';
import { describeValue, formatPath, SpecError } from './errors.js';
import { compileLrSchedule, type LrSchedule } from './lr-schedule.js';

// ---------------------------------------------------------------------------------------------
// Schema

/** A positive integer (zod). */
export const posInt = () => z.number().int().positive();
const nonNegInt = () => z.number().int().min(0);
const nonNeg = () => z.number().min(0);
/** [0, 1): test fractions, momentum, betas. */
const unitOpen = () => z.number().min(0).lt(1);
const nonEmpty = () => z.string().min(1);

const standardize = z.boolean().optional();

export const MoonsSpecSchema = z.strictObject({
  name: z.literal('moons'),
  n: posInt(),
  noise: nonNeg().optional(),
  testFraction: unitOpen().optional(),
  standardize,
});

export const MnistSpecSchema = z.strictObject({
  name: z.literal('mnist'),
  nTest: nonNegInt().optional(),
  nTrain: posInt().optional(),
  standardize,
});

export const FashionMnistSpecSchema = z.strictObject({
  name: z.literal('fashion-mnist'),
  dir: nonEmpty().optional(),
  nTrain: posInt().optional(),
  nTest: posInt().optional(),
  standardize,
});

export const ArrowSpecSchema = z.strictObject({
  name: z.literal('arrow'),
  path: nonEmpty(),
  testPath: nonEmpty().optional(),
  features: nonEmpty(),
  label: nonEmpty(),
  classes: posInt().optional(),
  testFraction: unitOpen().optional(),
  standardize,
});

export const LinearRegressionSpecSchema = z.strictObject({
  name: z.literal('linear-regression'),
  n: posInt(),
  dim: posInt(),
  decay: z.number(),
  noise: nonNeg().optional(),
  testFraction: unitOpen().optional(),
  standardize,
});

/** Every {@link DatasetSpec} variant, dispatched on `name`. */
export const DatasetSpecSchema = z.discriminatedUnion('name', [
  MoonsSpecSchema,
  MnistSpecSchema,
  FashionMnistSpecSchema,
  ArrowSpecSchema,
  LinearRegressionSpecSchema,
]);

export const InitSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('normal'), std: nonNeg(), biasStd: nonNeg().optional() }),
  z.strictObject({ kind: z.literal('he'), biasStd: nonNeg().optional() }),
  z.strictObject({ kind: z.literal('glorot'), biasStd: nonNeg().optional() }),
  z.strictObject({ kind: z.literal('pytorch') }),
  z.strictObject({ kind: z.literal('zeros') }),
]);

const activation = z.enum(['relu', 'tanh', 'linear']);

export const ModelSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('mlp'),
    hidden: z.array(posInt()),
    activation: activation.optional(),
    bias: z.boolean().optional(),
    init: InitSpecSchema.optional(),
  }),
  z.strictObject({ kind: z.literal('deep-linear-chain'), depth: posInt(), init: InitSpecSchema.optional() }),
  z.strictObject({
    kind: z.literal('linear'),
    bias: z.boolean().optional(),
    init: InitSpecSchema.optional(),
  }),
]);

const adamFields = {
  lr: z.number().gt(0),
  beta1: unitOpen().optional(),
  beta2: unitOpen().optional(),
  eps: z.number().gt(0).optional(),
  weightDecay: nonNeg().optional(),
};

export const OptimizerSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('sgd'),
    lr: z.number().gt(0),
    momentum: unitOpen().optional(),
    dampening: z.number().min(0).max(1).optional(),
    nesterov: z.boolean().optional(),
    weightDecay: nonNeg().optional(),
  }),
  z.strictObject({ kind: z.literal('adam'), ...adamFields }),
  z.strictObject({ kind: z.literal('adamw'), ...adamFields }),
]);

/** Exactly one of the four keys; checked by {@link parseRunSpec} (so that every problem is reported). */
export const CheckpointScheduleSchema = z.strictObject({
  every: posInt().optional(),
  steps: z.array(nonNegInt()).min(1).optional(),
  log: posInt().optional(),
  schedule: z.literal('mao').optional(),
});

const CHECKPOINT_KEYS = ['every', 'steps', 'log', 'schedule'] as const;

/** Folder-safe names of runs, studies and sweeps. */
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** A folder-safe name (run, study or sweep): at most 128 characters. */
export const SpecNameSchema = nonEmpty().max(128).regex(NAME_RE, {
  error:
    'must be usable as a folder name: letters, digits, ".", "_" and "-", starting with a letter or digit',
});

/** The base run spec of a study or sweep: inline, or a path relative to the spec file. */
export const BaseRunSpecSchema = z.union([z.string().min(1), z.record(z.string(), z.unknown())], {
  error: 'expected a run spec object or the path of a run spec file',
});

/** The run spec as written (before defaults and cross-field checks). */
export const RunSpecSchema = z.strictObject({
  name: SpecNameSchema,
  seed: nonNegInt(),
  dataSeed: nonNegInt().optional(),
  orderSeed: nonNegInt().optional(),
  data: DatasetSpecSchema,
  model: ModelSpecSchema,
  loss: z.enum(['cross-entropy', 'mse']).optional(),
  optimizer: OptimizerSpecSchema,
  lrSchedule: z.string().optional(),
  batchSize: z.union([posInt(), z.literal('full')], { error: 'expected a positive integer or "full"' }),
  epochs: posInt().optional(),
  steps: posInt().optional(),
  checkpoints: CheckpointScheduleSchema,
  evalEvery: posInt().optional(),
  threads: z.number().int().min(1).max(64).optional(),
  engine: z.enum(['ort', 'tfjs']).optional(),
});

/** A run spec as written. */
export type RunSpecInput = z.input<typeof RunSpecSchema>;

// Compile-time checks that the schemas match the project's types.
type Assignable<T extends U, U> = T;
export type _DatasetSpecMatches = Assignable<z.infer<typeof DatasetSpecSchema>, DatasetSpec>;
export type _DatasetSpecCovers = Assignable<DatasetSpec['name'], z.infer<typeof DatasetSpecSchema>['name']>;
export type _ModelSpecMatches = Assignable<z.infer<typeof ModelSpecSchema>, ModelSpec>;
export type _InitSpecMatches = Assignable<z.infer<typeof InitSpecSchema>, InitSpec>;
export type _OptimizerSpecMatches = Assignable<z.infer<typeof OptimizerSpecSchema>, OptimizerSpec>;

// ---------------------------------------------------------------------------------------------
// Resolved spec

/** A model spec with its defaults filled (activation relu, bias true, init {@link defaultInit}). */
export type ResolvedModelSpec =
  | { kind: 'mlp'; hidden: number[]; activation: Activation; bias: boolean; init: InitSpec }
  | { kind: 'deep-linear-chain'; depth: number; init: InitSpec }
  | { kind: 'linear'; bias: boolean; init: InitSpec };

/** An optimizer spec with PyTorch's defaults filled in. */
export type ResolvedOptimizerSpec =
  | { kind: 'sgd'; lr: number; momentum: number; dampening: number; nesterov: boolean; weightDecay: number }
  | { kind: 'adam' | 'adamw'; lr: number; beta1: number; beta2: number; eps: number; weightDecay: number };

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
  /** The dataset; for arrow data loaded by {@link loadRunSpec}, paths are absolute. */
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

// ---------------------------------------------------------------------------------------------
// Parsing

/**
 * Validate a parsed JSON run spec and fill every default. Throws a {@link SpecError} listing every
 * problem, one line each, prefixed with `source` (e.g. the file name) when given:
 * `moons.json: optimizer.lr: must be > 0 (got -0.1)`.
 */
export function parseRunSpec(json: unknown, source?: string): ResolvedRunSpec {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SpecError(`expected a JSON object at top level (got ${describeValue(json)})`, source);
  }
  const result = RunSpecSchema.safeParse(json, { reportInput: true });
  const problems = result.success ? [] : result.error.issues.flatMap(formatIssue);
  problems.push(...crossCheck(json as Record<string, unknown>));
  if (!result.success || problems.length > 0) throw new SpecError([...new Set(problems)], source);
  return resolveRunSpec(result.data);
}

/**
 * Read, parse and validate a run spec file. Errors name the file: a missing or unreadable file,
 * invalid JSON (with line and column), every spec problem, and for arrow data a `data.path` /
 * `data.testPath` that does not exist. Those paths are resolved relative to the spec file's folder
 * and returned absolute.
 */
export function loadRunSpec(path: string): ResolvedRunSpec {
  const spec = parseRunSpec(readSpecJson(path), path);
  if (spec.data.name === 'arrow') {
    const base = dirname(resolve(path));
    const data = { ...spec.data, path: resolve(base, spec.data.path) };
    if (spec.data.testPath !== undefined) data.testPath = resolve(base, spec.data.testPath);
    const problems: string[] = [];
    for (const field of ['path', 'testPath'] as const) {
      const written = spec.data[field];
      const file = data[field];
      if (written === undefined || file === undefined) continue;
      if (!existsSync(file)) {
        const shown = isAbsolute(written) ? written : `${written} (resolved to ${file})`;
        problems.push(`data.${field}: file not found: ${shown}`);
      }
    }
    if (problems.length > 0) throw new SpecError(problems, path);
    spec.data = data;
  }
  return spec;
}

/** Read a JSON spec file (run, study or sweep), naming the file in errors (with line and column for bad JSON). */
export function readSpecJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : `cannot read file (${(err as Error).message})`;
    throw new SpecError(why, path);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new SpecError(`invalid JSON: ${jsonErrorMessage(err as Error, text)}`, path);
  }
}

/**
 * Check that `json` is an object and validate it with a strict zod `schema`; throws a
 * {@link SpecError} with every problem, one line each, naming the field.
 */
export function parseSpecObject<T>(schema: z.ZodType<T>, json: unknown, source?: string): T {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new SpecError(`expected a JSON object at top level (got ${describeValue(json)})`, source);
  }
  const result = schema.safeParse(json, { reportInput: true });
  if (!result.success) throw new SpecError([...new Set(result.error.issues.flatMap(formatIssue))], source);
  return result.data;
}

export function jsonErrorMessage(err: Error, text: string): string {
  const match = /position (\d+)/.exec(err.message);
  if (!match) return err.message;
  const pos = Number(match[1]);
  const before = text.slice(0, pos).split('\n');
  const line = before.length;
  const column = (before[before.length - 1]?.length ?? 0) + 1;
  return `${err.message.replace(/\s*\(line \d+ column \d+\)/, '')} (line ${line}, column ${column})`;
}

function resolveRunSpec(spec: z.infer<typeof RunSpecSchema>): ResolvedRunSpec {
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
export function resolveModel(model: ModelSpec): ResolvedModelSpec {
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
export function resolveOptimizerSpec(opt: OptimizerSpec): ResolvedOptimizerSpec {
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

// ---------------------------------------------------------------------------------------------
// Cross-field checks, on the raw input so that they are reported alongside schema problems.

function crossCheck(raw: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const has = (obj: Record<string, unknown>, key: string) => obj[key] !== undefined;

  if (has(raw, 'epochs') && has(raw, 'steps')) {
    problems.push('epochs, steps: give exactly one of epochs or steps, not both');
  } else if (!has(raw, 'epochs') && !has(raw, 'steps')) {
    problems.push('epochs: missing (give exactly one of epochs or steps)');
  }

  const checkpoints = raw.checkpoints;
  if (isRecord(checkpoints)) {
    const given = CHECKPOINT_KEYS.filter((k) => has(checkpoints, k));
    if (given.length !== 1) {
      problems.push(
        `checkpoints: expected exactly one of every, steps, log or schedule (got ${given.length === 0 ? 'none' : given.join(' and ')})`,
      );
    }
    const steps = checkpoints.steps;
    if (Array.isArray(steps) && typeof raw.steps === 'number' && !has(raw, 'epochs')) {
      const total = raw.steps;
      steps.forEach((s, i) => {
        if (typeof s === 'number' && s > total) {
          problems.push(`checkpoints.steps[${i}]: step ${s} is beyond the last step (steps = ${total})`);
        }
      });
    }
  }

  const opt = raw.optimizer;
  let lr = 1;
  if (isRecord(opt)) {
    if (typeof opt.lr === 'number' && opt.lr > 0) lr = opt.lr;
    if (opt.kind === 'sgd' && opt.nesterov === true) {
      const momentum = typeof opt.momentum === 'number' ? opt.momentum : 0;
      const dampening = typeof opt.dampening === 'number' ? opt.dampening : 0;
      if (momentum <= 0 || dampening !== 0) {
        problems.push(
          `optimizer.nesterov: requires momentum > 0 and dampening 0 (got momentum ${momentum}, dampening ${dampening})`,
        );
      }
    }
  }

  if (typeof raw.lrSchedule === 'string') {
    try {
      compileLrSchedule(raw.lrSchedule, lr);
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      problems.push(...err.problems);
    }
  }
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// Issue formatting

export type Issue = z.core.$ZodIssue;

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
};

function quote(v: unknown): string {
  return typeof v === 'string' ? `'${v}'` : String(v);
}

function got(issue: Issue): string {
  return 'input' in issue ? ` (got ${describeValue(issue.input)})` : '';
}

/** One line per problem in a zod issue. */
export function formatIssue(issue: Issue): string[] {
  const path = formatPath(issue.path);
  const at = (msg: string) => (path ? `${path}: ${msg}` : msg);
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((k) =>
        path ? `${path}: unknown field '${k}'` : `unknown field '${k}' at top level`,
      );
    case 'invalid_type': {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      if (!('input' in issue) || issue.input === undefined) return [at(`missing (expected ${expected})`)];
      return [at(`expected ${expected}${got(issue)}`)];
    }
    case 'too_small': {
      if (issue.origin === 'array') return [at(`must have at least ${issue.minimum} entries${got(issue)}`)];
      if (issue.origin === 'string') {
        return [
          at(
            Number(issue.minimum) === 1
              ? 'must not be empty'
              : `must have at least ${issue.minimum} characters`,
          ),
        ];
      }
      return [at(`must be ${issue.inclusive ? '>=' : '>'} ${issue.minimum}${got(issue)}`)];
    }
    case 'too_big': {
      if (issue.origin === 'array') return [at(`must have at most ${issue.maximum} entries`)];
      if (issue.origin === 'string') return [at(`must have at most ${issue.maximum} characters`)];
      return [at(`must be ${issue.inclusive ? '<=' : '<'} ${issue.maximum}${got(issue)}`)];
    }
    case 'invalid_value': {
      const values = issue.values.map(quote);
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`;
      return [at(`expected ${expected}${got(issue)}`)];
    }
    case 'invalid_union': {
      const disc = (issue as { discriminator?: string }).discriminator;
      const options = (issue as { options?: unknown[] }).options;
      if (disc !== undefined) {
        const expected = `one of ${(options ?? []).map(quote).join(', ')}`;
        const parent = 'input' in issue ? issue.input : undefined;
        const value = isRecord(parent) ? parent[disc] : undefined;
        // zod reports the discriminator's path; a non-object parent is reported at the parent.
        if (!isRecord(parent)) {
          return [`${formatPath(issue.path.slice(0, -1))}: expected an object${got(issue)}`];
        }
        if (value === undefined) return [at(`missing (expected ${expected})`)];
        return [at(`expected ${expected} (got ${describeValue(value)})`)];
      }
      return [at(`${issue.message}${got(issue)}`)];
    }
    case 'invalid_format':
      return [at(`${issue.message}${got(issue)}`)];
    default:
      return [at(issue.message)];
  }
}

// ---------------------------------------------------------------------------------------------
// Step bookkeeping

/** Total optimizer steps of a run: `steps`, or `epochs × stepsPerEpoch`. */
export function totalSteps(spec: Pick<ResolvedRunSpec, 'epochs' | 'steps'>, stepsPerEpoch: number): number {
  if (spec.steps !== undefined) return spec.steps;
  if (spec.epochs !== undefined) return spec.epochs * stepsPerEpoch;
  throw new SpecError('epochs: missing (give exactly one of epochs or steps)');
}

/** When a run checkpoints and evaluates, and its learning rate per step. */
export interface RunPlan {
  readonly stepsPerEpoch: number;
  readonly totalSteps: number;
  /** Checkpoint steps, sorted, from 0 to totalSteps. */
  readonly checkpoints: number[];
  /** Evaluation steps: every `evalEvery` steps (plus the last), or the checkpoint steps. */
  readonly evals: number[];
  readonly lr: LrSchedule;
}

/** The step plan of a run whose train split has `nTrain` examples. */
export function planRun(spec: ResolvedRunSpec, nTrain: number): RunPlan {
  const perEpoch = batchStepsPerEpoch(nTrain, spec.batchSize);
  const total = totalSteps(spec, perEpoch);
  const checkpoints = checkpointSteps(spec.checkpoints, total, perEpoch);
  const evals = spec.evalEvery !== undefined ? everySteps(spec.evalEvery, total) : checkpoints;
  return {
    stepsPerEpoch: perEpoch,
    totalSteps: total,
    checkpoints,
    evals,
    lr: compileLrSchedule(spec.lrSchedule, spec.optimizer.lr),
  };
}
