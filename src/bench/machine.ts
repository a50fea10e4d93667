/** What machine a benchmark ran on, reported next to its numbers. */
import { availableParallelism, cpus, platform, release } from 'node:os';

/** The CPU, its logical cores and parallelism, the OS and the Node.js version. */
export interface MachineInfo {
  readonly cpu: string;
  readonly logicalCpus: number;
  readonly availableParallelism: number;
  readonly platform: string;
  readonly node: string;
}

/** The machine this process runs on. */
export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    logicalCpus: cpus().length,
    availableParallelism: availableParallelism(),
    platform: `${platform()} ${release()}`,
    node: process.version,
  };
}
