/**
 * measurePair end to end on trained runs: a hidden-unit permutation of a trained network is
 * recovered exactly through the study path by weight matching (aligned L2 = 0 and aligned barriers
 * = 0) for MLPs of several depths, while the unaligned pair is far apart.
 */
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { METRICS, type TwinInfo } from '../../src/results/metrics.js';
import { Rng } from '../../src/rng/rng.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { exportAlignedRun } from '../../src/study/aligned.js';
import { measurePair } from '../../src/study/measure-pair.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { trainRun } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-measure-pair-');
const { measure } = parseStudySpec({
  name: 'permuted',
  base: tinyBase,
  perturbations: [{ kind: 'init' }],
  measure: {
    distance: { at: 'end' },
    barrier: { alphas: 5 },
    align: { methods: ['weight', 'activation'], examples: 200 },
  },
});

describe('measurePair', () => {
  test.each([[[16]], [[16, 16]], [[12, 8, 10]]])(
    'recovers a permuted copy of a trained network exactly (hidden %j)',
    async (hidden) => {
      const name = `mlp-${hidden.join('-')}`;
      const spec = parseRunSpec({ ...tinyBase, name, model: { kind: 'mlp', hidden } });
      const dirA = join(root, name, 'a');
      await trainRun(spec, dirA);
      const rng = Rng.fromSeed(11).stream('perms');
      const perms = hidden.map((w) => Int32Array.from(rng.permutation(w)));
      // A permuted copy of A written as a run: the same network function, other unit order.
      await exportAlignedRun(dirA, dirA, perms, 'shuffle', join(root, name, 'b'));
      const twin: TwinInfo = {
        runA: `${name}/a`,
        runB: `${name}/b`,
        kind: 'init',
        sigma: 0,
        forkStep: 0,
        repeat: 0,
        seed: 0,
      };
      const { rows, aligned } = await measurePair(root, 'permuted', twin, measure);
      const at = (metric: string, extra: (o: Record<string, unknown>) => boolean = () => true) =>
        rows.filter((r) => r.metric === metric && r.layer === null && extra(r.options)).map((r) => r.value);
      expect(Math.min(...at(METRICS.l2))).toBeGreaterThan(1);
      // Weight matching recovers the permutation exactly, so the aligned path is a single point.
      const weight = (o: Record<string, unknown>) => o.method === 'weight';
      expect(at(METRICS.alignedL2, weight)).toEqual([0]);
      const barriers = [
        ...at(METRICS.alignedLossBarrier, weight),
        ...at(METRICS.alignedErrorBarrier, weight),
      ];
      expect(barriers).toEqual(new Array(8).fill(0)); // 2 conventions × 2 splits × loss/error
      // Activation matching cannot place units that are dead (constant) on every matching example:
      // they correlate 0 with everything. A trained [16] net here has none and is recovered
      // exactly; deeper ones have dead units in later layers, which stay unmatched.
      const activation = at(METRICS.alignedL2, (o) => o.method === 'activation');
      if (hidden.length === 1) expect(activation).toEqual([0]);
      else expect(activation[0]).toBeLessThan(Math.min(...at(METRICS.l2)));
      expect(aligned.map((a) => a.method)).toEqual(['weight', 'activation']);
      // Provenance: the aligned barriers' examples are the barrier's evaluation set (the whole
      // split here), not the 200 examples activation matching used (those are in aligned_l2).
      const optionsOf = (metric: string) =>
        rows.filter((r) => r.metric === metric && r.options.method === 'activation').map((r) => r.options);
      expect(optionsOf(METRICS.alignedL2).map((o) => o.examples)).toEqual([200]);
      const plain = rows.filter((r) => r.metric === METRICS.lossBarrier);
      const aligned_ = rows.filter(
        (r) => r.metric === METRICS.alignedLossBarrier && r.options.method === 'activation',
      );
      expect(aligned_.map((r) => [r.split, r.options.examples])).toEqual(
        plain.map((r) => [r.split, r.options.examples]),
      );
      expect(aligned_.every((r) => r.options.examples !== 200)).toBe(true);
    },
    60_000,
  );
});
