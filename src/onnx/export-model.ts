/**
 * Export a twinscope model at one point in weight space as a standard ONNX model (opset 17):
 * the forward graph of src/engine/ (built with the IR and emitted by `emitOnnx`), its weight inputs
 * turned into initializers named after the layout's tensors (`dense0.weight`, `dense0.bias`, …),
 * one data input `input` [N, inputDim] and one output `logits` [N, outputDim] with a dynamic batch
 * axis N. Nodes are named `/dense{i}/Gemm`, `/dense{i}/Add`, `/dense{i}/Relu` (or `Tanh`), so an
 * import (src/onnx/import-model.ts) names its hidden outputs `dense0`, `dense1`, … as twinscope's
 * own activations are named, and gives back the weights bit for bit.
 */
import { existsSync } from 'node:fs';
import { Graph, type Tensor } from '../engine/ir/graph.js';
import { emitOnnx } from '../engine/onnx/emit.js';
import type { ModelGraphSpec } from '../model/graph.js';
import { modelGraphSpec } from '../model/graph.js';
import type { Checkpoint } from '../store/index.js';
import { readRunJson } from '../train/run.js';
import { findRunCheckpoint, missingCheckpoint } from '../train/run-files.js';
import { toolkitVersion } from '../version.js';
import { decodeModel, encodeModel, floatTensor, OnnxModelError, type ValueInfoProto } from './proto.js';

/** The data input and model output of an exported model. */
const EXPORT_INPUT = 'input';
const EXPORT_OUTPUT = 'logits';

/** Options of {@link exportModelOnnx}. */
export interface ExportOptions {
  /** The model's doc string (e.g. the run and step it came from). */
  readonly docString?: string;
}

/** Serialize `model` with weights `params` (layout order) as a standard ONNX model with initializers. */
export function exportModelOnnx(
  model: ModelGraphSpec,
  params: Float32Array,
  options: ExportOptions = {},
): Uint8Array {
  if (params.length !== model.layout.size) {
    throw new OnnxModelError(
      `export: ${params.length} parameters, the model's layout has ${model.layout.size}`,
    );
  }
  if (model.net) {
    throw new OnnxModelError(
      'export: conv nets and ResNets cannot be exported as ONNX yet (dense chains only: mlp, deep-linear-chain, linear)',
    );
  }
  const g = new Graph();
  const x = g.input(EXPORT_INPUT, [1, model.inputDim]);
  const leaves = model.layout.tensors.map((slot) => g.input(slot.name, slot.shape));
  const names = new Map<number, string>();
  let h = x;
  let k = 0;
  model.layers.forEach((layer) => {
    let z = g.gemm(h, leaves[k++] as Tensor, false, true);
    names.set(z.node.id, `/${layer.name}/Gemm`);
    if (layer.bias) {
      z = g.add(z, leaves[k++] as Tensor);
      names.set(z.node.id, `/${layer.name}/Add`);
    }
    if (layer.activation === 'relu') h = g.relu(z);
    else if (layer.activation === 'tanh') h = g.tanh(z);
    else h = z;
    if (h !== z) names.set(h.node.id, `/${layer.name}/${layer.activation === 'relu' ? 'Relu' : 'Tanh'}`);
  });
  const proto = decodeModel(emitOnnx(g, { [EXPORT_OUTPUT]: h }), 'export');
  const graph = proto.graph as NonNullable<typeof proto.graph>;
  graph.name = 'twinscope';
  for (const node of graph.node ?? []) {
    const id = /^n(\d+)$/.exec(node.name ?? '')?.[1];
    const name = id === undefined ? undefined : names.get(Number(id));
    if (name) node.name = name;
  }
  const slots = new Map(model.layout.tensors.map((s) => [s.name, s]));
  graph.initializer = model.layout.tensors.map((slot) =>
    floatTensor(slot.name, slot.shape, params.subarray(slot.offset, slot.offset + slot.size)),
  );
  graph.input = (graph.input ?? []).filter((v) => !slots.has(v.name ?? ''));
  const batchAxis = (v: ValueInfoProto) => {
    const dims = v.type?.tensorType?.shape?.dim;
    if (dims?.[0]) dims[0] = { dimParam: 'N' };
  };
  for (const v of [...graph.input, ...(graph.output ?? [])]) batchAxis(v);
  proto.producerName = 'twinscope';
  proto.producerVersion = toolkitVersion();
  if (options.docString) proto.docString = options.docString;
  return encodeModel(proto);
}

/** A run's model at one checkpoint. */
export interface RunCheckpointModel {
  readonly dir: string;
  readonly model: ModelGraphSpec;
  readonly checkpoint: Checkpoint;
  /** The checkpoint steps the run has. */
  readonly steps: readonly number[];
}

/** `DIR` or `DIR@STEP` (an existing path named with an `@` is taken as it is). */
export function parseRunTarget(target: string): { dir: string; step?: number } {
  const at = target.lastIndexOf('@');
  if (existsSync(target) || at < 0) return { dir: target };
  const step = target.slice(at + 1);
  if (!/^\d+$/.test(step)) {
    throw new OnnxModelError(
      `${target}: expected DIR or DIR@STEP with STEP a checkpoint step (got '${step}')`,
    );
  }
  return { dir: target.slice(0, at), step: Number(step) };
}

/**
 * The model and weights of run `dir` at checkpoint `step` (default: its last checkpoint), the
 * checkpoints file checked against run.json first. Errors name the run and the steps it has.
 */
export function readRunCheckpointModel(dir: string, step?: number): RunCheckpointModel {
  const run = readRunJson(dir);
  const { cp, steps } = findRunCheckpoint(dir, run.layout, step);
  if (!cp) throw new OnnxModelError(missingCheckpoint(dir, step, steps));
  const first = run.layout.tensors[0];
  const last = run.layout.tensors.filter((t) => t.role === 'weight').at(-1);
  if (!first || !last || first.shape.length !== 2) {
    throw new OnnxModelError(
      `${dir}: the run's layout is not a chain of dense layers; only those export to ONNX`,
    );
  }
  const model = modelGraphSpec(
    run.spec.model,
    first.shape[1] as number,
    last.shape[0] as number,
    run.spec.loss,
  );
  const same =
    model.layout.size === run.layout.size &&
    model.layout.tensors.every((t, i) => t.name === run.layout.tensors[i]?.name);
  if (!same) throw new OnnxModelError(`${dir}: the run's layout does not match its model spec`);
  return { dir, model, checkpoint: cp, steps };
}

/** {@link exportModelOnnx} of a run's checkpoint, its doc string naming the run and step. */
export function exportRunOnnx(
  dir: string,
  step?: number,
): { bytes: Uint8Array; step: number; model: ModelGraphSpec } {
  const r = readRunCheckpointModel(dir, step);
  const bytes = exportModelOnnx(r.model, r.checkpoint.params, {
    docString: `twinscope run ${dir} at step ${r.checkpoint.step} (epoch ${r.checkpoint.epoch})`,
  });
  return { bytes, step: r.checkpoint.step, model: r.model };
}
