/**
 * measurePair on trained conv nets: a channel permutation of a trained ResNet-8 with BatchNorm
 * (every residual stream and block, running statistics included) is recovered exactly through the
 * study path by weight matching: aligned L2 = 0 and aligned barriers = 0 (issue 14, "Done when").
 */
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { permutationSpecFor } from '../../src/measure/net-permutation-spec.js';
import { METRICS, type TwinInfo } from '../../src/results/metrics.js';
import { Rng } from '../../src/rng/rng.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { exportAlignedRun } from '../../src/study/aligned.js';
import { measurePair } from '../../src/study/measure-pair.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { runContextParts, trainRun } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-measure-pair-net-');
const base = {
  name: 'resnet8',
  seed: 0,
  data: { name: 'mnist', nTrain: 128, nTest: 64 },
  model: { kind: 'resnet', depth: 8 },
  optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
  batchSize: 32,
  epochs: 1,
  checkpoints: { every: 4 },
};

describe('measurePair on a ResNet', () => {
  test('weight matching recovers a channel-permuted copy of a trained ResNet-8 exactly', async () => {
    const { measure } = parseStudySpec({
      name: 'permuted',
      base,
      perturbations: [{ kind: 'init' }],
      measure: {
        distance: { at: 'end' },
        barrier: { alphas: 3, examples: 64 },
        align: { methods: ['weight', 'activation'], examples: 64 },
      },
    });
    const spec = parseRunSpec(base);
    const dirA = join(root, 'a');
    await trainRun(spec, dirA);
    const perm = permutationSpecFor(runContextParts(spec).model);
    expect(perm.perms).toHaveLength(6);
    const rng = Rng.fromSeed(5).stream('perms');
    const perms = perm.perms.map((g) => Int32Array.from(rng.permutation(g.size)));
    await exportAlignedRun(dirA, dirA, perms, 'shuffle', join(root, 'b'));
    const twin: TwinInfo = { runA: 'a', runB: 'b', kind: 'init', sigma: 0, forkStep: 0, repeat: 0, seed: 0 };
    const { rows, aligned } = await measurePair(root, 'permuted', twin, measure);
    const at = (metric: string, extra: (o: Record<string, unknown>) => boolean = () => true) =>
      rows.filter((r) => r.metric === metric && r.layer === null && extra(r.options)).map((r) => r.value);
    expect(Math.min(...at(METRICS.l2))).toBeGreaterThan(1);
    const weight = (o: Record<string, unknown>) => o.method === 'weight';
    expect(at(METRICS.alignedL2, weight)).toEqual([0]);
    const barriers = [...at(METRICS.alignedLossBarrier, weight), ...at(METRICS.alignedErrorBarrier, weight)];
    expect(barriers).toHaveLength(8); // 2 conventions × 2 splits × loss/error
    for (const b of barriers) expect(Math.abs(b)).toBeLessThan(1e-12);
    // With the BatchNorm statistics recomputed at every point of the aligned path.
    const tagged = rows.filter((r) => r.metric === METRICS.alignedLossBarrier && weight(r.options));
    expect(tagged.every((r) => r.options.bn === 'recompute')).toBe(true);
    // Activation matching (block outputs; inner groups by weight matching) on 64 digits.
    expect(at(METRICS.alignedL2, (o) => o.method === 'activation')[0]).toBeLessThan(
      Math.min(...at(METRICS.l2)),
    );
    expect(aligned.map((a) => [a.method, a.perms.length])).toEqual([
      ['weight', 6],
      ['activation', 6],
    ]);
  }, 120_000);
});
