/**
 * Loss-surface files (docs/formats.md, "Surfaces"): one Arrow IPC file per 2-D surface of one run at
 * one checkpoint, long form. Rows of kind `grid` are the grid points, row by row (y outer, x inner);
 * rows of kind `path` are a run's checkpoints projected onto the plane (PCA surfaces), in step order.
 *
 * Columns: kind (Utf8: `grid` | `path`), x, y (Float64: the coefficients of d₁ and d₂), loss,
 * accuracy (Float64; accuracy null for regression data, loss and accuracy null for a path point that
 * was not evaluated), step (Int64: the checkpoint of a `path` row; null for `grid` rows). Schema
 * metadata: `twinscope.kind` = `surface`, `twinscope.format` = `1`, `twinscope.surface` = JSON of
 * {@link SurfaceMeta}.
 *
 * Written atomically; the digest {@link writeSurface} returns is recorded by the measurement index
 * (measurement-files.ts) and in the `surface` row of results.arrow, and {@link readSurface} checks
 * it before reading.
 */
import { readFileSync } from 'node:fs';
import { Float64, Int64, Table, tableFromIPC, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { writeFileAtomic } from '../util/atomic-file.js';
import { checkDigest, type FileDigest } from '../util/file-digest.js';

/** What a surface file holds besides its points (its schema metadata `twinscope.surface`). */
export interface SurfaceMeta {
  /** The run (its name in the sweep). */
  readonly run: string;
  /** The checkpoint step of θ (the plane's origin). */
  readonly step: number;
  /** `line`: a 1-D surface, one row at y = 0. */
  readonly directions: 'random' | 'pca' | 'line';
  readonly split: 'train' | 'test';
  readonly examples: number;
  /** Any further description of the plane: seed, norms, cosine (random); explained variance (pca). */
  readonly [key: string]: unknown;
}

/** A trajectory point on a PCA plane. */
export interface SurfacePathPoint {
  readonly step: number;
  readonly x: number;
  readonly y: number;
  /** Loss and accuracy of the checkpoint itself (null when not evaluated; accuracy null for regression data). */
  readonly loss: number | null;
  readonly accuracy: number | null;
}

/** A surface as written and read. */
export interface SurfaceData {
  readonly meta: SurfaceMeta;
  /** Coefficients of d₁ (columns). */
  readonly x: readonly number[];
  /** Coefficients of d₂ (rows). */
  readonly y: readonly number[];
  /** loss[j][i] at (x[i], y[j]). */
  readonly loss: readonly (readonly number[])[];
  /** accuracy[j][i]; NaN for regression data. */
  readonly accuracy: readonly (readonly number[])[];
  /** The projected trajectory (PCA surfaces); empty otherwise. */
  readonly path: readonly SurfacePathPoint[];
}

const SURFACE_FORMAT = '1';

const finiteOrNull = (v: number | null) => (v === null || Number.isNaN(v) ? null : v);

/** Write `surface` to `path` (Arrow IPC file, atomically); returns its digest. */
export function writeSurface(path: string, surface: SurfaceData): FileDigest {
  const kind: string[] = [];
  const x: number[] = [];
  const y: number[] = [];
  const loss: (number | null)[] = [];
  const accuracy: (number | null)[] = [];
  const step: (bigint | null)[] = [];
  surface.y.forEach((b, j) => {
    surface.x.forEach((a, i) => {
      kind.push('grid');
      x.push(a);
      y.push(b);
      loss.push(surface.loss[j]?.[i] as number);
      accuracy.push(finiteOrNull(surface.accuracy[j]?.[i] as number));
      step.push(null);
    });
  });
  for (const p of surface.path) {
    kind.push('path');
    x.push(p.x);
    y.push(p.y);
    loss.push(p.loss);
    accuracy.push(p.accuracy === null ? null : finiteOrNull(p.accuracy));
    step.push(BigInt(p.step));
  }
  const table = new Table({
    kind: vectorFromArray(kind, new Utf8()),
    x: vectorFromArray(x, new Float64()),
    y: vectorFromArray(y, new Float64()),
    loss: vectorFromArray(loss, new Float64()),
    accuracy: vectorFromArray(accuracy, new Float64()),
    step: vectorFromArray(step, new Int64()),
  });
  table.schema.metadata.set('twinscope.kind', 'surface');
  table.schema.metadata.set('twinscope.format', SURFACE_FORMAT);
  table.schema.metadata.set('twinscope.surface', JSON.stringify(surface.meta));
  return writeFileAtomic(path, [tableToIPC(table, 'file')]);
}

/**
 * Read a surface file, first checking it against the digest an index recorded (`where` names the
 * index): an IntegrityError naming the file when it does not match; other errors name the file.
 */
export function readSurface(path: string, recorded: { digest: FileDigest; where: string }): SurfaceData {
  checkDigest(path, recorded.digest, recorded.where);
  let table: Table;
  try {
    table = tableFromIPC(readFileSync(path));
  } catch (e) {
    throw new Error(`${path}: not a readable Arrow IPC file (${(e as Error).message})`);
  }
  const metaText = table.schema.metadata.get('twinscope.surface');
  if (table.schema.metadata.get('twinscope.kind') !== 'surface' || metaText === undefined) {
    throw new Error(`${path}: not a surface file (no twinscope.kind = surface metadata)`);
  }
  const missing = ['kind', 'x', 'y', 'loss', 'accuracy', 'step'].filter((n) => !table.getChild(n));
  if (missing.length) throw new Error(`${path}: missing column(s) ${missing.join(', ')}`);
  const xs: number[] = [];
  const ys: number[] = [];
  const cells = new Map<string, { loss: number; accuracy: number }>();
  const path_: SurfacePathPoint[] = [];
  for (const r of table.toArray()) {
    if (r.kind === 'grid') {
      if (!xs.includes(r.x)) xs.push(r.x);
      if (!ys.includes(r.y)) ys.push(r.y);
      cells.set(`${r.x},${r.y}`, { loss: r.loss ?? Number.NaN, accuracy: r.accuracy ?? Number.NaN });
    } else {
      path_.push({
        step: Number(r.step),
        x: r.x,
        y: r.y,
        loss: r.loss ?? null,
        accuracy: r.accuracy ?? null,
      });
    }
  }
  const grid = (f: 'loss' | 'accuracy') =>
    ys.map((b) => xs.map((a) => cells.get(`${a},${b}`)?.[f] ?? Number.NaN));
  return {
    meta: JSON.parse(metaText) as SurfaceMeta,
    x: xs,
    y: ys,
    loss: grid('loss'),
    accuracy: grid('accuracy'),
    path: path_,
  };
}
