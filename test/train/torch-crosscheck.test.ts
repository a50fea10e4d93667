/**
 * Cross-check against PyTorch: 50 full-batch steps of SGD and of Adam on two moons with the ORT
 * engine reproduce torch.optim.SGD / Adam in float32 (fixtures/reference/torch_trajectory.py) from the same
 * initial weights and data. Skipped when no Python can import torch.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { execFileText, findPython } from '../../src/bench/python.js';
import { loadDataset } from '../../src/data/load.js';
import { createOrtEngine } from '../../src/engine/ort/engine.js';
import type { OptimizerSpec } from '../../src/engine/types.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';
import { fixturePath } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const STEPS = 50;
const SCRIPT = fixturePath('reference', 'torch_trajectory.py');
const probe = await findPython(['torch']);
const noTorch = probe.python === null;
const skipMessage = `no Python with torch (tried ${probe.tried.join('; ')}); install python3-torch or set TWINSCOPE_PYTHON`;
if (noTorch) console.warn(`torch cross-check skipped: ${skipMessage}`);

const tmp = scratchDir('twinscope-torch-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const relMaxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(b[i] as number));
  }
  return diff / scale;
};

interface TorchResult {
  torch: string;
  losses: number[];
  params: number[];
}

async function crossCheck(activation: 'tanh' | 'relu', optimizer: OptimizerSpec) {
  const data = loadDataset({ name: 'moons', n: 256, noise: 0.2, testFraction: 0.25, standardize: true }, 0);
  const spec: ModelSpec = { kind: 'mlp', hidden: [16, 16], activation, init: { kind: 'pytorch' } };
  const model = modelGraphSpec(spec, data.inputDim, data.outputDim, 'cross-entropy');
  const init = initParams(model.layout, { kind: 'pytorch' }, Rng.fromSeed(0).stream('init'));
  const train = data.train;
  const labels = train.labels as Int32Array;

  const engine = await createOrtEngine(model, { optimizer });
  const state = { params: init.slice(), opt: engine.initOptimizerState() };
  const losses: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    losses.push(await engine.trainStep(state, { x: train.x, y: train.y, size: train.n }, optimizer.lr));
  }
  await engine.dispose();

  const input = join(tmp, `${activation}-${optimizer.kind}.json`);
  writeFileSync(
    input,
    JSON.stringify({
      widths: [data.inputDim, 16, 16, data.outputDim],
      activation,
      bias: true,
      params: Array.from(init),
      x: Array.from(train.x),
      labels: Array.from(labels),
      optimizer,
      steps: STEPS,
      threads: 1,
    }),
  );
  const torch = JSON.parse(
    await execFileText(probe.python as string, [SCRIPT, input], 120_000),
  ) as TorchResult;
  return { losses, params: state.params, torch, n: train.n };
}

// Both sides compute in float32 but reduce in different orders, so they differ by float32 rounding
// (~6e-8 relative per operation) that 50 steps carry forward. Observed (torch 1.13, ORT 1.30, one
// thread): per-step losses agree to ≤ 2.3e-7 relative, final weights to max |Δθ| / max |θ| ≤ 2.7e-7.
// The bounds below leave ~40× headroom for other BLAS/ORT builds.
const LOSS_TOL = 1e-5;
const PARAM_TOL = 1e-5;

describe.skipIf(noTorch)(`ORT engine vs PyTorch (${noTorch ? skipMessage : probe.python})`, () => {
  test.each<['tanh' | 'relu', OptimizerSpec]>([
    ['tanh', { kind: 'sgd', lr: 0.1 }],
    ['tanh', { kind: 'adam', lr: 0.01 }],
    ['relu', { kind: 'sgd', lr: 0.1 }],
    ['relu', { kind: 'adam', lr: 0.01 }],
  ])(
    `2-16-16-2 %s, %o, ${STEPS} full-batch steps: per-step losses and final weights`,
    async (activation, optimizer) => {
      const { losses, params, torch, n } = await crossCheck(activation, optimizer);
      expect(n).toBe(192);
      expect(torch.losses).toHaveLength(STEPS);
      // Training makes progress, so the comparison is not between two stuck trajectories.
      expect(losses[STEPS - 1] as number).toBeLessThan((losses[0] as number) * 0.9);
      const lossErr = Math.max(
        ...losses.map((l, i) => Math.abs(l - (torch.losses[i] as number)) / Math.abs(l)),
      );
      const paramErr = relMaxDiff(params, torch.params);
      expect(lossErr, `max relative loss difference (torch ${torch.torch})`).toBeLessThan(LOSS_TOL);
      expect(paramErr, 'max |Δθ| / max |θ| of final weights').toBeLessThan(PARAM_TOL);
    },
  );
});
