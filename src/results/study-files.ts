/**
 * The index files of a study or sweep directory (docs/formats.md): study.json (the resolved spec,
 * the step plan and the compared pairs), sweep.json (the grid and its runs) and status.json (what
 * failed, and the digest of results.arrow). Runners write them, sealed (util/sealed-json.ts); the
 * report and `twinscope verify` read them and check the seals.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Divergence } from '../train/run.js';
import type { FileDigest } from '../util/file-digest.js';
import { formatBelow, readSealedJson, writeSealedJson } from '../util/sealed-json.js';
import { toolkitVersion } from '../version.js';
import type { TwinInfo } from './metrics.js';

/**
 * Version of study.json's layout. 3: sealed; 2: pairs name their runs `runA` / `runB` (the columns
 * of their result rows); 1 named them `reference` / `name`. 1 and 2 are still read.
 */
const STUDY_FORMAT = 3;

/** Version of sweep.json's layout. 2: sealed; 1 (unsealed) is still read. */
const SWEEP_FORMAT = 2;

/** Version of status.json's layout. 2: sealed, with `files`; before it had no `format` and is still read. */
const STATUS_FORMAT = 2;

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

/** Write DIR/study.json atomically and sealed, with the current format and toolkit version. */
export function writeStudyJson(dir: string, study: Omit<StudyJson, 'format' | 'toolkit'>): void {
  writeSealedJson(join(dir, 'study.json'), { format: STUDY_FORMAT, toolkit: toolkitVersion(), ...study });
}

/**
 * Read DIR/study.json with its seal checked (an IntegrityError naming the file when it is not JSON
 * or was modified); then {@link parseStudyJson} says whether it is a study.
 */
export function readStudyJsonFile(dir: string): unknown {
  return readSealedJson(join(dir, 'study.json'), formatBelow(STUDY_FORMAT));
}

/** sweep.json as `twinscope run` writes it for a sweep. */
export interface SweepJson {
  readonly format?: number;
  readonly toolkit?: string;
  readonly name?: string;
  readonly base?: unknown;
  readonly grid?: unknown;
  readonly embed?: { readonly groupBy?: readonly string[] };
  /** The resolved `measure` block (sweeps that measure their runs). */
  readonly measure?: object & { readonly sensitivity?: { readonly correlateAt?: number } };
  readonly runs: readonly {
    readonly name: string;
    readonly overrides?: Record<string, unknown>;
    readonly spec?: unknown;
  }[];
}

/** Write DIR/sweep.json atomically and sealed, with the current format and toolkit version. */
export function writeSweepJson(dir: string, sweep: Omit<SweepJson, 'format' | 'toolkit'>): void {
  writeSealedJson(join(dir, 'sweep.json'), { format: SWEEP_FORMAT, toolkit: toolkitVersion(), ...sweep });
}

/**
 * Read DIR/sweep.json with its seal checked (IntegrityError when damaged); `problem` when it is not
 * a sweep.
 */
export function readSweepJson(dir: string): { sweep: SweepJson } | { problem: string } {
  const json = readSealedJson(join(dir, 'sweep.json'), formatBelow(SWEEP_FORMAT));
  if (!Array.isArray(json.runs as unknown)) return { problem: "not a sweep (expected 'runs')" };
  return { sweep: json as unknown as SweepJson };
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

/** Wall time, CPU time and bytes written of one phase of a study or sweep (status.json `breakdown`). */
export interface PhaseTotals {
  /** Wall time in ms, summed over the pieces of work of the phase (jobs overlap in parallel workers). */
  readonly wallMs: number;
  /** CPU time (user + system) in ms of the process that ran each piece, summed. */
  readonly cpuMs: number;
  /** Bytes of the files the phase wrote (created or rewritten). */
  readonly bytes: number;
  /** Pieces of work timed (jobs, measurements, embeddings). */
  readonly count: number;
}

/**
 * Where the time and bytes of one run of a study or sweep went (docs/formats.md, "status.json"):
 * absent in status.json written before it existed.
 */
export interface StudyBreakdown {
  /** Elapsed wall time of the run in ms (from the start of the runner to the last phase). */
  readonly wallMs: number;
  /** CPU time in ms: the coordinator's (`mainCpuMs`) plus that of jobs run in worker processes. */
  readonly cpuMs: number;
  /** The coordinator process's CPU time in ms (every job's too when they ran in it). */
  readonly mainCpuMs: number;
  /** CPU time in ms of the jobs that ran in pool worker processes (0 when they ran in the coordinator). */
  readonly workerCpuMs: number;
  /**
   * Where the jobs ran: `in-process` (one worker: the coordinator), `workers` (pool processes), or
   * `queue` (`twinscope worker`s elsewhere: their jobs are not timed; only the coordinator's phases).
   */
  readonly jobs: 'in-process' | 'workers' | 'queue';
  /** Worker processes (or queue workers seen) of the last execution round. */
  readonly workers: number;
  /** One entry per phase, in flow order (train…, measure…, embedding…, results, report). */
  readonly phases: readonly ({ readonly phase: string } & PhaseTotals)[];
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
  /**
   * Digests of the finalized files status.json vouches for (a study's `results.arrow`), checked by
   * every reader; empty in a sweep's; absent (nothing can be checked) in status.json written before
   * seals.
   */
  readonly files?: Readonly<Record<string, FileDigest>>;
  /** Time and bytes per phase of the run that wrote it; absent before the breakdown existed. */
  readonly breakdown?: StudyBreakdown;
}

/** Write DIR/status.json atomically and sealed. */
export function writeStatus(dir: string, status: StudyStatus): void {
  writeSealedJson(join(dir, 'status.json'), { format: STATUS_FORMAT, ...status });
}

/**
 * Read DIR/status.json: the status, or a `warning` saying why there is none (missing: the study or
 * sweep has not finished). Missing list fields read as empty. A damaged status.json (not JSON, or
 * its seal does not match) throws an IntegrityError naming it.
 */
export function readStatus(
  dir: string,
  what: 'study' | 'sweep',
): { status: StudyStatus; warning?: undefined } | { status?: undefined; warning: string } {
  const path = join(dir, 'status.json');
  if (!existsSync(path)) {
    return { warning: `no status.json: the ${what} has not finished (or was written by an older twinscope)` };
  }
  const s = readSealedJson(path, (doc) => doc.format === undefined) as Partial<StudyStatus> & {
    format?: number;
  };
  return {
    status: {
      complete: s.complete === true,
      failed: Array.isArray(s.failed) ? s.failed : [],
      blocked: Array.isArray(s.blocked) ? s.blocked : [],
      controlFailures: Array.isArray(s.controlFailures) ? s.controlFailures : [],
      diverged: Array.isArray(s.diverged) ? s.diverged : [],
      // Written before seals: no files to check (`files` absent). Sealed: `files` always present.
      ...(s.format !== undefined && {
        files: typeof s.files === 'object' && s.files !== null ? s.files : {},
      }),
      ...(typeof s.breakdown === 'object' && s.breakdown !== null && { breakdown: s.breakdown }),
    },
  };
}

/**
 * Replace the breakdown of DIR/status.json (after the report, which the CLI times once the runner
 * has written status.json); the rest is kept as it is, sealed again. Nothing is written when there
 * is no status.json.
 */
export function updateStatusBreakdown(dir: string, breakdown: StudyBreakdown): void {
  const { status } = readStatus(dir, 'study');
  if (!status) return;
  writeStatus(dir, { ...status, breakdown });
}
