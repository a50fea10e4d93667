/**
 * Reading a run's finished files with their integrity checked: every file run.json records a
 * checksum for (written when the run finished or diverged) is compared with it before its data is
 * used, so a modified or corrupted file stops the reader with an error naming it instead of feeding
 * wrong weights to a measurement, an embedding, a fork or an export. A running run has no recorded
 * checksums yet; its files are read as they are (the store's readers still detect torn files).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ParameterLayout } from '../model/layout.js';
import {
  CHECKPOINTS_FILE,
  type Checkpoint,
  checkFileChecksum,
  iterateCheckpoints,
  METRICS_FILE,
  readCheckpoints,
} from '../store/index.js';
import { readRunJson } from './run.js';

/**
 * Check the files `names` of run `dir` against the sha256 its run.json records; throws a StoreError
 * naming the file (`…/checkpoints.arrow: sha256 … does not match the recorded …`).
 */
export function checkRunFiles(
  dir: string,
  names: readonly string[] = [CHECKPOINTS_FILE, METRICS_FILE],
): void {
  // Store files without a run.json (written by the store alone) have no recorded checksums.
  if (!existsSync(join(dir, 'run.json'))) return;
  const recorded = readRunJson(dir).files ?? {};
  for (const name of names) {
    const expected = recorded[name];
    if (expected) checkFileChecksum(dir, name, expected);
  }
}

/** The checkpoints of run `dir` ({@link readCheckpoints}), after {@link checkRunFiles} on checkpoints.arrow. */
export function readRunCheckpoints(dir: string, layout?: ParameterLayout): Checkpoint[] {
  checkRunFiles(dir, [CHECKPOINTS_FILE]);
  return readCheckpoints(dir, layout);
}

/**
 * The checkpoint of run `dir` at `step` (default: its last), after {@link checkRunFiles} on
 * checkpoints.arrow, decoding one checkpoint at a time and stopping at `step`; `cp` is undefined
 * when there is none, and `steps` lists the steps read (all of them then).
 */
export function findRunCheckpoint(
  dir: string,
  layout: ParameterLayout | undefined,
  step?: number,
): { cp: Checkpoint | undefined; steps: number[] } {
  checkRunFiles(dir, [CHECKPOINTS_FILE]);
  const steps: number[] = [];
  let cp: Checkpoint | undefined;
  for (const c of iterateCheckpoints(dir, layout)) {
    steps.push(c.step);
    if (step === undefined || c.step === step) cp = c;
    if (step !== undefined && c.step === step) break;
  }
  return { cp, steps };
}

/** Why {@link findRunCheckpoint} found nothing: `DIR: no checkpoint (…)` or `DIR@STEP: no checkpoint at step STEP (it has …)`. */
export function missingCheckpoint(dir: string, step: number | undefined, steps: readonly number[]): string {
  const have = steps.length === 0 ? 'it has none' : `it has ${steps.join(', ')}`;
  return step === undefined
    ? `${dir}: no checkpoint (${have})`
    : `${dir}@${step}: no checkpoint at step ${step} (${have})`;
}

/** The run directories under `root` (any depth; a folder with a run.json is one), as paths relative to it. */
export function findRunDirs(root: string, prefix = ''): string[] {
  if (!existsSync(root)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(root, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    const sub = join(root, entry.name);
    if (existsSync(join(sub, 'run.json'))) out.push(name);
    else out.push(...findRunDirs(sub, name));
  }
  return out;
}
