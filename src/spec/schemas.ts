/**
 * The zod schemas of run specs as written (before defaults and cross-field checks), and the schema
 * pieces that study and sweep specs share: {@link posInt}, {@link SpecNameSchema}, {@link BaseRunSpecSchema}.
 * Every object is strict: an unknown field is an error.
 */
import { z } from 'zod';
import type { DatasetSpec } from '../data/types.js';
import type { OptimizerSpec } from '../engine/types.js';
import type { InitSpec, ModelSpec } from '../model/spec.js';

/** A positive integer (zod). */
export const posInt = () => z.number().int().positive();
const nonNegInt = () => z.number().int().min(0);
const nonNeg = () => z.number().min(0);
/** [0, 1): test fractions, momentum, betas. */
const unitOpen = () => z.number().min(0).lt(1);
const nonEmpty = () => z.string().min(1);

const standardize = z.boolean().optional();

const MoonsSpecSchema = z.strictObject({
  name: z.literal('moons'),
  n: posInt(),
  noise: nonNeg().optional(),
  testFraction: unitOpen().optional(),
  standardize,
});

const MnistSpecSchema = z.strictObject({
  name: z.literal('mnist'),
  nTest: nonNegInt().optional(),
  nTrain: posInt().optional(),
  standardize,
});

const FashionMnistSpecSchema = z.strictObject({
  name: z.literal('fashion-mnist'),
  dir: nonEmpty().optional(),
  nTrain: posInt().optional(),
  nTest: posInt().optional(),
  standardize,
});

const ArrowSpecSchema = z.strictObject({
  name: z.literal('arrow'),
  path: nonEmpty(),
  testPath: nonEmpty().optional(),
  features: nonEmpty(),
  label: nonEmpty(),
  classes: posInt().optional(),
  testFraction: unitOpen().optional(),
  standardize,
});

const LinearRegressionSpecSchema = z.strictObject({
  name: z.literal('linear-regression'),
  n: posInt(),
  dim: posInt(),
  decay: z.number(),
  noise: nonNeg().optional(),
  testFraction: unitOpen().optional(),
  standardize,
});

/** Every {@link DatasetSpec} variant, dispatched on `name`. */
const DatasetSpecSchema = z.discriminatedUnion('name', [
  MoonsSpecSchema,
  MnistSpecSchema,
  FashionMnistSpecSchema,
  ArrowSpecSchema,
  LinearRegressionSpecSchema,
]);

const InitSpecSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('normal'), std: nonNeg(), biasStd: nonNeg().optional() }),
  z.strictObject({ kind: z.literal('he'), biasStd: nonNeg().optional() }),
  z.strictObject({ kind: z.literal('glorot'), biasStd: nonNeg().optional() }),
  z.strictObject({ kind: z.literal('pytorch') }),
  z.strictObject({ kind: z.literal('zeros') }),
]);

const activation = z.enum(['relu', 'tanh', 'linear']);
const normKind = z.enum(['batch', 'layer', 'group', 'none']);
const imageShape = z.tuple([posInt(), posInt(), posInt()]);

const ModelSpecSchema = z.discriminatedUnion('kind', [
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
  z.strictObject({
    kind: z.literal('cnn'),
    channels: z.array(posInt()).min(1),
    dense: z.array(posInt()).optional(),
    pool: z.enum(['max', 'avg']).optional(),
    norm: normKind.optional(),
    groups: posInt().optional(),
    image: imageShape.optional(),
    init: InitSpecSchema.optional(),
  }),
  z.strictObject({
    kind: z.literal('resnet'),
    depth: posInt().refine((d) => d >= 8 && (d - 2) % 6 === 0, 'depth must be 6n + 2 (8, 14, 20, …)'),
    width: posInt().optional(),
    norm: normKind.optional(),
    groups: posInt().optional(),
    image: imageShape.optional(),
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

const OptimizerSpecSchema = z.discriminatedUnion('kind', [
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

/** Exactly one of the four keys; checked by `parseRunSpec` (so that every problem is reported). */
export const CheckpointScheduleSchema = z.strictObject({
  every: posInt().optional(),
  steps: z.array(nonNegInt()).min(1).optional(),
  log: posInt().optional(),
  schedule: z.literal('mao').optional(),
});

/** When a run measures along training: every k steps, or at every epoch boundary (plus the last step). */
const MeasureEverySchema = z.union([posInt(), z.literal('epoch')], {
  error: 'expected a positive integer (steps) or "epoch"',
});

/** Diagnostics along training (docs/methods.md §12.1); opt-in, absent from specs that do not ask. */
const DiagnosticsSpecSchema = z.strictObject({
  every: MeasureEverySchema,
  examples: posInt().optional(),
});

/** Sharpness along training (docs/methods.md §12.2); opt-in, absent from specs that do not ask. */
const SharpnessSpecSchema = z.strictObject({
  every: MeasureEverySchema,
  examples: posInt().optional(),
  topK: posInt().optional(),
  method: z.enum(['lanczos', 'power']).optional(),
  steps: posInt().optional(),
  tol: nonNeg().optional(),
  probes: nonNegInt().optional(),
});

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
  evalTrainExamples: posInt().optional(),
  threads: z.number().int().min(1).max(64).optional(),
  engine: z.enum(['ort', 'tfjs']).optional(),
  diagnostics: DiagnosticsSpecSchema.optional(),
  sharpness: SharpnessSpecSchema.optional(),
});

// Compile-time checks that the schemas match the project's types: a schema or a type that drifts
// fails compilation here. (Not exported: they are no part of the package.)
type Assignable<T extends U, U> = T;
type _DatasetSpecMatches = Assignable<z.infer<typeof DatasetSpecSchema>, DatasetSpec>;
type _DatasetSpecCovers = Assignable<DatasetSpec['name'], z.infer<typeof DatasetSpecSchema>['name']>;
type _ModelSpecMatches = Assignable<z.infer<typeof ModelSpecSchema>, ModelSpec>;
type _InitSpecMatches = Assignable<z.infer<typeof InitSpecSchema>, InitSpec>;
type _OptimizerSpecMatches = Assignable<z.infer<typeof OptimizerSpecSchema>, OptimizerSpec>;
