/**
 * The machine's GEMM peak as onnxruntime reaches it: the best GFLOP/s of a large square float32
 * matrix product (MLAS), measured in the same process as the benchmark it calibrates.
 */
import { Graph } from '../ir/graph.js';
import { OrtJob } from './session.js';

/**
 * Best-of-`repeats` GFLOP/s of an n × n × n float32 Gemm with `threads` intra-op threads
 * (2n³ floating-point operations per product).
 */
export async function measureGemmPeak(threads: number, n = 1024, repeats = 10): Promise<number> {
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
    await job.run(feeds);
    for (let i = 0; i < repeats; i++) {
      const t0 = performance.now();
      await job.run(feeds);
      best = Math.min(best, performance.now() - t0);
    }
  } finally {
    await job.dispose();
  }
  return (2 * n ** 3) / (best * 1e6);
}
