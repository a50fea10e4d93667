/**
 * The short table `twinscope run` prints on stderr at the end: wall time, CPU time and bytes
 * written per phase of the study or sweep (status.json `breakdown`, study/breakdown.ts).
 */
import type { StudyBreakdown } from '../results/study-files.js';

/** Bytes as B, kB, MB or GB (powers of 1000), 3 significant digits. */
function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toPrecision(3)} ${units[unit]}`;
}

const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** The lines of the table (without newlines). */
export function formatBreakdown(b: StudyBreakdown): string[] {
  const where =
    b.jobs === 'workers'
      ? `main ${seconds(b.mainCpuMs)} s + ${b.workers} worker processes ${seconds(b.workerCpuMs)} s`
      : b.jobs === 'queue'
        ? 'this process only: queue workers are not timed'
        : 'one process';
  const total = b.phases.reduce((n, p) => n + p.bytes, 0);
  const head = `time and bytes: ${seconds(b.wallMs)} s wall, ${seconds(b.cpuMs)} s CPU (${where}), ${formatBytes(total)} written`;
  const rows = b.phases.map((p) => [
    p.phase,
    seconds(p.wallMs),
    seconds(p.cpuMs),
    formatBytes(p.bytes),
    String(p.count),
  ]);
  const header = ['phase', 'wall s', 'cpu s', 'written', 'n'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: string[]) =>
    `  ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')}`;
  return [head, line(header), ...rows.map(line)];
}
