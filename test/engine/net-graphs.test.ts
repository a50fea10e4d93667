import { afterAll, describe, expect, test } from 'vitest';
import { slotNames } from '../../src/engine/model-graphs.js';
import { OrtJobs } from '../../src/engine/ort/engine.js';
import { OrtLockstepJobs } from '../../src/engine/ort/lockstep.js';
import type { FloatArray } from '../../src/engine/ort/session.js';
import { modelGraphSpec } from '../../src/model/graph.js';
import { initParams } from '../../src/model/init.js';
import { tensorSlot } from '../../src/model/layout.js';
import type { ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';
import { mulberry32, uniformArray } from '../helpers/reference-model.js';

const toDispose: { dispose(): Promise<void> }[] = [];
afterAll(async () => {
  await Promise.all(toDispose.map((j) => j.dispose()));
});

const maxAbs = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs((a[i] as number) - (b[i] as number)));
  return m;
};

/** Small nets on 1×6×6 images (36 features), 3 classes. */
const nets: [string, ModelSpec][] = [
  ['cnn, max pool (odd size), no norm', { kind: 'cnn', channels: [3, 4], dense: [5], image: [1, 6, 6] }],
  ['cnn, avg pool, batch norm', { kind: 'cnn', channels: [3], pool: 'avg', norm: 'batch', image: [1, 6, 6] }],
  ['cnn, layer norm', { kind: 'cnn', channels: [4], norm: 'layer', image: [1, 6, 6] }],
  ['cnn, group norm', { kind: 'cnn', channels: [4], norm: 'group', groups: 2, image: [1, 6, 6] }],
  ['resnet-8, batch norm', { kind: 'resnet', depth: 8, width: 1, image: [1, 6, 6] }],
  ['resnet-8, no norm', { kind: 'resnet', depth: 8, norm: 'none', image: [1, 6, 6] }],
];

function data(n: number, rand: () => number) {
  const x = Float64Array.from(uniformArray(rand, n * 36, -1, 1));
  const y = new Float64Array(n * 3);
  for (let i = 0; i < n; i++) y[i * 3 + Math.floor(rand() * 3)] = 1;
  return { x, y, n };
}

function setup(spec: ModelSpec) {
  const model = modelGraphSpec(spec, 36, 3, 'cross-entropy');
  const jobs = new OrtJobs(model, { kind: 'sgd', lr: 0.1 }, 1, 'float64');
  toDispose.push(jobs);
  const rand = mulberry32(5);
  const params = Float64Array.from(initParams(model.layout, { kind: 'he' }, Rng.fromSeed(3).stream('init')));
  // Norm scales and shifts away from 1 and 0, running statistics away from 0 and 1.
  for (const t of model.layout.tensors) {
    if (t.role === 'scale' || t.name.endsWith('.running_var')) {
      for (let i = 0; i < t.size; i++) params[t.offset + i] = 0.5 + rand();
    } else if (t.name.startsWith('norm') || t.role === 'bias') {
      for (let i = 0; i < t.size; i++) params[t.offset + i] = rand() - 0.5;
    }
  }
  return { model, jobs, params, batch: data(5, rand), rand };
}

describe('layer graphs in float64: gradients and Hessian-vector products', () => {
  test.each(nets)(
    '%s: gradient = central differences of the train-mode loss; buffers get 0',
    async (_n, spec) => {
      const { model, jobs, params, batch } = setup(spec);
      const { grad } = await jobs.gradient(params, batch.x, batch.y, batch.n);
      const h = 1e-6;
      const loss = async (p: Float64Array) => (await jobs.gradient(p, batch.x, batch.y, batch.n)).loss;
      // Every coordinate of the small CNNs; 150 spread-out coordinates of the ResNets.
      const stride = Math.max(1, Math.floor(params.length / 150));
      const coords = Array.from({ length: Math.ceil(params.length / stride) }, (_, i) => i * stride);
      const fd = new Float64Array(params.length);
      for (const k of coords) {
        const p = params.slice();
        p[k] = (params[k] as number) + h;
        const up = await loss(p);
        p[k] = (params[k] as number) - h;
        fd[k] = (up - (await loss(p))) / (2 * h);
      }
      expect(
        maxAbs(
          coords.map((k) => grad[k] as number),
          coords.map((k) => fd[k] as number),
        ),
      ).toBeLessThan(1e-7);
      for (const t of model.layout.tensors.filter((s) => s.role === 'buffer')) {
        expect(maxAbs(grad.subarray(t.offset, t.offset + t.size), new Float64Array(t.size))).toBe(0);
      }
    },
  );

  test.each(nets)('%s: Hessian-vector product = differences of gradients', async (_n, spec) => {
    const { jobs, params, batch, rand } = setup(spec);
    const v = Float64Array.from(uniformArray(rand, params.length));
    const hv = await jobs.hvp(params, batch.x, batch.y, batch.n, v);
    const h = 1e-5;
    const at = (s: number) =>
      jobs.gradient(
        params.map((p, k) => p + s * h * (v[k] as number)),
        batch.x,
        batch.y,
        batch.n,
      );
    const [gp, gm] = [await at(1), await at(-1)];
    const fd = gp.grad.map((g, k) => (g - (gm.grad[k] as number)) / (2 * h));
    expect(maxAbs(hv, fd) / Math.max(1, Math.hypot(...hv))).toBeLessThan(1e-7);
  });
});

describe('lock-step layer graphs (float64): R runs in one graph equal R single runs', () => {
  test.each([
    ['cnn, batch norm, sgd momentum', nets[1]?.[1] as ModelSpec, { kind: 'sgd', lr: 0.1, momentum: 0.9 }],
    ['cnn, group norm, adamw', nets[3]?.[1] as ModelSpec, { kind: 'adamw', lr: 0.01, weightDecay: 0.1 }],
    [
      'resnet-8, batch norm, sgd + weight decay',
      nets[4]?.[1] as ModelSpec,
      { kind: 'sgd', lr: 0.1, weightDecay: 1e-3 },
    ],
  ] as const)('%s: 3 steps of R = 3 runs, running statistics included', async (_n, spec, opt) => {
    const model = modelGraphSpec(spec, 36, 3, 'cross-entropy');
    const R = 3;
    const P = model.layout.size;
    const single = new OrtJobs(model, opt, 1, 'float64');
    const lock = new OrtLockstepJobs(model, opt, R, 1, 'float64');
    toDispose.push(single, lock);
    const rand = mulberry32(17);
    const slotCount = slotNames(lock.opt).length;
    const runs = Array.from({ length: R }, (_, r) => {
      const p = Float64Array.from(initParams(model.layout, { kind: 'he' }, Rng.fromSeed(r).stream('init')));
      return {
        params: p as FloatArray,
        slots: Array.from({ length: slotCount }, () => new Float64Array(P) as FloatArray),
      };
    });
    let params: FloatArray = new Float64Array(R * P);
    for (const [k, r] of runs.entries()) params.set(r.params, k * P);
    let slots: FloatArray[] = Array.from({ length: slotCount }, () => new Float64Array(R * P));
    for (const [step, lr] of [0.1, 0.05, 0.02].entries()) {
      const b = data(6, rand);
      const out = await lock.trainStep(params, slots, step, b.x, b.y, b.n, lr);
      for (const [k, run] of runs.entries()) {
        const s = await single.trainStep(run.params, run.slots, step, b.x, b.y, b.n, lr);
        run.params = s.params;
        run.slots = s.slots;
        expect(Math.abs((out.losses[k] as number) - s.loss)).toBeLessThan(1e-13);
        expect(maxAbs(out.params.subarray(k * P, (k + 1) * P), run.params)).toBeLessThan(1e-13);
      }
      params = out.params;
      slots = out.slots;
    }
    // The running statistics moved away from their initial 0 / 1.
    const rm = model.layout.tensors.find((t) => t.name === 'norm0.running_mean');
    if (rm)
      expect(
        maxAbs(params.subarray(rm.offset, rm.offset + rm.size), new Float64Array(rm.size)),
      ).toBeGreaterThan(1e-3);
  });
});

describe('BatchNorm statistics recomputed on data (normStatistics)', () => {
  test('one batch of all examples: running mean = the batch mean, running var = the unbiased batch variance; eval loss then equals the train-mode loss up to the n/(n−1) factor', async () => {
    const spec: ModelSpec = { kind: 'cnn', channels: [3], norm: 'batch', image: [1, 6, 6] };
    const { model, jobs, params, batch } = setup(spec);
    const recomputed = await jobs.normStatistics(params, batch.x, batch.n, batch.n);
    // norm0 normalizes conv0's output: its per-channel mean over examples and pixels, by brute force.
    const w = model.layout.tensors.find((t) => t.name === 'conv0.weight') as { offset: number };
    const means = [0, 0, 0];
    const sq = [0, 0, 0];
    for (let c = 0; c < 3; c++) {
      const vals: number[] = [];
      for (let i = 0; i < batch.n; i++) {
        for (let r = 0; r < 6; r++) {
          for (let q = 0; q < 6; q++) {
            let s = 0;
            for (let a = 0; a < 3; a++) {
              for (let b = 0; b < 3; b++) {
                const rr = r + a - 1;
                const qq = q + b - 1;
                if (rr < 0 || rr >= 6 || qq < 0 || qq >= 6) continue;
                s +=
                  (params[w.offset + c * 9 + a * 3 + b] as number) *
                  (batch.x[i * 36 + rr * 6 + qq] as number);
              }
            }
            vals.push(s);
          }
        }
      }
      means[c] = vals.reduce((u, v) => u + v, 0) / vals.length;
      sq[c] = vals.reduce((u, v) => u + (v - (means[c] as number)) ** 2, 0) / (vals.length - 1);
    }
    const rm = model.layout.tensors.find((t) => t.name === 'norm0.running_mean') as { offset: number };
    const rv = model.layout.tensors.find((t) => t.name === 'norm0.running_var') as { offset: number };
    expect(maxAbs(recomputed.subarray(rm.offset, rm.offset + 3), means)).toBeLessThan(1e-12);
    expect(maxAbs(recomputed.subarray(rv.offset, rv.offset + 3), sq)).toBeLessThan(1e-12);
    // Every other entry is unchanged.
    const others = model.layout.tensors.filter((t) => t.role !== 'buffer');
    for (const t of others)
      expect(
        maxAbs(
          recomputed.subarray(t.offset, t.offset + t.size),
          params.subarray(t.offset, t.offset + t.size),
        ),
      ).toBe(0);
  });

  test('two batches: the equal-weight average of the batches’ statistics (PyTorch update_bn)', async () => {
    const spec: ModelSpec = { kind: 'cnn', channels: [3], norm: 'batch', image: [1, 6, 6] };
    const { model, jobs, params, rand } = setup(spec);
    const b = data(10, rand);
    const whole = await jobs.normStatistics(params, b.x, 10, 6);
    const first = await jobs.normStatistics(params, b.x.subarray(0, 6 * 36), 6, 6);
    const second = await jobs.normStatistics(params, b.x.subarray(6 * 36), 4, 6);
    for (const t of model.layout.tensors.filter((s) => s.role === 'buffer')) {
      for (let i = t.offset; i < t.offset + t.size; i++) {
        expect(whole[i]).toBeCloseTo(((first[i] as number) + (second[i] as number)) / 2, 12);
      }
    }
  });
});

describe('max pooling over tied maxima (BatchNorm before ReLU on blank backgrounds)', () => {
  // Every blank 3×3 patch convolves to 0 and BatchNorm maps it to one value: windows of equal
  // maxima. The loss is differentiable in a norm's shift, and the adjoint must reach one of the tied
  // entries (PyTorch: the first), not each of them (found by the PyTorch cross-check).
  test('max pool over tied entries: gradient of a BatchNorm shift = central differences', async () => {
    // 1 × 6 × 6 images, 2 examples: a 2 × 2 block of ink in the top-left corner, the rest blank.
    const model = modelGraphSpec(
      { kind: 'cnn', channels: [2], norm: 'batch', image: [1, 6, 6] },
      36,
      2,
      'cross-entropy',
    );
    const params = Float64Array.from(
      initParams(model.layout, { kind: 'he' }, Rng.fromSeed(3).stream('init')),
    );
    const bias = tensorSlot(model.layout, 'norm0.bias');
    params[bias.offset] = 1; // channel 0: blank positions map to relu(1 - γμ/σ) > 0
    params[bias.offset + 1] = 1;
    const x = new Float64Array(72);
    for (const [r, c, v] of [
      [0, 0, 1],
      [0, 1, 0.5],
      [1, 0, -0.3],
      [1, 1, 0.8],
    ] as [number, number, number][]) {
      x[r * 6 + c] = v as number;
      x[36 + r * 6 + c] = -(v as number);
    }
    const y = Float64Array.from([1, 0, 0, 1]);
    const jobs = new OrtJobs(model, { kind: 'sgd', lr: 0.1 }, 1, 'float64');
    const { grad } = await jobs.gradient(params, x, y, 2);
    const h = 1e-6;
    for (const k of [bias.offset, bias.offset + 1]) {
      const p = params.slice();
      p[k] = (params[k] as number) + h;
      const up = (await jobs.gradient(p, x, y, 2)).loss;
      p[k] = (params[k] as number) - h;
      const down = (await jobs.gradient(p, x, y, 2)).loss;
      expect(grad[k], `d loss / d ${k - bias.offset === 0 ? 'norm0.bias[0]' : 'norm0.bias[1]'}`).toBeCloseTo(
        (up - down) / (2 * h),
        7,
      );
    }
    toDispose.push(jobs);
  });
});
