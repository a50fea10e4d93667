/**
 * Embedding files: DIR/embedding.arrow (one row per checkpoint: run, step, axis0 … axis{k−1}) and
 * DIR/embedding.json (method, signed eigenvalues, explained stress / variance, options), written
 * atomically from a {@link RunEmbedding} (see docs/formats.md, "Embeddings"), and read back by
 * {@link readEmbedding}; the embedding's type itself and key.json (what a keyed embedding was made
 * from).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DataType,
  Float64,
  Int64,
  Table,
  tableFromIPC,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import type { InpcaEmbedding } from '../measure/inpca.js';
import type { TrajectoryPca } from '../measure/pca.js';
import { writeFileAtomic } from '../util/atomic-file.js';
import { checkDigest, type FileDigest, isFileDigest } from '../util/file-digest.js';
import { formatBelow, readSealedJson, writeSealedJson } from '../util/sealed-json.js';

/** The embedding methods. */
export type EmbedMethod = 'pca' | 'inpca';

/** One embedded checkpoint. */
export interface EmbedPoint {
  /** Run label: the directory's base name (the path as given when two base names clash). */
  readonly run: string;
  readonly step: number;
  /** Its k coordinates (axis 0 first). */
  readonly coords: number[];
}

/** A trajectory embedding of several runs (see the module comment). */
export interface RunEmbedding {
  readonly method: EmbedMethod;
  /** Run labels in input order (as in {@link EmbedPoint.run}). */
  readonly runs: string[];
  /** The run directories as given. */
  readonly runDirs: string[];
  /** Every checkpoint of every run, runs in input order, steps ascending within a run. */
  readonly points: EmbedPoint[];
  /** k: axes kept. */
  readonly components: number;
  /** The k eigenvalues: λ ≥ 0 for PCA; signed InPCA eigenvalues (|λ| descending; λ < 0: time-like axis). */
  readonly eigenvalues: number[];
  /** PCA: variance fraction of each axis (λ_k / total). */
  readonly explainedVarianceRatio?: number[];
  /** InPCA: explainedStress[k] = explained stress of the first k + 1 axes (nondecreasing). */
  readonly explainedStress?: number[];
  /** What was asked for, resolved (examples, split and likelihood: InPCA only; sigma: Gaussian only). */
  readonly options: {
    readonly components: number;
    readonly examples?: number;
    readonly split?: 'test' | 'train';
    /** How a checkpoint's outputs are read as distributions: softmax (categorical) or Gaussian means. */
    readonly likelihood?: 'categorical' | 'gaussian';
    readonly sigma?: number;
  };
  /** PCA: the decomposition (components, reference), for {@link pcaProject} of further weights. */
  readonly pca?: TrajectoryPca;
  /** InPCA: the decomposition, for {@link inpcaProject} of further checkpoints. */
  readonly inpca?: InpcaEmbedding;
  /** InPCA: the m × m Bhattacharyya distance matrix between the points (row-major, in point order). */
  readonly distances?: Float64Array;
}

/**
 * The explained fraction of the first k + 1 axes: InPCA's explained stress, or PCA's cumulative
 * explained variance.
 */
export function cumulativeExplained(e: RunEmbedding): number[] {
  if (e.explainedStress) return e.explainedStress;
  let sum = 0;
  return (e.explainedVarianceRatio ?? []).map((r) => {
    sum += r;
    return sum;
  });
}

/** What key.json (next to a seed's embedding files) holds; format 2 is sealed (util/sealed-json.ts). */
export interface EmbeddingKeyJson {
  readonly format: 1 | 2;
  /** sha256 (hex) of the inputs: runs (name, spec, lineage, status, files), options, toolkit version. */
  readonly key: string;
  /** The embedded runs, in embedding order. */
  readonly runs: readonly string[];
  /** Runs of the seed that were left out because they are not complete. */
  readonly excluded: readonly { readonly name: string; readonly reason: string }[];
}

/**
 * Read key.json with its seal checked (format 1, unsealed, is still read); an IntegrityError naming
 * the file when it is damaged.
 */
export function readEmbeddingKey(path: string): Partial<EmbeddingKeyJson> {
  return readSealedJson(path, formatBelow(2)) as Partial<EmbeddingKeyJson>;
}

/** The points as an Arrow table: run (utf8), step (int64), axis0 … axis{k−1} (float64). */
export function embeddingTable(embedding: RunEmbedding): Table {
  const columns: Record<string, Vector<DataType>> = {
    run: vectorFromArray(
      embedding.points.map((p) => p.run),
      new Utf8(),
    ),
    step: vectorFromArray(
      embedding.points.map((p) => BigInt(p.step)),
      new Int64(),
    ),
  };
  for (let a = 0; a < embedding.components; a++) {
    columns[`axis${a}`] = vectorFromArray(
      embedding.points.map((p) => p.coords[a] as number),
      new Float64(),
    );
  }
  return new Table(columns);
}

/**
 * Version of embedding.json. 2: sealed (util/sealed-json.ts), with the digest of embedding.arrow in
 * `files`; embedding.json without `format` (before seals) is still read, unchecked.
 */
const EMBEDDING_FORMAT = 2;

/** What embedding.json holds. */
export interface EmbeddingJson {
  readonly format: number;
  /** The digest of embedding.arrow, checked before it is read. */
  readonly files: { readonly 'embedding.arrow': FileDigest };
  readonly method: EmbedMethod;
  readonly runs: { readonly label: string; readonly dir: string; readonly checkpoints: number }[];
  readonly points: number;
  readonly components: number;
  /** Signed eigenvalues of the kept axes. */
  readonly eigenvalues: number[];
  /** sign(λ_k): +1 space-like, −1 time-like (InPCA), 0 for λ = 0. */
  readonly signs: number[];
  /** PCA: per-axis variance fraction. */
  readonly explainedVarianceRatio?: number[];
  /** PCA: cumulative variance fraction of the first k + 1 axes. */
  readonly cumulativeVarianceRatio?: number[];
  /** InPCA: explained stress of the first k + 1 axes. */
  readonly explainedStress?: number[];
  readonly options: RunEmbedding['options'];
}

/** The JSON summary of an embedding whose embedding.arrow has digest `arrow` (see {@link EmbeddingJson}). */
export function embeddingJson(embedding: RunEmbedding, arrow: FileDigest): EmbeddingJson {
  const ratio = embedding.explainedVarianceRatio;
  return {
    format: EMBEDDING_FORMAT,
    files: { 'embedding.arrow': arrow },
    method: embedding.method,
    runs: embedding.runs.map((label, i) => ({
      label,
      dir: embedding.runDirs[i] as string,
      checkpoints: embedding.points.filter((p) => p.run === label).length,
    })),
    points: embedding.points.length,
    components: embedding.components,
    eigenvalues: embedding.eigenvalues,
    signs: embedding.eigenvalues.map((l) => Math.sign(l) + 0),
    ...(ratio
      ? {
          explainedVarianceRatio: ratio,
          cumulativeVarianceRatio: cumulativeExplained(embedding),
        }
      : {}),
    ...(embedding.explainedStress ? { explainedStress: embedding.explainedStress } : {}),
    options: embedding.options,
  };
}

/** Paths written by {@link writeEmbedding}. */
export interface WrittenEmbedding {
  readonly arrow: string;
  readonly json: string;
}

/** Write DIR/embedding.arrow ({@link embeddingTable}) and DIR/embedding.json ({@link embeddingJson}), atomically. */
export function writeEmbedding(dir: string, embedding: RunEmbedding): WrittenEmbedding {
  mkdirSync(dir, { recursive: true });
  const out = { arrow: join(dir, 'embedding.arrow'), json: join(dir, 'embedding.json') };
  // The arrow file first: embedding.json, which records its digest, is what makes it valid.
  const arrow = writeFileAtomic(out.arrow, [tableToIPC(embeddingTable(embedding), 'file')]);
  writeSealedJson(out.json, embeddingJson(embedding, arrow));
  return out;
}

/** embedding.arrow or embedding.json missing, unreadable, or not matching each other. */
export class EmbeddingFileError extends Error {
  override name = 'EmbeddingFileError';
}

const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.every((x) => typeof x === 'number');

/**
 * Read DIR/embedding.arrow and DIR/embedding.json (as {@link writeEmbedding} writes them) back into
 * a {@link RunEmbedding}: points, runs, run directories (as stored), eigenvalues, explained stress or
 * variance and options. The decompositions (`pca`, `inpca`, `distances`) are not stored, so they are
 * absent. embedding.json's seal and the digest it records for embedding.arrow are checked first.
 * @throws IntegrityError naming the file when embedding.json's seal or embedding.arrow's digest
 * does not match (a damaged file); EmbeddingFileError when a file is missing, unreadable or inconsistent.
 */
export function readEmbedding(dir: string): RunEmbedding {
  const jsonPath = join(dir, 'embedding.json');
  const arrowPath = join(dir, 'embedding.arrow');
  for (const p of [jsonPath, arrowPath]) if (!existsSync(p)) throw new EmbeddingFileError(`${p}: missing`);
  const json = readSealedJson(jsonPath, formatBelow(EMBEDDING_FORMAT)) as unknown as EmbeddingJson;
  const arrowDigest = (json.files as Partial<EmbeddingJson['files']> | undefined)?.['embedding.arrow'];
  if (isFileDigest(arrowDigest)) checkDigest(arrowPath, arrowDigest, jsonPath);
  else if (json.format >= EMBEDDING_FORMAT) {
    throw new EmbeddingFileError(`${jsonPath}: no digest of embedding.arrow in 'files'`);
  }
  const k = json?.components;
  if (
    (json?.method !== 'pca' && json?.method !== 'inpca') ||
    !Number.isInteger(k) ||
    k < 1 ||
    !Array.isArray(json.runs) ||
    !json.runs.every((r) => typeof r?.label === 'string' && typeof r.dir === 'string') ||
    !numbers(json.eigenvalues) ||
    json.eigenvalues.length !== k ||
    typeof json.options !== 'object' ||
    json.options === null
  ) {
    throw new EmbeddingFileError(
      `${jsonPath}: not an embedding summary (expected method, components, runs, one eigenvalue per component, options)`,
    );
  }
  let table: Table;
  try {
    table = tableFromIPC(readFileSync(arrowPath));
  } catch (e) {
    throw new EmbeddingFileError(`${arrowPath}: not a readable Arrow IPC file (${(e as Error).message})`);
  }
  const column = (name: string) => {
    const c = table.getChild(name);
    if (!c) throw new EmbeddingFileError(`${arrowPath}: no column '${name}'`);
    return c;
  };
  const run = column('run');
  const step = column('step');
  const axes = Array.from({ length: k }, (_, a) => column(`axis${a}`));
  const labels = new Set(json.runs.map((r) => r.label));
  const points: EmbedPoint[] = [];
  for (let i = 0; i < table.numRows; i++) {
    const label = run.get(i) as string;
    if (!labels.has(label)) {
      throw new EmbeddingFileError(`${arrowPath}: row ${i} has run '${label}', not in embedding.json`);
    }
    points.push({ run: label, step: Number(step.get(i)), coords: axes.map((c) => c.get(i) as number) });
  }
  if (typeof json.points === 'number' && json.points !== points.length) {
    throw new EmbeddingFileError(
      `${arrowPath}: ${points.length} rows, but embedding.json says ${json.points} points`,
    );
  }
  return {
    method: json.method,
    runs: json.runs.map((r) => r.label),
    runDirs: json.runs.map((r) => r.dir),
    points,
    components: k,
    eigenvalues: json.eigenvalues,
    ...(numbers(json.explainedVarianceRatio) && { explainedVarianceRatio: json.explainedVarianceRatio }),
    ...(numbers(json.explainedStress) && { explainedStress: json.explainedStress }),
    options: json.options,
  };
}
