/** Read-only views of a run directory: integrity check (`verify`) and summary (`inspect`). */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { NotARunDirError, readCheckpointSteps, verifyFiles } from '../store/index.js';
import { formatPercent } from '../util/format.js';
import { formatDivergence, type RunJson, readRunJson } from './run.js';
import { checkRunFiles } from './run-files.js';

/** What {@link verifyRun} found: `ok` when `problems` is empty, and a one-line summary. */
export interface RunVerifyResult {
  readonly ok: boolean;
  readonly problems: string[];
  readonly summary: string;
}

/**
 * Check run.json, then every Arrow file against the schema, row counts and checksums run.json
 * records. A diverged run is final and checked like a complete one (its checkpoints: those kept).
 */
export function verifyRun(dir: string): RunVerifyResult {
  let run: RunJson;
  try {
    run = readRunJson(dir);
  } catch (e) {
    // Not a run directory at all is bad input (exit 2), not a problem found in a run.
    if (e instanceof NotARunDirError) throw e;
    return { ok: false, problems: [(e as Error).message], summary: '' };
  }
  const problems: string[] = [];
  const ended = run.status === 'complete' || run.status === 'diverged';
  if (!ended)
    problems.push(`run.json: run is not complete (status '${run.status}'); run train again to resume it`);
  const files = verifyFiles(dir, run.files);
  problems.push(...files.problems);
  if (files.ok && ended) {
    const steps = readCheckpointSteps(dir);
    const expected = run.checkpointSteps;
    if (steps.length !== expected.length || steps.some((s, i) => s !== expected[i])) {
      problems.push(
        `checkpoints.arrow: checkpoint steps [${steps.join(', ')}] differ from run.json's [${expected.join(', ')}]`,
      );
    }
  }
  const diverged = run.diverged ? `diverged ${formatDivergence(run.diverged)}, ` : '';
  const summary = `${diverged}${run.checkpointSteps.length} checkpoints, ${run.totalSteps} steps, ${Object.keys(run.files ?? {}).length} files checked`;
  return { ok: problems.length === 0, problems, summary };
}

/** A summary of a run directory (see {@link inspectRun} and {@link formatInspection}). */
export interface RunInspection {
  readonly dir: string;
  readonly name: string;
  readonly status: RunJson['status'];
  readonly toolkit: string;
  readonly data: string;
  readonly model: string;
  readonly optimizer: string;
  readonly parameters: number;
  readonly totalSteps: number;
  readonly stepsPerEpoch: number;
  readonly checkpointSteps: readonly number[];
  readonly final?: RunJson['final'];
  /** Where and why the run diverged (status `diverged`). */
  readonly diverged?: RunJson['diverged'];
  readonly lineage: RunJson['lineage'];
  readonly files: Record<string, number>;
}

/**
 * Summarize a run directory without modifying it. Its finished files must match the checksums
 * run.json records (a StoreError names a file that does not; `verify` lists every problem).
 */
export function inspectRun(dir: string): RunInspection {
  const run = readRunJson(dir);
  checkRunFiles(dir);
  const files: Record<string, number> = {};
  for (const f of readdirSync(dir)) files[f] = statSync(join(dir, f)).size;
  const { spec } = run;
  const model =
    spec.model.kind === 'mlp'
      ? `mlp [${spec.model.hidden.join(', ')}] ${spec.model.activation ?? 'relu'}`
      : spec.model.kind;
  return {
    dir,
    name: spec.name,
    status: run.status,
    toolkit: run.toolkit,
    data: spec.data.name,
    model,
    optimizer: `${spec.optimizer.kind} lr ${spec.optimizer.lr}${spec.lrSchedule ? ` (schedule ${spec.lrSchedule})` : ''}`,
    parameters: run.layout.size,
    totalSteps: run.totalSteps,
    stepsPerEpoch: run.stepsPerEpoch,
    checkpointSteps: run.checkpointSteps,
    final: run.final,
    ...(run.diverged && { diverged: run.diverged }),
    lineage: run.lineage,
    files,
  };
}

/** Human-readable form of {@link inspectRun}. */
export function formatInspection(info: RunInspection): string {
  const pct = (x: number | null | undefined) => formatPercent(x, 2, '-');
  const f = info.final;
  const cps = info.checkpointSteps;
  const lines = [
    `run        ${info.name} (${info.status}, twinscope ${info.toolkit})`,
    `data       ${info.data}`,
    `model      ${info.model}, ${info.parameters} parameters`,
    `optimizer  ${info.optimizer}`,
    `steps      ${info.totalSteps} (${info.stepsPerEpoch} per epoch)`,
    `checkpoints ${cps.length}: ${cps.length > 8 ? `${cps.slice(0, 4).join(', ')}, …, ${cps.slice(-3).join(', ')}` : cps.join(', ')}`,
  ];
  // JSON has no NaN: a non-finite loss reads back as null.
  const loss = (x: number | null | undefined) => (typeof x === 'number' ? x.toPrecision(4) : '-');
  if (f) {
    lines.push(
      `final      train loss ${loss(f.trainEvalLoss)} acc ${pct(f.trainAcc)} | test loss ${loss(f.testLoss)} acc ${pct(f.testAcc)}`,
    );
  }
  if (info.diverged) lines.push(`diverged   ${formatDivergence(info.diverged)}`);
  if (info.lineage.parent)
    lines.push(`lineage    parent ${info.lineage.parent} at step ${info.lineage.forkStep}`);
  lines.push('files');
  for (const [name, size] of Object.entries(info.files))
    lines.push(`  ${name.padEnd(22)} ${(size / 1024).toFixed(1)} KiB`);
  return `${lines.join('\n')}\n`;
}
