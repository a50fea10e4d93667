/**
 * The shipped pipelines (pipelines/*.json) are valid specs: every study, sweep and run spec parses,
 * and the sweeps expand to the grids their docs describe (docs/hyper-ribbon.md).
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadRunSpec } from '../../src/spec/run-spec.js';
import { readSpecJson } from '../../src/spec/spec-file.js';
import { loadStudySpec } from '../../src/study/spec.js';
import { isSweepJson, loadSweepSpec } from '../../src/study/sweep-spec.js';
import { ROOT } from '../helpers/study.js';

const dir = join(ROOT, 'pipelines');
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('pipelines/', () => {
  test.each(files)('%s parses', (file) => {
    const path = join(dir, file);
    const json = readSpecJson(path) as Record<string, unknown>;
    if (isSweepJson(json)) expect(loadSweepSpec(path).points.length).toBeGreaterThan(1);
    else if ('perturbations' in json) expect(loadStudySpec(path).perturbations.length).toBeGreaterThan(0);
    else expect(loadRunSpec(path).name).toBe(json.name);
  });

  test('sloppy-linear: 4 decays × 3 init scales × 2 step counts × 16 seeds, one group per (a, σ₀, steps)', () => {
    const sweep = loadSweepSpec(join(dir, 'sloppy-linear.json'));
    expect(sweep.points).toHaveLength(384);
    expect(sweep.groups).toHaveLength(24);
    for (const g of sweep.groups) expect(g.points).toHaveLength(16);
    expect(sweep.points.every((p) => p.spec.loss === 'mse' && p.spec.batchSize === 'full')).toBe(true);
  });

  test('init-scale-moons: 4 init scales × 5 seeds, zero biases, diagnostics every epoch, PCA', () => {
    const sweep = loadSweepSpec(join(dir, 'init-scale-moons.json'));
    expect(sweep.points).toHaveLength(20);
    expect(sweep.embed.method).toBe('pca');
    expect(
      new Set(sweep.points.map((p) => p.spec.model.init?.kind === 'normal' && p.spec.model.init.std)),
    ).toEqual(new Set([0.01, 0.1, 0.5, 1]));
    for (const p of sweep.points) {
      expect(p.spec.model.init).toMatchObject({ kind: 'normal', biasStd: 0 });
      expect(p.spec.diagnostics).toEqual({ every: 'epoch' });
      expect(p.spec.optimizer).toMatchObject({ kind: 'adam', lr: 0.001 });
    }
  });

  test('edge-of-stability: GD at 3 η, chains of 3 depths × 3 decays × 2 η, SGD at 2 batch sizes', () => {
    const sweep = loadSweepSpec(join(dir, 'edge-of-stability.json'));
    expect(sweep.points).toHaveLength(3 + 18 + 2);
    expect(sweep.groups.map((g) => g.points.length)).toEqual([5, 6, 6, 6]);
    for (const p of sweep.points) {
      expect(p.spec.loss).toBe('mse');
      expect(p.spec.sharpness).toBeDefined();
    }
    const chains = sweep.points.filter((p) => p.spec.model.kind === 'deep-linear-chain');
    expect(chains.every((p) => p.spec.batchSize === 'full' && p.spec.data.name === 'linear-regression')).toBe(
      true,
    );
    expect(sweep.points.filter((p) => p.spec.batchSize !== 'full').map((p) => p.spec.batchSize)).toEqual([
      32, 128,
    ]);
  });

  test('hyper-ribbon-mnist: 48 runs in one embedding', () => {
    const sweep = loadSweepSpec(join(dir, 'hyper-ribbon-mnist.json'));
    expect(sweep.points).toHaveLength(48);
    expect(sweep.groups).toHaveLength(1);
  });
});
