/**
 * The machine's GEMM peak as onnxruntime reaches it: the best GFLOP/s of a large square float32
 * matrix product (MLAS), measured in the same process as the benchmark it calibrates.
 */
import { Graph } from '../ir/graph.js';
import { OrtJob } from './session.js';

/**
 * Best GFLOP/s of an n × n × n float32 Gemm with `threads` intra-op threads (2n³ floating-point
 * operations per product): after 3 warm-up products, the fastest of at least `repeats` products
 * and of as many as fit in `minSeconds`. A best-of-10 without warm-up measured anywhere between
 * 97 and 345 GFLOP/s (2 threads) on the same idle VM within a minute: the first products of a
 * process run before the vCPUs are at speed.
 */
export async function measureGemmPeak(
  threads: number,
  n = 1024,
  repeats = 10,
  minSeconds = 1,
): Promise<number> {
  const g = new Graph();
  const a = g.input('a', [n, n]);
  const b = g.input('b', [n, n]);
  const job = await OrtJob.create(
    { graph: g, outputs: { c: g.gemm(a, b) } },
    { threads, floatType: 'float32' },
  );
  const data = new Float32Array(n * n).map((_, i) => ((i * 2654435761) % 1000) / 1000 - 0.5);
  const feeds = { a: { data, dims: [n, n] }, b: { data, dims: [n, n] } };
  let best = Number.POSITIVE_INFINITY;
  try {
    for (let i = 0; i < 3; i++) await job.run(feeds);
    const start = performance.now();
    for (let i = 0; i < repeats || performance.now() - start < minSeconds * 1000; i++) {
      const t0 = performance.now();
      await job.run(feeds);
      best = Math.min(best, performance.now() - t0);
    }
  } finally {
    await job.dispose();
  }
  return (2 * n ** 3) / (best * 1e6);
}
