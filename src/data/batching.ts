/**
 * Deterministic minibatches. The examples of step s of epoch e are a pure function of
 * (data seed, e, s): epoch e shuffles the train indices with `Rng.fromSeed(dataSeed).stream('data', e)`
 * and step s takes the s-th block of `batchSize` indices. The last partial batch of an epoch is
 * dropped, so every step has exactly `batchSize` examples and an epoch has ⌊n / batchSize⌋ steps.
 * Full-batch training ('full') uses all indices in order, one step per epoch.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import { Rng } from '../rng/rng.js';
import { checkInt } from './check.js';
import { iota } from './split.js';
import type { Batch, Split } from './types.js';

/** A minibatch size, or every example at once. */
export type BatchSize = number | 'full';

/** Steps per epoch: ⌊n / batchSize⌋ (the last partial batch is dropped), 1 for 'full'. */
export function stepsPerEpoch(n: number, batchSize: BatchSize): number {
  checkInt('n', n);
  if (batchSize === 'full') return 1;
  checkInt('batchSize', batchSize);
  if (batchSize > n) throw new Error(`batchSize ${batchSize} exceeds the ${n} training examples`);
  return Math.floor(n / batchSize);
}

/** One-entry cache: consecutive steps of an epoch reuse its permutation. */
let cached: { n: number; seed: number; epoch: number; perm: Uint32Array } | undefined;

function epochPermutation(n: number, dataSeed: number, epoch: number): Uint32Array {
  if (!cached || cached.n !== n || cached.seed !== dataSeed || cached.epoch !== epoch) {
    cached = { n, seed: dataSeed, epoch, perm: Rng.fromSeed(dataSeed).stream('data', epoch).permutation(n) };
  }
  return cached.perm;
}

/**
 * The example indices of step `stepInEpoch` of epoch `epoch` (see the module comment). Returns a
 * fresh Uint32Array of length batchSize (n for 'full').
 */
export function batchIndices(
  n: number,
  batchSize: BatchSize,
  dataSeed: number,
  epoch: number,
  stepInEpoch: number,
): Uint32Array {
  const steps = stepsPerEpoch(n, batchSize);
  checkInt('epoch', epoch, 0);
  if (!Number.isInteger(stepInEpoch) || stepInEpoch < 0 || stepInEpoch >= steps) {
    throw new Error(`stepInEpoch must be an integer in [0, ${steps}), got ${stepInEpoch}`);
  }
  if (batchSize === 'full') return iota(n);
  const perm = epochPermutation(n, dataSeed, epoch);
  return perm.slice(stepInEpoch * batchSize, (stepInEpoch + 1) * batchSize);
}

/**
 * The example indices of global step `step` (counted from 0 over all epochs): epoch
 * ⌊step / stepsPerEpoch⌋, step-in-epoch step mod stepsPerEpoch (see {@link batchIndices}).
 */
export function batchIndicesAtStep(
  n: number,
  batchSize: BatchSize,
  dataSeed: number,
  step: number,
): Uint32Array {
  const steps = stepsPerEpoch(n, batchSize);
  checkInt('step', step, 0);
  return batchIndices(n, batchSize, dataSeed, Math.floor(step / steps), step % steps);
}

/** The rows `indices` of a split, as an engine {@link Batch}. */
export function gatherBatch(split: Split, indices: ArrayLike<number>): Batch {
  const inDim = split.x.length / split.n;
  const outDim = split.y.length / split.n;
  const x = new Float32Array(indices.length * inDim);
  const y = new Float32Array(indices.length * outDim);
  for (let r = 0; r < indices.length; r++) {
    const i = indices[r] as number;
    if (!(i >= 0 && i < split.n))
      throw new Error(`batch index ${i} is outside the split's ${split.n} examples`);
    x.set(split.x.subarray(i * inDim, (i + 1) * inDim), r * inDim);
    y.set(split.y.subarray(i * outDim, (i + 1) * outDim), r * outDim);
  }
  return { x, y, size: indices.length };
}

/** First 16 hex characters of SHA-256 over the indices as little-endian uint32s (recorded per step). */
export function batchHash(indices: Uint32Array): string {
  let bytes = new Uint8Array(indices.buffer, indices.byteOffset, indices.byteLength);
  if (endianness() !== 'LE') {
    const view = new DataView(new ArrayBuffer(indices.byteLength));
    indices.forEach((v, i) => view.setUint32(4 * i, v, true));
    bytes = new Uint8Array(view.buffer);
  }
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}
