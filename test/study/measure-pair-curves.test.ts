/**
 * measurePair evaluates each distinct interpolation path once: an alignment that returns the
 * identity (twin B already in A's unit order) or the same permutations as another method reuses
 * the curve already evaluated, and its aligned barrier rows carry the same values.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { METRICS, type TwinInfo } from '../../src/results/metrics.js';
import { Rng } from '../../src/rng/rng.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { exportAlignedRun } from '../../src/study/aligned.js';
import { measurePair } from '../../src/study/measure-pair.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { trainRun } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const curves = vi.hoisted(() => ({ calls: 0 }));
vi.mock('../../src/measure/barrier.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../src/measure/barrier.js')>();
  return {
    ...original,
    interpolationCurve: (...args: Parameters<typeof original.interpolationCurve>) => {
      curves.calls++;
      return original.interpolationCurve(...args);
    },
  };
});

const root = scratchDir('twinscope-measure-curves-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

const { measure } = parseStudySpec({
  name: 'curves',
  base: tinyBase,
  perturbations: [{ kind: 'init' }],
  measure: {
    barrier: { alphas: 5 },
    align: { methods: ['weight', 'activation'], examples: 200 },
  },
});
const twin = (runB: string): TwinInfo => ({
  runA: 'a',
  runB,
  kind: 'init',
  sigma: 0,
  forkStep: 0,
  repeat: 0,
  seed: 0,
});

describe('measurePair interpolation curves', () => {
  test('one curve per split and distinct B: identity and repeated alignments reuse it', async () => {
    const hidden = [16];
    const spec = parseRunSpec({ ...tinyBase, name: 'a', model: { kind: 'mlp', hidden } });
    const dirA = join(root, 'a');
    await trainRun(spec, dirA);
    const identity = [Int32Array.from({ length: 16 }, (_, i) => i)];
    const shuffled = [Int32Array.from(Rng.fromSeed(5).stream('perms').permutation(16))];
    await exportAlignedRun(dirA, dirA, identity, 'copy', join(root, 'same'));
    await exportAlignedRun(dirA, dirA, shuffled, 'shuffle', join(root, 'shuffled'));
    const splits = measure.barrier?.splits.length ?? 0;
    expect(splits).toBe(2);

    // B = A in A's order: both alignments find the identity; the plain curve serves all three.
    curves.calls = 0;
    const same = await measurePair(root, 'curves', twin('same'), measure);
    expect(curves.calls).toBe(splits);
    const values = (rows: typeof same.rows, metric: string, method?: string) =>
      rows
        .filter((r) => r.metric === metric && (method === undefined || r.options.method === method))
        .map((r) => [r.split, r.options.convention, r.value]);
    const plain = values(same.rows, METRICS.lossBarrier);
    expect(plain).toHaveLength(2 * splits);
    for (const method of ['weight', 'activation']) {
      expect(values(same.rows, METRICS.alignedLossBarrier, method)).toEqual(plain);
    }

    // B a permuted A: both methods recover the same permutation (a [16] net has no dead unit),
    // so the aligned curve is evaluated once and shared; the plain one differs.
    curves.calls = 0;
    const permuted = await measurePair(root, 'curves', twin('shuffled'), measure);
    expect(curves.calls).toBe(2 * splits);
    const [w, a] = [permuted.aligned[0]?.perms, permuted.aligned[1]?.perms];
    expect(w && a && [...(w[0] ?? [])]).toEqual([...(a?.[0] ?? [])]);
    const weight = values(permuted.rows, METRICS.alignedErrorBarrier, 'weight');
    expect(values(permuted.rows, METRICS.alignedErrorBarrier, 'activation')).toEqual(weight);
    expect(weight.map((r) => r[2])).toEqual(new Array(2 * splits).fill(0));
    expect(
      Math.max(...values(permuted.rows, METRICS.lossBarrier).map((r) => r[2] as number)),
    ).toBeGreaterThan(0);
  }, 60_000);
});
