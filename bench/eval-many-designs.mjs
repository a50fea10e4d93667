#!/usr/bin/env node
// eval-many-designs: which ONNX graph evaluates many weight vectors of one MLP fastest on the CPU?
//
//   npm run build && node bench/eval-many-designs.mjs [--threads 1] [--examples 8192] [--repeats 3]
//
// The prototype comparison behind Engine.evaluateMany (docs/performance.md, "Batched evaluation").
// Model: MLP 784-256-256-10 (He init), random inputs; every design evaluates B copies of θ on the
// same examples in chunks of n rows and is timed against one OrtJobs.evaluate call per point, in the
// same process. Times are process CPU time (all threads; robust on a shared machine, where wall time
// is not), the best of --repeats runs after one warm-up run; printed as JSON: CPU ms per point and the
// ratio to the sequential baseline measured just before.
//
// Designs (first layer | other layers), all float32 on onnxruntime-node (MLAS):
//   rm-batched    [n,784]·[B,784,256] broadcasting MatMul | batched MatMul, row-major [B,n,·]
//                 (what lock-step training does; = evalManyGraph's points form)
//   rm-wide       one Gemm [n,784]·[784,B·256] (the B first-layer weights side by side), transposed
//                 to [B,n,256] | batched MatMul, row-major
//   fm-wide       one Gemm [B·256,784]·xᵀ → [B,256,n] | batched MatMul, feature-major [B,·,n] (no
//                 transposes at all)
//   fm-combo      K = 3 vectors: Gemm [3·256,784]·xᵀ, mixed per point by [B,3]·[3,256·n] | feature-major
//   rm-combo      K = 3 vectors: Gemm [n,784]·[784,3·256], transposed, mixed by [B,3]·[3,n·256] |
//                 row-major (= evalManyGraph's combination form)
// Each design name is followed by :B:n in the output (points per call, rows per call). A second part
// (`lists`) times OrtJobs.evaluateMany of lists of points against one evaluate per point at three
// model sizes.
import ort from 'onnxruntime-node';
import { mlpSpec, randomBatch, randomParams } from '../dist/bench/inputs.js';
import { Graph } from '../dist/engine/ir/graph.js';
import { evalManyGraph } from '../dist/engine/model-graphs.js';
import { emitOnnx } from '../dist/engine/onnx/emit.js';
import { OrtJobs } from '../dist/engine/ort/engine.js';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
};
const threads = arg('threads', 1);
const N = arg('examples', 8192);
const repeats = arg('repeats', 3);
const spec = mlpSpec([784, 256, 256, 10]);
const P = spec.layout.size;
const L = spec.layout.tensors;
const data = randomBatch(spec, N, 1);
const theta = randomParams(spec, 1);
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** Summed loss over [B, n, 10] logits (the tail every design shares). */
function tail(g, logits, y) {
  return {
    lossSum: g.neg(g.reduceSum(g.mul(y, g.logSoftmax(logits)), [1, 2])),
    correct: g.reduceSum(g.toFloat(g.equal(g.argMax(logits, 2), g.argMax(y, 1))), [1]),
  };
}

function inputs(g, B, n, K) {
  return {
    th: g.input('theta', [B, P]),
    x: g.input('x', [n, 784]),
    y: g.input('y', [n, 10]),
    ...(K ? { vecs: g.input('vectors', [K * 256, 784]), coef: g.input('coef', [B, K]) } : {}),
  };
}
const slice = (g, th, s) => g.slice(th, s.offset, s.offset + s.size, 1);

/** Layers 2 and 3 row-major from h [B, n, 256]. */
function rowMajorRest(g, th, B, h0) {
  let h = g.relu(g.add(h0, g.reshape(slice(g, th, L[1]), [B, 1, 256])));
  const w2 = g.transpose(g.reshape(slice(g, th, L[2]), [B, 256, 256]), [0, 2, 1]);
  h = g.relu(g.add(g.matmul(h, w2), g.reshape(slice(g, th, L[3]), [B, 1, 256])));
  const w3 = g.transpose(g.reshape(slice(g, th, L[4]), [B, 10, 256]), [0, 2, 1]);
  return g.add(g.matmul(h, w3), g.reshape(slice(g, th, L[5]), [B, 1, 10]));
}

/** Layers 2 and 3 feature-major from h [B, 256, n]; logits back to [B, n, 10]. */
function featureMajorRest(g, th, B, h0) {
  let h = g.relu(g.add(h0, g.reshape(slice(g, th, L[1]), [B, 256, 1])));
  h = g.relu(
    g.add(
      g.matmul(g.reshape(slice(g, th, L[2]), [B, 256, 256]), h),
      g.reshape(slice(g, th, L[3]), [B, 256, 1]),
    ),
  );
  const z = g.add(
    g.matmul(g.reshape(slice(g, th, L[4]), [B, 10, 256]), h),
    g.reshape(slice(g, th, L[5]), [B, 10, 1]),
  );
  return g.transpose(z, [0, 2, 1]);
}

const designs = {
  'rm-batched': (B, n) => ({ ...evalManyGraph(spec, n, B), feeds: 'theta' }),
  'rm-wide': (B, n) => {
    const g = new Graph();
    const { th, x, y } = inputs(g, B, n);
    const z = g.gemm(x, g.reshape(slice(g, th, L[0]), [B * 256, 784]), false, true);
    const h0 = g.transpose(g.reshape(z, [n, B, 256]), [1, 0, 2]);
    return { graph: g, outputs: tail(g, rowMajorRest(g, th, B, h0), y), feeds: 'theta' };
  },
  'fm-wide': (B, n) => {
    const g = new Graph();
    const { th, x, y } = inputs(g, B, n);
    const z = g.gemm(g.reshape(slice(g, th, L[0]), [B * 256, 784]), x, false, true);
    return {
      graph: g,
      outputs: tail(g, featureMajorRest(g, th, B, g.reshape(z, [B, 256, n])), y),
      feeds: 'theta',
    };
  },
  'fm-combo': (B, n) => {
    const g = new Graph();
    const { th, x, y, vecs, coef } = inputs(g, B, n, 3);
    const zk = g.reshape(g.gemm(vecs, x, false, true), [3, 256 * n]);
    const h0 = g.reshape(g.gemm(coef, zk), [B, 256, n]);
    return { graph: g, outputs: tail(g, featureMajorRest(g, th, B, h0), y), feeds: 'theta+combo' };
  },
  'rm-combo': (B, n) => ({ ...evalManyGraph(spec, n, B, 3), feeds: 'combo' }),
};

async function session(job) {
  return ort.InferenceSession.create(emitOnnx(job.graph, job.outputs), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  });
}

const tensor = (data, dims) => new ort.Tensor('float32', data, dims);
const stacked = (B) => {
  const a = new Float32Array(B * P);
  for (let b = 0; b < B; b++) a.set(theta, b * P);
  return a;
};

async function timeDesign(name, B, n) {
  const job = designs[name](B, n);
  const s = await session(job);
  const feeds = {};
  if (job.feeds.startsWith('theta')) feeds.theta = tensor(stacked(B), [B, P]);
  if (job.feeds === 'theta+combo') {
    const w0 = new Float32Array(3 * L[0].size);
    for (let k = 0; k < 3; k++) w0.set(theta.subarray(0, L[0].size), k * L[0].size);
    feeds.vectors = tensor(w0, [3 * 256, 784]);
  }
  if (job.feeds === 'combo') {
    const v = new Float32Array(3 * P);
    for (let k = 0; k < 3; k++) v.set(theta, k * P);
    feeds.vectors = tensor(v, [3, P]);
  }
  if (job.feeds !== 'theta') feeds.coef = tensor(new Float32Array(B * 3).fill(1 / 3), [B, 3]);
  const run = async () => {
    for (let start = 0; start + n <= N; start += n) {
      await s.run({
        ...feeds,
        x: tensor(data.x.subarray(start * 784, (start + n) * 784), [n, 784]),
        y: tensor(data.y.subarray(start * 10, (start + n) * 10), [n, 10]),
      });
    }
  };
  await run();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const t0 = cpuMs();
    await run();
    best = Math.min(best, cpuMs() - t0);
  }
  await s.release();
  return best / B;
}

const jobs = new OrtJobs(spec, { kind: 'sgd', lr: 0.1 }, threads);
async function sequentialPerPoint() {
  await jobs.evaluate(theta, data.x, data.y, N);
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const t0 = cpuMs();
    for (let b = 0; b < 4; b++) await jobs.evaluate(theta, data.x, data.y, N);
    best = Math.min(best, (cpuMs() - t0) / 4);
  }
  return best;
}

const cases = [
  'rm-batched:1:2048',
  'rm-batched:2:2048',
  'rm-batched:4:2048',
  'rm-batched:16:2048',
  'rm-batched:32:512',
  'rm-wide:32:512',
  'fm-wide:32:512',
  'fm-combo:64:512',
  'rm-combo:16:2048',
  'rm-combo:64:256',
  'rm-combo:64:512',
];
const result = {
  model: 'mlp-784-256-256-10',
  examples: N,
  threads,
  clock: 'process CPU ms per point (best of repeats)',
  cases: {},
};
for (const c of cases) {
  const [name, B, n] = c.split(':');
  const base = await sequentialPerPoint();
  const ms = await timeDesign(name, Number(B), Number(n));
  result.cases[c] = { cpuMsPerPoint: ms, sequentialCpuMsPerPoint: base, speedup: base / ms };
  process.stderr.write(
    `${c}: ${ms.toFixed(2)} ms/point, sequential ${base.toFixed(2)}, ${(base / ms).toFixed(2)}x\n`,
  );
}
await jobs.dispose();

// Lists of points through OrtJobs.evaluateMany against one evaluate per point, at three model sizes:
// the points form pays off only where a call's fixed cost matters (MANY_BATCH_FLOPS in
// src/engine/ort/engine.ts; above it evaluateMany makes one evaluate call per point itself, so the
// largest model here measures that loop).
result.lists = {};
for (const [widths, n, M] of [
  [[2, 64, 64, 2], 600, 64],
  [[784, 64, 64, 10], 500, 64],
  [[784, 256, 256, 10], 10000, 16],
]) {
  const model = mlpSpec(widths);
  const listJobs = new OrtJobs(model, { kind: 'sgd', lr: 0.1 }, threads);
  const batch = randomBatch(model, n, 1);
  const points = Array.from({ length: M }, (_, i) => randomParams(model, i + 1));
  const one = async () => {
    for (const p of points) await listJobs.evaluate(p, batch.x, batch.y, n);
  };
  const many = () => listJobs.evaluateMany(points, batch.x, batch.y, n);
  await one();
  await many();
  let bestOne = Number.POSITIVE_INFINITY;
  let bestMany = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats + 2; r++) {
    let t0 = cpuMs();
    await one();
    bestOne = Math.min(bestOne, (cpuMs() - t0) / M);
    t0 = cpuMs();
    await many();
    bestMany = Math.min(bestMany, (cpuMs() - t0) / M);
  }
  const name = `mlp-${widths.join('-')}, ${n} examples, ${M} points`;
  result.lists[name] = {
    evaluateCpuMsPerPoint: bestOne,
    evaluateManyCpuMsPerPoint: bestMany,
    speedup: bestOne / bestMany,
  };
  process.stderr.write(
    `lists ${name}: ${bestMany.toFixed(3)} vs ${bestOne.toFixed(3)} ms/point, ${(bestOne / bestMany).toFixed(2)}x\n`,
  );
  await listJobs.dispose();
}
console.log(JSON.stringify(result, null, 2));
