/**
 * The index files of a study or sweep directory (docs/formats.md): study.json (the resolved spec,
 * the step plan and the compared pairs) and status.json (what failed). Runners write them; the
 * report and `twinscope verify` read them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Divergence } from '../train/run.js';
import { writeJsonAtomic } from '../util/atomic-file.js';
import { toolkitVersion } from '../version.js';
import type { TwinInfo } from './metrics.js';

/**
 * Version of study.json's layout. 2: pairs name their runs `runA` / `runB` (the columns of their
 * result rows); 1 named them `reference` / `name` and is still read.
 */
const STUDY_FORMAT = 2;

/** study.json as `twinscope run` writes it (the fields a report reads). */
export interface StudyJson {
  readonly format?: number;
  readonly toolkit?: string;
  readonly spec: { readonly name?: string } & Record<string, unknown>;
  readonly totalSteps?: number;
  readonly stepsPerEpoch?: number;
  readonly checkpoints?: readonly number[];
  readonly twins: readonly TwinInfo[];
}

/** Write DIR/study.json atomically, with the current format and toolkit version. */
export function writeStudyJson(dir: string, study: Omit<StudyJson, 'format' | 'toolkit'>): void {
  writeJsonAtomic(join(dir, 'study.json'), { format: STUDY_FORMAT, toolkit: toolkitVersion(), ...study });
}

/**
 * A parsed study.json as a {@link StudyJson}, or why it is not one (`problem`). Pairs of format 1
 * (`reference`, `name`) are read as `runA`, `runB`.
 */
export function parseStudyJson(json: unknown): { study: StudyJson } | { problem: string } {
  const s = json as Partial<Record<keyof StudyJson, unknown>> | null;
  if (typeof s !== 'object' || s === null || typeof s.spec !== 'object' || !Array.isArray(s.twins)) {
    return { problem: "not a study (expected 'spec' and 'twins')" };
  }
  const twins = (s.twins as Record<string, unknown>[]).map((t) => {
    if ('runB' in t) return t;
    const { reference, name, ...rest } = t;
    return { runA: reference, runB: name, ...rest };
  });
  return { study: { ...(s as unknown as StudyJson), twins: twins as unknown as TwinInfo[] } };
}

/** A run of a study or sweep that diverged (its run.json status is `diverged`). */
export interface DivergedRun {
  /** The run's name (its directory under `runs/`). */
  readonly run: string;
  /** Where it diverged (run.json `diverged.step`). */
  readonly step: number;
  readonly reason: Divergence['reason'];
}

/** status.json: what went wrong in a study or sweep (absent in directories written before it existed). */
export interface StudyStatus {
  /**
   * Every job done, nothing blocked, the σ = 0 control passed, every embedding made. Diverged runs
   * do not make a study incomplete: a divergence is a result (listed in `diverged`).
   */
  readonly complete: boolean;
  /** Failed jobs (`train:`, `fork:`, `measure:`) and failed embeddings (`embed:`), with their errors. */
  readonly failed: readonly { readonly id: string; readonly message: string }[];
  /** Jobs not run because a job they depend on failed. */
  readonly blocked: readonly string[];
  /** σ = 0 twins whose L2 was not exactly 0 (twin studies only). */
  readonly controlFailures: readonly string[];
  /** Runs that diverged, in plan order (their pairs are measured up to the divergence; see METRICS.diverged). */
  readonly diverged: readonly DivergedRun[];
}

/** Write DIR/status.json atomically. */
export function writeStatus(dir: string, status: StudyStatus): void {
  writeJsonAtomic(join(dir, 'status.json'), status);
}

/**
 * Read DIR/status.json: the status, or a `warning` saying why there is none (missing: the run has
 * not finished; unreadable). Missing list fields read as empty.
 */
export function readStatus(
  dir: string,
  what: 'study' | 'sweep',
): { status: StudyStatus; warning?: undefined } | { status?: undefined; warning: string } {
  const path = join(dir, 'status.json');
  if (!existsSync(path)) {
    return { warning: `no status.json: the ${what} has not finished (or was written by an older twinscope)` };
  }
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as Partial<StudyStatus>;
    return {
      status: {
        complete: s.complete === true,
        failed: Array.isArray(s.failed) ? s.failed : [],
        blocked: Array.isArray(s.blocked) ? s.blocked : [],
        controlFailures: Array.isArray(s.controlFailures) ? s.controlFailures : [],
        diverged: Array.isArray(s.diverged) ? s.diverged : [],
      },
    };
  } catch (e) {
    return { warning: `status.json: not valid JSON (${(e as Error).message})` };
  }
}
