import { describe, expect, test } from 'vitest';
import { loadDataset } from '../../src/data/load.js';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import type { OptimizerSpec } from '../../src/engine/types.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import { defaultInit, type ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';
import { type StepRecord, trainUntil } from '../../src/train/loop.js';

const data = loadDataset({ name: 'moons', n: 600, noise: 0.2, testFraction: 0.25, standardize: true }, 0);
const spec: ModelSpec = { kind: 'mlp', hidden: [32, 32], activation: 'relu' };
const model = modelGraphSpec(spec, data.inputDim, data.outputDim, 'cross-entropy');

async function run(
  seed: number,
  dataSeed: number,
  stepsPerCall = 1,
  optimizer: OptimizerSpec = { kind: 'adam', lr: 0.01 },
) {
  const engine = await createOrtEngine(model, { optimizer, threads: 1 });
  const params = initParams(model.layout, spec.init ?? defaultInit(spec), Rng.fromSeed(seed).stream('init'));
  const state = { params, opt: engine.initOptimizerState() };
  const records: StepRecord[] = [];
  await trainUntil(state, 200, {
    engine,
    train: data.train,
    batchSize: 32,
    dataSeed,
    lr: (step) => optimizer.lr * Math.min(1, (step + 1) / 20),
    stepsPerCall,
    onStep: (r) => {
      records.push(r);
    },
  });
  const test = await engine.evaluate(state.params, data.test.x, data.test.y, data.test.n);
  await engine.dispose();
  return { state, records, test };
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('training loop', () => {
  test('two trainings of the same spec give bit-identical weights; another data seed does not', async () => {
    const a = await run(1, 2);
    const b = await run(1, 2);
    expect(bytes(a.state.params).equals(bytes(b.state.params))).toBe(true);
    expect(a.records.map((r) => r.batchHash)).toEqual(b.records.map((r) => r.batchHash));
    const c = await run(1, 3);
    expect(bytes(a.state.params).equals(bytes(c.state.params))).toBe(false);
    expect(c.records[0]?.batchHash).not.toBe(a.records[0]?.batchHash);
  });

  test('learns the moons: test accuracy above 95% after 200 Adam steps', async () => {
    const { test: ev, records } = await run(1, 2);
    expect(ev.correct / ev.count).toBeGreaterThan(0.95);
    expect(records).toHaveLength(200);
    // 450 training examples / batch 32 = 14 steps per epoch (the partial batch is dropped).
    expect(data.train.n).toBe(450);
    expect(records[14]?.epoch).toBe(1);
    expect(records[13]?.epoch).toBe(0);
  });

  test('several steps per engine call (ONNX Loop) give the same bits as one step per call', async () => {
    const one = await run(4, 5, 1, { kind: 'sgd', lr: 0.1, momentum: 0.9 });
    const many = await run(4, 5, 16, { kind: 'sgd', lr: 0.1, momentum: 0.9 });
    expect(bytes(one.state.params).equals(bytes(many.state.params))).toBe(true);
    expect(many.records.map((r) => r.loss)).toEqual(one.records.map((r) => r.loss));
  });
});
