/**
 * Arrow schemas of the two store files, the layout metadata they carry, and schema validation.
 */
import { DataType, Field, FixedSizeList, Float32, Float64, Int32, Int64, Schema, Utf8 } from 'apache-arrow';
import type { ParameterLayout, TensorSlot } from '../model/layout.js';

/** Store format version, in schema metadata key {@link META_FORMAT}. */
export const FORMAT_VERSION = '1';
/** Schema metadata key holding the format version. */
const META_FORMAT = 'twinscope.format';
/** Schema metadata key holding the parameter layout JSON ({@link LayoutMeta}). */
export const META_LAYOUT = 'twinscope.layout';
/** Schema metadata key naming which store file this is (`checkpoints` or `metrics`). */
export const META_KIND = 'twinscope.kind';
/** Checkpoints file name inside a run directory. */
export const CHECKPOINTS_FILE = 'checkpoints.arrow';
/** Metrics file name inside a run directory. */
export const METRICS_FILE = 'metrics.arrow';
/**
 * Diagnostics file name inside a run directory: measurements along training (diagnostics, sharpness),
 * present only in runs whose spec asks for them.
 */
export const DIAGNOSTICS_FILE = 'diagnostics.arrow';

/** The parameter layout as stored in checkpoint schema metadata (JSON), plus the optimizer slot count. */
export interface LayoutMeta {
  /** Total parameter count. */
  readonly size: number;
  /** Number of optimizer slot columns (`opt.slot0` …). */
  readonly slots: number;
  /** Tensors in flat-vector order. */
  readonly tensors: readonly TensorSlot[];
}

/** Name of optimizer slot column `i`. */
export function slotColumn(i: number): string {
  return `opt.slot${i}`;
}

/** Layout metadata for a layout and slot count. */
export function layoutMeta(layout: ParameterLayout, slotCount: number): LayoutMeta {
  return {
    size: layout.size,
    slots: slotCount,
    tensors: layout.tensors.map((t) => ({
      name: t.name,
      shape: [...t.shape],
      offset: t.offset,
      size: t.size,
      role: t.role,
      fanIn: t.fanIn,
      fanOut: t.fanOut,
      initStd: t.initStd,
    })),
  };
}

/** Parse and sanity-check {@link LayoutMeta} JSON; returns a problem string instead on failure. */
export function parseLayoutMeta(json: string | undefined): LayoutMeta | string {
  if (json === undefined) return `schema metadata '${META_LAYOUT}' is missing`;
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return `schema metadata '${META_LAYOUT}' is not valid JSON`;
  }
  const m = v as LayoutMeta;
  if (
    typeof m !== 'object' ||
    m === null ||
    !Number.isInteger(m.size) ||
    !Number.isInteger(m.slots) ||
    m.slots < 0 ||
    !Array.isArray(m.tensors)
  ) {
    return `schema metadata '${META_LAYOUT}' lacks size, slots or tensors`;
  }
  let offset = 0;
  for (const t of m.tensors) {
    if (typeof t?.name !== 'string' || !Array.isArray(t.shape) || !Number.isInteger(t.size)) {
      return `schema metadata '${META_LAYOUT}' has a malformed tensor entry`;
    }
    const prod = t.shape.reduce((a: number, b: number) => a * b, 1);
    if (prod !== t.size || t.offset !== offset) {
      return `schema metadata '${META_LAYOUT}': tensor '${t.name}' has shape [${t.shape.join(', ')}], size ${t.size}, offset ${t.offset} (expected size ${prod}, offset ${offset})`;
    }
    offset += t.size;
  }
  if (offset !== m.size) {
    return `schema metadata '${META_LAYOUT}': tensor sizes sum to ${offset}, size says ${m.size}`;
  }
  return m;
}

/** The layout a {@link LayoutMeta} describes. */
export function layoutFromMeta(m: LayoutMeta): ParameterLayout {
  return { size: m.size, tensors: m.tensors };
}

/** A differing tensor between two layouts, or undefined when they agree (names, shapes, order). */
export function layoutMismatch(a: ParameterLayout, b: ParameterLayout): string | undefined {
  const fmt = (l: ParameterLayout) => l.tensors.map((t) => `${t.name}[${t.shape.join('x')}]`).join(', ');
  const same =
    a.size === b.size &&
    a.tensors.length === b.tensors.length &&
    a.tensors.every((t, i) => {
      const u = b.tensors[i]!;
      return (
        t.name === u.name && t.size === u.size && t.offset === u.offset && t.shape.join() === u.shape.join()
      );
    });
  return same ? undefined : `${fmt(a)} vs ${fmt(b)}`;
}

const f32List = (n: number) => new FixedSizeList(n, new Field('item', new Float32(), false));

/** Schema of `checkpoints.arrow` for a layout metadata. */
export function checkpointSchema(meta: LayoutMeta): Schema {
  const fields = [
    new Field('step', new Int64(), false),
    new Field('epoch', new Float64(), false),
    ...meta.tensors.map((t) => new Field(t.name, f32List(t.size), false)),
    new Field('opt.step', new Int64(), false),
    ...Array.from({ length: meta.slots }, (_, i) => new Field(slotColumn(i), f32List(meta.size), false)),
  ];
  return new Schema(
    fields,
    new Map([
      [META_FORMAT, FORMAT_VERSION],
      [META_KIND, 'checkpoints'],
      [META_LAYOUT, JSON.stringify(meta)],
    ]),
  );
}

/** Schema of `metrics.arrow`. */
export function metricsSchema(): Schema {
  return new Schema(
    [
      new Field('step', new Int64(), false),
      new Field('epoch', new Float64(), false),
      new Field('kind', new Utf8(), false),
      new Field('lr', new Float64(), true),
      new Field('train_loss', new Float64(), true),
      new Field('batch_hash', new Utf8(), true),
      new Field('train_eval_loss', new Float64(), true),
      new Field('train_acc', new Float64(), true),
      new Field('test_loss', new Float64(), true),
      new Field('test_acc', new Float64(), true),
    ],
    new Map([
      [META_FORMAT, FORMAT_VERSION],
      [META_KIND, 'metrics'],
    ]),
  );
}

/** Schema of `diagnostics.arrow`: long form, one row per measured value. */
export function diagnosticsSchema(): Schema {
  return new Schema(
    [
      new Field('step', new Int64(), false),
      new Field('epoch', new Float64(), false),
      new Field('metric', new Utf8(), false),
      new Field('layer', new Utf8(), true),
      new Field('rank', new Int32(), true),
      new Field('examples', new Int64(), true),
      new Field('value', new Float64(), false),
    ],
    new Map([
      [META_FORMAT, FORMAT_VERSION],
      [META_KIND, 'diagnostics'],
    ]),
  );
}

function typeName(t: DataType): string {
  if (DataType.isFixedSizeList(t)) return `FixedSizeList<${typeName(t.children[0]!.type)}>`;
  return String(t);
}

/**
 * Compare a file's schema to the expected one, column by column in order. Returns the first problem
 * (without the file-name prefix), or undefined when the schemas agree.
 */
export function schemaProblem(actual: Schema, expected: Schema): string | undefined {
  const fmt = actual.metadata.get(META_FORMAT);
  if (fmt === undefined) return `schema metadata '${META_FORMAT}' is missing`;
  if (fmt !== FORMAT_VERSION)
    return `format version '${fmt}' is not supported (expected '${FORMAT_VERSION}')`;
  const byName = new Map(actual.fields.map((f, i) => [f.name, { f, i }]));
  for (const [i, e] of expected.fields.entries()) {
    const hit = byName.get(e.name);
    if (!hit) return `missing column '${e.name}' (${typeName(e.type)})`;
    const a = hit.f;
    if (DataType.isFixedSizeList(e.type)) {
      if (!DataType.isFixedSizeList(a.type) || !DataType.isFloat(a.type.children[0]!.type)) {
        return `column '${e.name}' has type ${typeName(a.type)}, expected ${typeName(e.type)}`;
      }
      if (typeName(a.type) !== typeName(e.type)) {
        return `column '${e.name}' has type ${typeName(a.type)}, expected ${typeName(e.type)}`;
      }
      if (a.type.listSize !== e.type.listSize) {
        return `column '${e.name}' has list size ${a.type.listSize}, schema metadata says ${e.type.listSize}`;
      }
    } else if (typeName(a.type) !== typeName(e.type)) {
      return `column '${e.name}' has type ${typeName(a.type)}, expected ${typeName(e.type)}`;
    }
    if (hit.i !== i) return `column '${e.name}' is at position ${hit.i}, expected ${i}`;
  }
  if (actual.fields.length !== expected.fields.length) {
    const extra = actual.fields.find((f) => !expected.fields.some((e) => e.name === f.name));
    return `unexpected column '${extra?.name}'`;
  }
  return undefined;
}
