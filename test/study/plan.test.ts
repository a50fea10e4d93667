import { describe, expect, test } from 'vitest';
import { derivedSeed, planStudy, resolveForkStep, runNames, sigmaLabel } from '../../src/study/plan.js';
import { parseStudySpec } from '../../src/study/spec.js';
import { tinyBase } from '../helpers/study.js';

const base = tinyBase;
// 300 training examples / batch 32 → 9 steps per epoch, 45 steps in all.
const N_TRAIN = 300;

const grid = parseStudySpec({
  name: 'grid',
  base,
  seeds: [0, 5],
  perturbations: [
    { kind: 'gaussian', sigmas: [0, 1e-4, 0.1], forkSteps: [0, { epochs: 2 }], repeats: 2 },
    { kind: 'seed', forkSteps: [7], repeats: 2 },
    { kind: 'init', repeats: 2 },
  ],
  lockstep: false,
});

describe('planStudy', () => {
  const plan = planStudy(grid, N_TRAIN);

  test('step plan: epochs → steps, every fork step is a parent checkpoint', () => {
    expect(plan.stepsPerEpoch).toBe(9);
    expect(plan.totalSteps).toBe(45);
    expect(resolveForkStep({ epochs: 2 }, 9)).toBe(18);
    expect(resolveForkStep({ epochs: 0.5 }, 9)).toBe(5); // round(4.5)
    expect(resolveForkStep({ epochs: 1.4 }, 9)).toBe(13); // round(12.6)
    expect(resolveForkStep(7, 9)).toBe(7);
    expect(plan.checkpoints).toEqual([0, 7, 10, 18, 20, 30, 40, 45]);
    for (const p of plan.parents) {
      expect(p.spec.checkpoints).toEqual({ steps: [0, 7, 10, 18, 20, 30, 40, 45] });
    }
  });

  test('one parent per seed, with that seed', () => {
    expect(plan.parents.map((p) => p.name)).toEqual(['s0/parent', 's5/parent']);
    expect(plan.parents.map((p) => [p.spec.seed, p.spec.dataSeed, p.spec.name])).toEqual([
      [0, 0, 'grid-s0'],
      [5, 5, 'grid-s5'],
    ]);
    expect(plan.parents.every((p) => p.fork === undefined)).toBe(true);
    expect(plan.parents.every((p) => p.spec.threads === 1)).toBe(true);
  });

  test('fork groups per (seed, fork step), reference twin first', () => {
    expect(plan.groups.map((g) => [g.parent, g.forkStep, g.members.length])).toEqual([
      ['s0/parent', 0, 7],
      ['s0/parent', 7, 1],
      ['s0/parent', 18, 7],
      ['s5/parent', 0, 7],
      ['s5/parent', 7, 1],
      ['s5/parent', 18, 7],
    ]);
    const g = plan.groups[2];
    expect(g?.members.map((m) => m.name)).toEqual([
      's0/t18/a',
      's0/t18/gaussian-0-r0',
      's0/t18/gaussian-1e-4-r0',
      's0/t18/gaussian-1e-1-r0',
      's0/t18/gaussian-0-r1',
      's0/t18/gaussian-1e-4-r1',
      's0/t18/gaussian-1e-1-r1',
    ]);
    expect(g?.members[0]?.fork).toEqual({ parent: 's0/parent', step: 18 });
    for (const group of plan.groups) {
      for (const m of group.members) {
        expect(m.fork?.parent).toBe(group.parent);
        expect(m.fork?.step).toBe(group.forkStep);
        // Every member of a group trains on the parent's spec (the same data stream).
        expect(m.spec).toBe(plan.parents.find((p) => p.name === group.parent)?.spec);
      }
    }
    // The seed twins' fork step has a reference twin but no weight twins.
    expect(plan.groups[1]?.members.map((m) => m.name)).toEqual(['s0/t7/a']);
  });

  test('perturbation seeds: shared across σ and t within a repeat, different across repeats', () => {
    const seedOf = (name: string) =>
      plan.groups.flatMap((g) => g.members).find((m) => m.name === name)?.fork?.perturbation?.seed;
    const r0 = derivedSeed(0, 'perturb', 0);
    const r1 = derivedSeed(0, 'perturb', 1);
    expect(r0).not.toBe(r1);
    for (const t of [0, 18]) {
      for (const s of ['0', '1e-4', '1e-1']) {
        expect(seedOf(`s0/t${t}/gaussian-${s}-r0`)).toBe(r0);
        expect(seedOf(`s0/t${t}/gaussian-${s}-r1`)).toBe(r1);
      }
    }
    expect(seedOf('s5/t0/gaussian-1e-4-r0')).toBe(derivedSeed(5, 'perturb', 0));
    expect(seedOf('s5/t0/gaussian-1e-4-r0')).not.toBe(r0);
    const p = plan.groups[0]?.members[2]?.fork?.perturbation;
    expect(p).toEqual({ kind: 'gaussian', sigma: 1e-4, seed: r0 });
    expect(plan.groups[0]?.members[0]?.fork?.perturbation).toBeUndefined();
  });

  test('seed twins change the batch order only', () => {
    expect(plan.seedTwins.map((r) => r.name)).toEqual([
      's0/t7/seed-r0',
      's0/t7/seed-r1',
      's5/t7/seed-r0',
      's5/t7/seed-r1',
    ]);
    const parent0 = plan.parents[0]?.spec;
    for (const [i, r] of plan.seedTwins.slice(0, 2).entries()) {
      expect(r.fork).toEqual({ parent: 's0/parent', step: 7 });
      expect(r.spec.orderSeed).toBe(derivedSeed(0, 'order-seed', i));
      expect(r.spec.dataSeed).toBe(parent0?.dataSeed);
      expect(r.spec.seed).toBe(parent0?.seed);
      const { orderSeed: _o, ...rest } = r.spec;
      expect(rest).toEqual(parent0);
    }
    expect(plan.seedTwins[0]?.spec.orderSeed).not.toBe(plan.seedTwins[1]?.spec.orderSeed);
  });

  test('init baselines: new init seed, compared with the parent', () => {
    expect(plan.baselines.map((b) => [b.name, b.spec.seed, b.spec.dataSeed, b.spec.name])).toEqual([
      ['s0/init-r0', derivedSeed(0, 'init-seed', 0), 0, 'grid-s0-init-r0'],
      ['s0/init-r1', derivedSeed(0, 'init-seed', 1), 0, 'grid-s0-init-r1'],
      ['s5/init-r0', derivedSeed(5, 'init-seed', 0), 5, 'grid-s5-init-r0'],
      ['s5/init-r1', derivedSeed(5, 'init-seed', 1), 5, 'grid-s5-init-r1'],
    ]);
    const init = plan.twins.filter((t) => t.kind === 'init');
    expect(init).toEqual([
      { runA: 's0/parent', runB: 's0/init-r0', kind: 'init', sigma: 0, forkStep: 0, repeat: 0, seed: 0 },
      { runA: 's0/parent', runB: 's0/init-r1', kind: 'init', sigma: 0, forkStep: 0, repeat: 1, seed: 0 },
      { runA: 's5/parent', runB: 's5/init-r0', kind: 'init', sigma: 0, forkStep: 0, repeat: 0, seed: 5 },
      { runA: 's5/parent', runB: 's5/init-r1', kind: 'init', sigma: 0, forkStep: 0, repeat: 1, seed: 5 },
    ]);
  });

  test('compared pairs: counts and references', () => {
    // Per seed: 3 σ × 2 t × 2 repeats + 2 seed twins + 2 init baselines.
    expect(plan.twins).toHaveLength(2 * (12 + 2 + 2));
    const byKind = (k: string) => plan.twins.filter((t) => t.kind === k).length;
    expect([byKind('gaussian'), byKind('seed'), byKind('init')]).toEqual([24, 4, 4]);
    expect(plan.twins.find((t) => t.runB === 's5/t18/gaussian-1e-1-r1')).toEqual({
      runA: 's5/t18/a',
      runB: 's5/t18/gaussian-1e-1-r1',
      kind: 'gaussian',
      sigma: 0.1,
      forkStep: 18,
      repeat: 1,
      seed: 5,
    });
    expect(plan.twins.find((t) => t.runB === 's0/t7/seed-r1')?.runA).toBe('s0/t7/a');
    // Names are unique.
    const all = [
      ...plan.parents,
      ...plan.baselines,
      ...plan.seedTwins,
      ...plan.groups.flatMap((g) => g.members),
    ];
    expect(new Set(all.map((r) => r.name)).size).toBe(all.length);
    expect(all).toHaveLength(2 + 4 + 4 + 2 * (7 + 1 + 7));
  });

  test('onset fork steps add groups with the onset perturbations only', () => {
    const s = parseStudySpec({
      name: 'on',
      base,
      perturbations: [{ kind: 'gaussian', sigmas: [0], forkSteps: [0] }],
      onset: { kind: 'gaussian', sigmas: [1e-2] },
    });
    const p = planStudy(s, N_TRAIN, [10, 30]);
    expect(p.groups.map((g) => [g.forkStep, g.members.map((m) => m.name)])).toEqual([
      [0, ['s0/t0/a', 's0/t0/gaussian-0-r0']],
      [10, ['s0/t10/a', 's0/t10/gaussian-1e-2-r0']],
      [30, ['s0/t30/a', 's0/t30/gaussian-1e-2-r0']],
    ]);
    // The parents do not change.
    expect(p.parents).toEqual(planStudy(s, N_TRAIN).parents);
    expect(() => planStudy(s, N_TRAIN, [11])).toThrow('extra fork step 11 is not a parent checkpoint');
  });

  test('a fork step at or after the last step is an error naming it', () => {
    const at = (forkSteps: unknown[]) =>
      parseStudySpec({ name: 'late', base, perturbations: [{ kind: 'gaussian', sigmas: [0], forkSteps }] });
    expect(() => planStudy(at([45]), N_TRAIN)).toThrow('fork step 45 is not before the last step 45');
    expect(() => planStudy(at([0, 100]), N_TRAIN)).toThrow('fork step 100');
    expect(() => planStudy(at([{ epochs: 5 }]), N_TRAIN)).toThrow('fork step 45');
    expect(planStudy(at([44]), N_TRAIN).groups.map((g) => g.forkStep)).toEqual([44]);
  });
});

describe('names and seeds', () => {
  test('sigmaLabel', () => {
    expect(sigmaLabel(0)).toBe('0');
    expect(sigmaLabel(1e-8)).toBe('1e-8');
    expect(sigmaLabel(0.01)).toBe('1e-2');
    expect(sigmaLabel(0.1)).toBe('1e-1');
    expect(sigmaLabel(2.5e-3)).toBe('2.5e-3');
    expect(sigmaLabel(1)).toBe('1e0');
    expect(sigmaLabel(10)).toBe('1e1');
  });

  test('runNames', () => {
    expect(runNames.parent(2)).toBe('s2/parent');
    expect(runNames.reference(2, 10)).toBe('s2/t10/a');
    expect(runNames.weightTwin(2, 10, 'batch', 1e-6, 3)).toBe('s2/t10/batch-1e-6-r3');
    expect(runNames.seedTwin(0, 0, 1)).toBe('s0/t0/seed-r1');
    expect(runNames.baseline(1, 0)).toBe('s1/init-r0');
  });

  test('derivedSeed is stable, 31-bit, and depends on every input', () => {
    const a = derivedSeed(0, 'perturb', 0);
    expect(derivedSeed(0, 'perturb', 0)).toBe(a);
    const others = [
      derivedSeed(1, 'perturb', 0),
      derivedSeed(0, 'perturb', 1),
      derivedSeed(0, 'init-seed', 0),
    ];
    for (const s of [a, ...others]) {
      expect(Number.isInteger(s)).toBe(true);
      expect(s).toBeGreaterThanOrEqual(0);
      expect(s).toBeLessThan(2 ** 31);
    }
    expect(new Set([a, ...others]).size).toBe(4);
  });
});
