/** What machine a benchmark ran on, reported next to its numbers. */
import { availableParallelism, cpus, platform, release } from 'node:os';

export interface MachineInfo {
  readonly cpu: string;
  readonly logicalCpus: number;
  readonly availableParallelism: number;
  readonly platform: string;
  readonly node: string;
}

export function machineInfo(): MachineInfo {
  return {
    cpu: cpus()[0]?.model.trim() ?? 'unknown',
    logicalCpus: cpus().length,
    availableParallelism: availableParallelism(),
    platform: `${platform()} ${release()}`,
    node: process.version,
  };
}
