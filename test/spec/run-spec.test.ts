import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRunSpec, parseRunSpec, planRun, SpecError } from '../../src/spec/index.js';
import { scratchDir } from '../helpers/scratch.js';

const dir = scratchDir('run-spec-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function valid(): Record<string, unknown> {
  return {
    name: 'moons-gd',
    seed: 0,
    data: { name: 'moons', n: 2000, noise: 0.2, testFraction: 0.3, standardize: true },
    model: { kind: 'mlp', hidden: [64, 64], activation: 'relu', init: { kind: 'normal', std: 0.1 } },
    loss: 'cross-entropy',
    optimizer: { kind: 'adam', lr: 0.001 },
    batchSize: 32,
    epochs: 200,
    checkpoints: { every: 100 },
    threads: 2,
  };
}

/** The error message of parsing `spec` as moons.json. */
function errorOf(spec: unknown): string {
  try {
    parseRunSpec(spec, 'moons.json');
  } catch (err) {
    expect(err).toBeInstanceOf(SpecError);
    return (err as Error).message;
  }
  throw new Error('expected a SpecError');
}

function writeSpec(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

describe('parseRunSpec', () => {
  it('parses the example and fills every default', () => {
    expect(parseRunSpec(valid())).toEqual({
      name: 'moons-gd',
      seed: 0,
      dataSeed: 0,
      data: { name: 'moons', n: 2000, noise: 0.2, testFraction: 0.3, standardize: true },
      model: {
        kind: 'mlp',
        hidden: [64, 64],
        activation: 'relu',
        bias: true,
        init: { kind: 'normal', std: 0.1 },
      },
      loss: 'cross-entropy',
      optimizer: { kind: 'adam', lr: 0.001, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 },
      batchSize: 32,
      epochs: 200,
      checkpoints: { every: 100 },
      threads: 2,
      engine: 'ort',
    });
  });

  it('fills model, optimizer, loss, threads and engine defaults', () => {
    const spec = parseRunSpec({
      name: 'x',
      seed: 3,
      dataSeed: 7,
      data: { name: 'mnist' },
      model: { kind: 'mlp', hidden: [8], activation: 'tanh' },
      optimizer: { kind: 'sgd', lr: 0.1 },
      batchSize: 'full',
      steps: 50,
      checkpoints: { schedule: 'mao' },
    });
    expect(spec.dataSeed).toBe(7);
    expect(spec.model).toEqual({
      kind: 'mlp',
      hidden: [8],
      activation: 'tanh',
      bias: true,
      init: { kind: 'glorot' },
    });
    expect(spec.optimizer).toEqual({
      kind: 'sgd',
      lr: 0.1,
      momentum: 0,
      dampening: 0,
      nesterov: false,
      weightDecay: 0,
    });
    expect(spec.loss).toBe('cross-entropy');
    expect(spec.threads).toBe(1);
    expect(spec.engine).toBe('ort');
    expect(spec.steps).toBe(50);
    expect(spec.epochs).toBeUndefined();
    expect(spec.lrSchedule).toBeUndefined();
  });

  it('defaults relu MLPs to He init, AdamW to weight decay 0.01, regression data to mse', () => {
    const spec = parseRunSpec({
      ...valid(),
      data: { name: 'linear-regression', n: 100, dim: 5, decay: 1.5 },
      model: { kind: 'mlp', hidden: [4] },
      loss: undefined,
      optimizer: { kind: 'adamw', lr: 0.01 },
    });
    expect(spec.model).toMatchObject({ activation: 'relu', init: { kind: 'he' } });
    expect(spec.optimizer).toMatchObject({ kind: 'adamw', weightDecay: 0.01, beta1: 0.9 });
    expect(spec.loss).toBe('mse');
  });

  it('accepts every dataset and model kind', () => {
    const datas = [
      { name: 'moons', n: 10 },
      { name: 'mnist', nTest: 100, nTrain: 500, standardize: false },
      { name: 'fashion-mnist', dir: '/tmp/fm', nTrain: 1000, nTest: 100 },
      { name: 'arrow', path: 'a.arrow', testPath: 'b.arrow', features: 'f', label: 'y', classes: 3 },
      { name: 'linear-regression', n: 100, dim: 5, decay: 1, noise: 0.1, testFraction: 0.2 },
    ];
    for (const data of datas) expect(parseRunSpec({ ...valid(), data }).data).toEqual(data);
    expect(parseRunSpec({ ...valid(), model: { kind: 'deep-linear-chain', depth: 3 } }).model).toEqual({
      kind: 'deep-linear-chain',
      depth: 3,
      init: { kind: 'glorot' },
    });
    expect(parseRunSpec({ ...valid(), model: { kind: 'linear', bias: false } }).model).toEqual({
      kind: 'linear',
      bias: false,
      init: { kind: 'glorot' },
    });
  });

  it('rejects an unknown field at the top level and nested', () => {
    const { optimizer, ...rest } = valid();
    expect(errorOf({ ...rest, optimiser: optimizer })).toContain(
      "moons.json: unknown field 'optimiser' at top level",
    );
    expect(errorOf({ ...valid(), optimizer: { kind: 'adam', lr: 0.1, betas: [0.9, 0.99] } })).toContain(
      "moons.json: optimizer: unknown field 'betas'",
    );
    expect(errorOf({ ...valid(), data: { name: 'moons', n: 10, nosie: 0.1 } })).toContain(
      "moons.json: data: unknown field 'nosie'",
    );
  });

  it('rejects wrong types', () => {
    expect(errorOf({ ...valid(), batchSize: 'big' })).toBe(
      'moons.json: batchSize: expected a positive integer or "full" (got "big")',
    );
    expect(errorOf({ ...valid(), seed: 1.5 })).toBe('moons.json: seed: expected an integer (got 1.5)');
    expect(errorOf({ ...valid(), threads: 65 })).toBe('moons.json: threads: must be <= 64 (got 65)');
    expect(errorOf({ ...valid(), engine: 'torch' })).toBe(
      "moons.json: engine: expected one of 'ort', 'tfjs' (got \"torch\")",
    );
    expect(errorOf({ ...valid(), data: { name: 'moonz', n: 10 } })).toContain(
      "moons.json: data.name: expected one of 'moons', 'mnist', 'fashion-mnist', 'arrow', 'linear-regression' (got \"moonz\")",
    );
  });

  it('rejects a non-positive learning rate and out-of-range hyper-parameters', () => {
    expect(errorOf({ ...valid(), optimizer: { kind: 'adam', lr: -0.1 } })).toBe(
      'moons.json: optimizer.lr: must be > 0 (got -0.1)',
    );
    expect(errorOf({ ...valid(), optimizer: { kind: 'sgd', lr: 0.1, momentum: 1 } })).toBe(
      'moons.json: optimizer.momentum: must be < 1 (got 1)',
    );
    expect(errorOf({ ...valid(), optimizer: { kind: 'adam', lr: 0.1, beta2: -0.5 } })).toBe(
      'moons.json: optimizer.beta2: must be >= 0 (got -0.5)',
    );
    expect(errorOf({ ...valid(), optimizer: { kind: 'sgd', lr: 0.1, nesterov: true } })).toContain(
      'optimizer.nesterov: requires momentum > 0 and dampening 0',
    );
  });

  it('rejects a hidden width of 0, naming model.hidden[i]', () => {
    expect(errorOf({ ...valid(), model: { kind: 'mlp', hidden: [64, 0] } })).toBe(
      'moons.json: model.hidden[1]: must be > 0 (got 0)',
    );
  });

  it('requires exactly one of epochs and steps', () => {
    expect(errorOf({ ...valid(), steps: 100 })).toBe(
      'moons.json: epochs, steps: give exactly one of epochs or steps, not both',
    );
    const { epochs: _, ...noLength } = valid();
    expect(errorOf(noLength)).toBe('moons.json: epochs: missing (give exactly one of epochs or steps)');
  });

  it('requires exactly one checkpoint rule', () => {
    expect(errorOf({ ...valid(), checkpoints: { every: 10, log: 5 } })).toBe(
      'moons.json: checkpoints: expected exactly one of every, steps, log or schedule (got every and log)',
    );
    expect(errorOf({ ...valid(), checkpoints: { schedule: 'linear' } })).toBe(
      'moons.json: checkpoints.schedule: expected \'mao\' (got "linear")',
    );
    const { epochs: _, ...rest } = valid();
    expect(errorOf({ ...rest, steps: 10, checkpoints: { steps: [0, 5, 20] } })).toBe(
      'moons.json: checkpoints.steps[2]: step 20 is beyond the last step (steps = 10)',
    );
  });

  it('rejects a bad learning-rate expression naming lrSchedule', () => {
    expect(errorOf({ ...valid(), lrSchedule: '0.1 * min(1, stp / 100)' })).toBe(
      'moons.json: lrSchedule: unknown variable \'stp\' in "0.1 * min(1, stp / 100)" (expected step, epoch or lr)',
    );
    expect(errorOf({ ...valid(), lrSchedule: '0.1 * (' })).toMatch(
      /^moons\.json: lrSchedule: cannot parse "0\.1 \* \("/,
    );
  });

  it('rejects unsafe names and reports every problem, one line each', () => {
    expect(errorOf({ ...valid(), name: '../etc' })).toContain(
      'moons.json: name: must be usable as a folder name',
    );
    const lines = errorOf({ ...valid(), seed: -1, batchSize: 0, optimizer: { kind: 'adam', lr: 0 } }).split(
      '\n',
    );
    expect(lines).toEqual([
      'moons.json: seed: must be >= 0 (got -1)',
      'moons.json: optimizer.lr: must be > 0 (got 0)',
      'moons.json: batchSize: must be > 0 (got 0)',
    ]);
    expect(errorOf([1])).toBe('moons.json: expected a JSON object at top level (got an array)');
  });
});

describe('loadRunSpec', () => {
  it('loads a file', () => {
    expect(loadRunSpec(writeSpec('ok.json', valid())).name).toBe('moons-gd');
  });

  it('names a missing file', () => {
    const path = join(dir, 'nope.json');
    expect(() => loadRunSpec(path)).toThrow(`${path}: file not found`);
  });

  it('names the file and position of invalid JSON', () => {
    const path = writeSpec('bad.json', '{\n  "name": "x",\n  "seed": 0,\n}');
    expect(() => loadRunSpec(path)).toThrow(
      new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: invalid JSON: .*\\(line 4, column 1\\)`),
    );
  });

  it('prefixes spec problems with the file path', () => {
    const path = writeSpec('moons.json', { ...valid(), optimizer: { kind: 'adam', lr: -0.1 } });
    expect(() => loadRunSpec(path)).toThrow(`${path}: optimizer.lr: must be > 0 (got -0.1)`);
  });

  it('resolves arrow paths relative to the spec file and checks they exist', () => {
    writeFileSync(join(dir, 'train.arrow'), '');
    const data = { name: 'arrow', path: 'train.arrow', testPath: 'missing.arrow', features: 'x', label: 'y' };
    const path = writeSpec('arrow.json', { ...valid(), data });
    expect(() => loadRunSpec(path)).toThrow(
      `${path}: data.testPath: file not found: missing.arrow (resolved to ${join(dir, 'missing.arrow')})`,
    );
    const { testPath: _, ...trainOnly } = data;
    const spec = loadRunSpec(writeSpec('arrow2.json', { ...valid(), data: trainOnly }));
    expect(spec.data).toEqual({ ...trainOnly, path: join(dir, 'train.arrow') });
  });
});

describe('planRun', () => {
  it('derives steps, checkpoints, evaluations and the lr schedule', () => {
    const spec = parseRunSpec({
      ...valid(),
      epochs: 3,
      batchSize: 30,
      checkpoints: { every: 4 },
      evalEvery: 5,
      lrSchedule: 'lr * min(1, (step + 1) / 10)',
    });
    const plan = planRun(spec, 100);
    expect(plan.stepsPerEpoch).toBe(3);
    expect(plan.totalSteps).toBe(9);
    expect(plan.checkpoints).toEqual([0, 4, 8, 9]);
    expect(plan.evals).toEqual([0, 5, 9]);
    expect(plan.lr(0, 0)).toBeCloseTo(0.0001, 12);
    expect(plan.lr(20, 6)).toBe(0.001);
    expect(planRun({ ...spec, evalEvery: undefined }, 100).evals).toEqual([0, 4, 8, 9]);
  });
});
