/**
 * One onnxruntime session per imported architecture: it evaluates any weight vector of the
 * architecture's layout (the weights are graph inputs), returning logits, hidden outputs, or the
 * softmax cross-entropy loss and correct count on labelled data.
 *
 * Examples are fed in chunks (the graph's fixed batch size when it has one, the last chunk padded
 * with zeros; else {@link CHUNK} rows). Flat features are fed as [rows, …inputShape] (784 features
 * → [rows, 1, 28, 28]) when their count matches the example shape.
 */
import ort from 'onnxruntime-node';
import type { ImportedArchitecture } from './import-model.js';
import { OnnxModelError } from './proto.js';

/** Rows per run of a graph with a dynamic batch axis. */
const CHUNK = 512;

/** Loss and accuracy of one weight vector on labelled examples. */
export interface ImportedEval {
  /** Mean softmax cross-entropy of the logits against the (one-hot or soft) targets, in float64. */
  readonly loss: number;
  /** Examples whose argmax logit equals their argmax target. */
  readonly correct: number;
  readonly count: number;
}

/** A hidden output on n examples: row-major [n, features] (each example's values flattened). */
export interface HiddenValues {
  readonly data: Float32Array;
  readonly rows: number;
  readonly cols: number;
}

/**
 * A sequential onnxruntime session on model `bytes` with `threads` intra-op threads; a model
 * onnxruntime cannot load is an {@link OnnxModelError} (bad input).
 */
export async function openOnnxSession(bytes: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
    });
  } catch (e) {
    throw new OnnxModelError(`onnxruntime cannot load the model: ${(e as Error).message}`);
  }
}

/** An onnxruntime session on an {@link ImportedArchitecture}. */
export class ImportedSession {
  private constructor(
    readonly architecture: ImportedArchitecture,
    private readonly session: ort.InferenceSession,
  ) {}

  /** Open the session (intra-op `threads`, default 1: results are then bit-identical across runs). */
  static async create(architecture: ImportedArchitecture, threads = 1): Promise<ImportedSession> {
    return new ImportedSession(architecture, await openOnnxSession(architecture.bytes, threads));
  }

  /** Features per example (the product of the example shape). */
  get features(): number {
    return this.architecture.inputShape.reduce((a, b) => a * b, 1);
  }

  private weightFeeds(weights: Float32Array): Record<string, ort.Tensor> {
    return weightFeeds(this.architecture, weights);
  }

  /** Check that x holds n examples of this architecture's input size. */
  checkInputs(x: Float32Array, n: number): void {
    if (x.length !== n * this.features) {
      const per = n > 0 ? x.length / n : 0;
      throw new OnnxModelError(
        `the data has ${per} features per example, the model takes [${this.architecture.inputShape.join(', ')}] = ${this.features}`,
      );
    }
  }

  /**
   * Run the graph on n examples, fetching `names` (graph value names); each result is row-major
   * [n, …] with the rows of every chunk concatenated.
   */
  private async runRows(
    weights: Float32Array,
    x: Float32Array,
    n: number,
    names: readonly string[],
  ): Promise<Map<string, { data: Float32Array; cols: number }>> {
    this.checkInputs(x, n);
    const feeds = this.weightFeeds(weights);
    const f = this.features;
    const fixed = this.architecture.batch;
    const chunk = fixed ?? CHUNK;
    const parts = new Map<string, Float32Array[]>(names.map((m) => [m, []]));
    const cols = new Map<string, number>();
    for (let start = 0; start < n; start += chunk) {
      const rows = Math.min(chunk, n - start);
      const fed = fixed ?? rows;
      let data = x.subarray(start * f, (start + rows) * f);
      if (fed !== rows) {
        const padded = new Float32Array(fed * f);
        padded.set(data);
        data = padded;
      }
      feeds[this.architecture.input] = new ort.Tensor('float32', Float32Array.from(data), [
        fed,
        ...this.architecture.inputShape,
      ]);
      const out = await this.session.run(feeds, [...names]);
      for (const name of names) {
        const t = out[name] as ort.Tensor;
        const c = t.dims.slice(1).reduce((a, b) => a * Number(b), 1);
        cols.set(name, c);
        (parts.get(name) as Float32Array[]).push((t.data as Float32Array).slice(0, rows * c));
      }
    }
    const result = new Map<string, { data: Float32Array; cols: number }>();
    for (const name of names) {
      const list = parts.get(name) as Float32Array[];
      const c = cols.get(name) ?? 0;
      const data = new Float32Array(n * c);
      let offset = 0;
      for (const p of list) {
        data.set(p, offset);
        offset += p.length;
      }
      result.set(name, { data, cols: c });
    }
    return result;
  }

  /** The model output (logits) on n examples: row-major [n, classes]. */
  async logits(weights: Float32Array, x: Float32Array, n: number): Promise<HiddenValues> {
    const r = (await this.runRows(weights, x, n, [this.architecture.output])).get(
      this.architecture.output,
    ) as { data: Float32Array; cols: number };
    return { data: r.data, rows: n, cols: r.cols };
  }

  /** Hidden outputs on n examples, keyed by hidden-output name (all of them, or those named). */
  async hidden(
    weights: Float32Array,
    x: Float32Array,
    n: number,
    names: readonly string[] = this.architecture.hidden.map((h) => h.name),
  ): Promise<Map<string, HiddenValues>> {
    const byName = new Map(this.architecture.hidden.map((h) => [h.name, h]));
    const values = names.map((name) => {
      const h = byName.get(name);
      if (!h) throw new OnnxModelError(`no hidden output '${name}' (has ${[...byName.keys()].join(', ')})`);
      return h.value;
    });
    const out = await this.runRows(weights, x, n, values);
    const result = new Map<string, HiddenValues>();
    names.forEach((name, i) => {
      const r = out.get(values[i] as string) as { data: Float32Array; cols: number };
      result.set(name, { data: r.data, rows: n, cols: r.cols });
    });
    return result;
  }

  /** Softmax cross-entropy and correct count of `weights` on n examples with targets y [n, classes]. */
  async evaluate(weights: Float32Array, x: Float32Array, y: Float32Array, n: number): Promise<ImportedEval> {
    const z = await this.logits(weights, x, n);
    if (y.length !== n * z.cols) {
      throw new OnnxModelError(
        `the model has ${z.cols} outputs, the data has ${n > 0 ? y.length / n : 0} classes`,
      );
    }
    return crossEntropy(z.data, y, n, z.cols);
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/** Mean softmax cross-entropy (float64) and argmax agreement of logits z against targets y, both [n, c]. */
function crossEntropy(z: Float32Array, y: Float32Array, n: number, c: number): ImportedEval {
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    let max = Number.NEGATIVE_INFINITY;
    let argZ = 0;
    let argY = 0;
    for (let j = 0; j < c; j++) {
      const v = z[i * c + j] as number;
      if (v > max) {
        max = v;
        argZ = j;
      }
      if ((y[i * c + j] as number) > (y[i * c + argY] as number)) argY = j;
    }
    let sum = 0;
    for (let j = 0; j < c; j++) sum += Math.exp((z[i * c + j] as number) - max);
    const logSum = max + Math.log(sum);
    for (let j = 0; j < c; j++) {
      const t = y[i * c + j] as number;
      if (t !== 0) loss -= t * ((z[i * c + j] as number) - logSum);
    }
    if (argZ === argY) correct++;
  }
  return { loss: n > 0 ? loss / n : Number.NaN, correct, count: n };
}

/**
 * One onnxruntime tensor per weight of an imported architecture, from a flat vector in its layout
 * order, keyed by the graph input the weight became.
 */
export function weightFeeds(
  architecture: Pick<ImportedArchitecture, 'layout' | 'weightValues'>,
  weights: Float32Array,
): Record<string, ort.Tensor> {
  const { layout, weightValues } = architecture;
  if (weights.length !== layout.size) {
    throw new OnnxModelError(
      `weight vector has ${weights.length} values, the architecture has ${layout.size}`,
    );
  }
  const feeds: Record<string, ort.Tensor> = {};
  layout.tensors.forEach((slot, k) => {
    const data = weights.slice(slot.offset, slot.offset + slot.size);
    feeds[weightValues[k] as string] = new ort.Tensor('float32', data, [...slot.shape]);
  });
  return feeds;
}
