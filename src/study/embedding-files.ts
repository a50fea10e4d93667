/**
 * Embedding files: DIR/embedding.arrow (one row per checkpoint: run, step, axis0 … axis{k−1}) and
 * DIR/embedding.json (method, signed eigenvalues, explained stress / variance, options), written
 * atomically from a {@link RunEmbedding} (see docs/formats.md, "Embeddings").
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  type DataType,
  Float64,
  Int64,
  Table,
  tableToIPC,
  Utf8,
  type Vector,
  vectorFromArray,
} from 'apache-arrow';
import { writeFileAtomic } from '../store/writer.js';
import { writeJsonAtomic } from '../train/run.js';
import type { EmbedMethod, RunEmbedding } from './embed-runs.js';

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

/** What embedding.json holds. */
export interface EmbeddingJson {
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

/** The JSON summary of an embedding (see {@link EmbeddingJson}). */
export function embeddingJson(embedding: RunEmbedding): EmbeddingJson {
  const ratio = embedding.explainedVarianceRatio;
  let cum = 0;
  return {
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
          cumulativeVarianceRatio: ratio.map((r) => {
            cum += r;
            return cum;
          }),
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
  writeFileAtomic(out.arrow, [tableToIPC(embeddingTable(embedding), 'file')]);
  writeJsonAtomic(out.json, embeddingJson(embedding));
  return out;
}
