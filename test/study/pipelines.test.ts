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

  test('hyper-ribbon-mnist: 48 runs in one embedding', () => {
    const sweep = loadSweepSpec(join(dir, 'hyper-ribbon-mnist.json'));
    expect(sweep.points).toHaveLength(48);
    expect(sweep.groups).toHaveLength(1);
  });
});
