/** Text form of a step-benchmark result: what `twinscope bench train` prints without --json. */
import type { TrainBenchResult } from './train-bench.js';

/** Human-readable table of a result (the CLI prints it without --json). */
export function formatTrainBench(result: TrainBenchResult): string {
  const lines: string[] = [];
  const peak = result.gemmPeakGflops;
  lines.push(`GEMM peak (ORT): ${peak === null ? 'n/a' : `${peak.toFixed(1)} GFLOP/s`}`);
  lines.push('');
  const header = ['model', 'batch', 'engine', 'threads', 'ms/step', 'GFLOP/s', '% peak'];
  const rows = result.cases.map((c) => [
    c.model,
    String(c.batch),
    c.engine,
    String(c.threads),
    c.msPerStep.toFixed(3),
    c.gflops.toFixed(2),
    peak ? ((100 * c.gflops) / peak).toFixed(1) : 'n/a',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const row of [header, ...rows]) {
    lines.push(
      row.map((cell, i) => (i < 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '),
    );
  }
  lines.push('');
  for (const r of result.ratios) {
    const fmt = (v: number | null) => (v === null ? 'n/a' : `${v.toFixed(2)}x`);
    lines.push(
      `${r.model} batch ${r.batch}: ort speedup vs tfjs ${fmt(r.ortSpeedupVsTfjs)}, vs torch ${fmt(r.ortSpeedupVsTorch)}`,
    );
  }
  const ls = result.lockstep;
  if (ls) {
    lines.push('');
    lines.push(
      `lock-step twins, ${ls.model} batch ${ls.batch}, ${ls.engine} ${ls.optimizer}, ${ls.threads} thread(s):`,
    );
    const lsHeader = [
      'R',
      'separate ms/step',
      'lock-step ms/step',
      'separate run-steps/s',
      'lock-step run-steps/s',
      'speedup',
    ];
    const lsRows = ls.cases.map((c) => [
      String(c.runs),
      c.separateMsPerStep.toFixed(3),
      c.lockstepMsPerStep.toFixed(3),
      c.separateRunStepsPerSecond.toFixed(0),
      c.lockstepRunStepsPerSecond.toFixed(0),
      `${c.speedup.toFixed(2)}x`,
    ]);
    const lsWidths = lsHeader.map((h, i) => Math.max(h.length, ...lsRows.map((r) => r[i]!.length)));
    for (const row of [lsHeader, ...lsRows])
      lines.push(row.map((cell, i) => cell.padStart(lsWidths[i]!)).join('  '));
  }
  for (const [key, note] of Object.entries(result.notes)) lines.push(`${key}: ${note}`);
  return lines.join('\n');
}
