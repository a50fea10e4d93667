import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { layoutOf, type ParameterLayout } from '../../src/model/layout.js';
import type { Checkpoint, MetricRow } from '../../src/store/index.js';
import { scratchDir } from '../helpers/scratch.js';

/** A small two-layer layout: dense0 [4,3] + bias [4], dense1 [2,4] (no bias). */
export function smallLayout(): ParameterLayout {
  return layoutOf(
    [
      { name: 'dense0', inputs: 3, outputs: 4, bias: true, activation: 'relu' },
      { name: 'dense1', inputs: 4, outputs: 2, bias: false, activation: 'identity' },
    ] as never,
    { kind: 'he' },
  );
}

/** A fresh scratch folder (removed after the test file; test/helpers/scratch.ts). */
export function tempDir(): string {
  return scratchDir('twinscope-store-');
}

/** Deterministic pseudo-random floats, including awkward values (NaN payload, -0, subnormal, Inf). */
function floats(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 3;
  }
  if (n > 3) {
    const u = new Uint32Array(out.buffer);
    u[0] = 0x7fc01234; // NaN with payload
    u[1] = 0x80000000; // -0
    u[2] = 0x00000001; // smallest subnormal
    out[3] = Number.POSITIVE_INFINITY;
  }
  return out;
}

/** A checkpoint for `layout` at `step`. */
export function checkpoint(layout: ParameterLayout, step: number, slots: number): Checkpoint {
  return {
    step,
    epoch: step / 7,
    params: floats(layout.size, 1000 + step),
    opt: { step, slots: Array.from({ length: slots }, (_, i) => floats(layout.size, 5000 + 31 * step + i)) },
  };
}

/** A step row and, every 2 steps, an eval row. */
export function metricRows(step: number): MetricRow[] {
  const rows: MetricRow[] = [
    {
      kind: 'step',
      step,
      epoch: step / 7,
      lr: 0.1 / (step + 1),
      trainLoss: 2 - step * 0.01,
      batchHash: `h${step}`,
    },
  ];
  if (step % 2 === 0) {
    rows.push({
      kind: 'eval',
      step,
      epoch: step / 7,
      trainEvalLoss: 1.5,
      trainAcc: 0.5,
      testLoss: 1.6,
      testAcc: 0.45,
    });
  }
  return rows;
}

/** Bit patterns of a Float32Array, for bit-exact comparisons. */
export function bits(a: Float32Array): number[] {
  return [...new Uint32Array(a.buffer, a.byteOffset, a.length)];
}

/** sha256 (hex) of a file. */
export function sha(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}
