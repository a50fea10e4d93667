/**
 * Running a sweep (see sweep-spec.ts for the spec): every run trained in the local pool, then all
 * their checkpoints embedded together (or per `embed.groupBy` group). Figures are drawn by the
 * report, not here.
 *
 * Layout of the sweep directory:
 *
 * ```
 * DIR/sweep.json       the resolved sweep: every run's name, overrides and resolved spec
 * DIR/runs/<name>/     every run (resumable; a complete run is not trained again)
 * DIR/embedding.arrow  DIR/embedding.json   all checkpoints embedded (see results/embedding.ts)
 * DIR/key.json         what the embedding was made from: unchanged inputs are read back (embedKeyed)
 * DIR/measurements/<key>.arrow, <key>.json   with a `measure` block: the rows of one run (sharpness,
 *                      sensitivity, critical σ, surfaces) and their sealed index; key = hash of the
 *                      run's spec, the measure block and the toolkit version
 * DIR/measurements/<key>.surface-<i>-<directions>-<step>.arrow   each loss surface (its digest in
 *                      the index and in its `surface` row)
 * DIR/results.arrow    every measured row (long form), when the sweep has a `measure` block
 * DIR/status.json      complete (every run trained, measured and embedded), failed jobs (as a
 *                      study's), blocked measure jobs, diverged runs, the digest of results.arrow
 * ```
 *
 * A run that diverges is a result, not a failure: its job succeeds, a re-run does not retrain it,
 * the embeddings leave it out (listed with the reason in key.json's `excluded`; a group whose runs
 * all diverged has no embedding) and it is not measured (a `diverged` row says why). status.json
 * lists it under `diverged`.
 *
 * Measurements run as jobs in the same pool as training, one per run after its train job, keyed by
 * configuration: a re-run skips every run whose measurement index exists and whose files match it,
 * and measures again one whose files are missing or damaged.
 *
 * With `embed.groupBy`, instead of the single embedding:
 *
 * ```
 * DIR/groups/<group>/embedding.{arrow,json}, key.json   each group's embedding (g<i>-<values>)
 * DIR/groups.json  DIR/groups.arrow   per group: values, runs, eigenvalues, explained stress, width ratios
 * ```
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../data/load.js';
import type { PoolJob, PoolResult } from '../exec/pool.js';
import { queueWorkerCount } from '../exec/queue.js';
import type { RunEmbedding } from '../results/embedding.js';
import { type EmbeddedGroup, writeGroupSummary } from '../results/groups.js';
import { measurementRecorded, readMeasurement } from '../results/measurement-files.js';
import { type ResultRow, writeResults } from '../results/rows.js';
import {
  type DivergedRun,
  type StudyBreakdown,
  writeStatus,
  writeSweepJson,
} from '../results/study-files.js';
import { SpecError } from '../spec/errors.js';
import { planRun } from '../spec/run-plan.js';
import { type Divergence, formatDivergence, readRunJson } from '../train/run.js';
import type { FileDigest } from '../util/file-digest.js';
import { withFolderLock } from '../util/folder-lock.js';
import { canonical, configHash } from '../util/json.js';
import { removeStrayTemps } from '../util/stray-temps.js';
import { toolkitVersion } from '../version.js';
import { Breakdown } from './breakdown.js';
import { divergedRuns, runComplete } from './completeness.js';
import { EmbedInputError } from './embed-runs.js';
import { embedKeyed } from './embed-study.js';
import { runStudyJobs, type StudyJob } from './jobs.js';
import { type QueueRunOptions, type StudyEvents, studyQueue } from './run-study.js';
import type { SweepPoint } from './sweep-grid.js';
import type { ResolvedSweepSpec } from './sweep-spec.js';

/** Options of {@link runSweep}. */
export interface SweepOptions {
  /** Worker processes (default: the spec's, else the number of cores). */
  readonly workers?: number;
  /** Run the jobs through a distributed queue (`twinscope worker`s) instead of the local pool. */
  readonly queue?: QueueRunOptions;
  /** Where to accumulate the time breakdown (as {@link StudyOptions.breakdown}); default: a new one. */
  readonly breakdown?: Breakdown;
}

/** The outcome of a sweep. */
export interface SweepResult {
  readonly dir: string;
  readonly runDirs: string[];
  /** Runs trained by this call (0 when every run was already complete). */
  readonly trained: number;
  /**
   * Failed training jobs (`train:<run>`; nothing is embedded then) and groups that could not be
   * embedded (`embed:<group>`, e.g. a run with non-finite outputs).
   */
  readonly failed: PoolResult['failed'];
  /** Runs that diverged (not failures; left out of the embeddings). */
  readonly diverged: DivergedRun[];
  /** The embedding of all runs (no `embed.groupBy`); absent when a run failed (nothing is embedded then). */
  readonly embedding?: RunEmbedding;
  /** One embedding per group that could be embedded (with `embed.groupBy`); empty when a run failed. */
  readonly groups: EmbeddedGroup[];
  /** Measure jobs not run because their run failed to train. */
  readonly blocked: string[];
  /** The measured rows (results.arrow); empty without a `measure` block. */
  readonly rows: ResultRow[];
  /** Runs measured by this call (0 when every measurement was already recorded). */
  readonly measured: number;
  /** True when the jobs were enqueued and the call returned without waiting (`queue.detach`). */
  readonly detached?: boolean;
  /** Where the time and bytes went, by phase (as stored in status.json). */
  readonly breakdown?: StudyBreakdown;
}

/** The measurement file of `point` (measurements/KEY.arrow), keyed by the run's spec and the measure block. */
function measurementPath(dir: string, sweep: ResolvedSweepSpec, point: SweepPoint): string {
  const key = configHash({
    run: point.name,
    spec: point.spec,
    measure: sweep.measure,
    toolkit: toolkitVersion(),
  }).slice(0, 24);
  return join(dir, 'measurements', `${key}.arrow`);
}

/**
 * The problems of the `measure` block with the runs' step plans (`nTrain`: train split sizes by data
 * and seed): every step of `measure.at` must be a checkpoint of every run, and a PCA surface needs at
 * least 3 checkpoints up to each measured step. One line per problem, naming the run.
 */
function measurePlanProblems(sweep: ResolvedSweepSpec, nTrain: Map<string, number>): string[] {
  const m = sweep.measure;
  if (!m || (!m.at && !m.surfaces.some((s) => s.directions === 'pca'))) return [];
  const problems: string[] = [];
  for (const p of sweep.points) {
    const plan = planRun(
      p.spec,
      nTrain.get(canonical({ data: p.spec.data, seed: p.spec.dataSeed })) as number,
    );
    const checkpoints = plan.checkpoints;
    const steps = m.at ?? [checkpoints.at(-1) as number];
    const missing = steps.filter((s) => !checkpoints.includes(s));
    if (missing.length > 0) {
      problems.push(
        `measure.at: run ${p.name} has no checkpoint at step ${missing.join(', ')} ` +
          `(its checkpoints: ${checkpoints.join(', ')})`,
      );
    }
    if (m.surfaces.some((s) => s.directions === 'pca')) {
      const few = steps.filter((s) => checkpoints.filter((c) => c <= s).length < 3);
      if (few.length > 0) {
        problems.push(
          `measure.surface: a pca surface needs at least 3 checkpoints up to the measured step; run ${p.name} ` +
            `has fewer up to step ${few.join(', ')}`,
        );
      }
    }
  }
  return problems;
}

/**
 * Train every run of `sweep` into DIR/runs/ (skipping complete runs, resuming interrupted ones),
 * then embed all their checkpoints and write DIR/embedding.{arrow,json} (or, with
 * `embed.groupBy`, each group's embedding and the group summaries), and DIR/status.json. When a run
 * fails, the others still train and nothing is embedded; a group that cannot be embedded is skipped
 * and reported (see {@link SweepResult.failed}). The data and step plan of every run still to train
 * are checked before `dir` is created (DataError, SpecError: bad input), and `dir` is locked while
 * the sweep runs (util/folder-lock.ts): a second writer is refused with a LockedError.
 */
export async function runSweep(
  sweep: ResolvedSweepSpec,
  dir: string,
  events: StudyEvents = {},
  options: SweepOptions = {},
): Promise<SweepResult> {
  const nTrain = new Map<string, number>();
  const planned = sweep.measure?.at || sweep.measure?.surfaces.some((s) => s.directions === 'pca');
  for (const p of sweep.points) {
    if (!planned && runComplete(join(dir, 'runs', p.name), p)) continue;
    const key = canonical({ data: p.spec.data, seed: p.spec.dataSeed });
    if (!nTrain.has(key)) nTrain.set(key, loadDataset(p.spec.data, p.spec.dataSeed).train.n);
    try {
      planRun(p.spec, nTrain.get(key) as number);
    } catch (e) {
      throw e instanceof SpecError ? e.withSource(`run ${p.name}`) : e;
    }
  }
  const problems = measurePlanProblems(sweep, nTrain);
  if (problems.length > 0) throw new SpecError(problems);
  return withFolderLock(dir, () => runLockedSweep(sweep, dir, nTrain, events, options));
}

/** {@link runSweep} once its data are checked (`nTrain`: train split sizes by data and seed) and `dir` is locked. */
async function runLockedSweep(
  sweep: ResolvedSweepSpec,
  dir: string,
  nTrain: Map<string, number>,
  events: StudyEvents,
  options: SweepOptions,
): Promise<SweepResult> {
  const workers = options.workers ?? sweep.workers ?? Math.max(1, cpus().length);
  const runDir = (p: SweepPoint) => join(dir, 'runs', p.name);
  const breakdown = options.breakdown ?? new Breakdown();
  const clock = breakdown.clock;
  // Through a queue, workers elsewhere may be writing temp files now: leave them (see run-study.ts).
  if (!options.queue) removeStrayTemps(dir);
  await clock.timeWriting('results', [join(dir, 'sweep.json')], () =>
    writeSweepJson(dir, {
      name: sweep.name,
      base: sweep.base,
      grid: sweep.grid,
      embed: sweep.embed,
      ...(sweep.measure && { measure: sweep.measure }),
      runs: sweep.points.map((p) => ({ name: p.name, overrides: p.overrides, spec: p.spec })),
    }),
  );

  const todo = sweep.points.filter((p) => !runComplete(runDir(p), p));
  let runSteps = 0;
  for (const p of todo) {
    const key = canonical({ data: p.spec.data, seed: p.spec.dataSeed });
    if (!nTrain.has(key)) nTrain.set(key, loadDataset(p.spec.data, p.spec.dataSeed).train.n);
    runSteps += planRun(p.spec, nTrain.get(key) as number).totalSteps;
  }
  const jobs: PoolJob<StudyJob>[] = sweep.points.map((p) => ({
    id: `train:${p.name}`,
    deps: [],
    // Nothing forks from a sweep's runs: once finished they keep no momentum (Adam keeps its moments).
    job: { kind: 'train', dir: runDir(p), spec: p.spec, dropOptimizerState: true },
    done: () => runComplete(runDir(p), p),
  }));
  const measure = sweep.measure;
  const outputs = measure ? sweep.points.map((p) => measurementPath(dir, sweep, p)) : [];
  if (measure) {
    sweep.points.forEach((p, i) => {
      const out = outputs[i] as string;
      jobs.push({
        id: `measure:${p.name}`,
        deps: [`train:${p.name}`],
        job: {
          kind: 'measure-run',
          dir: runDir(p),
          sweep: sweep.name,
          run: p.name,
          measure,
          out,
          relativeDir: 'measurements',
        },
        done: () => measurementRecorded(out),
      });
    });
  }
  const pending = todo.length + outputs.filter((o) => !measurementRecorded(o)).length;
  const queue = options.queue && studyQueue(options.queue, dir);
  const running = queue ? await queueWorkerCount(queue.target) : workers;
  events.onRound?.({
    label: queue ? `${sweep.name} (queue)` : sweep.name,
    jobs: pending,
    runSteps,
    workers: running,
  });
  let trained = 0;
  let measured = 0;
  const poolWorkers = Math.min(workers, Math.max(1, pending));
  breakdown.jobsRun(
    queue ? 'queue' : poolWorkers <= 1 ? 'in-process' : 'workers',
    queue ? running : poolWorkers,
  );
  const pool = await runStudyJobs(jobs, {
    ...(queue && { queue }),
    workers: poolWorkers,
    ...(events.onSteps && { onSteps: events.onSteps }),
    onFinished: (job, outcome, message, times) => {
      // Every train job of a sweep trains one of its runs.
      breakdown.addJob(times, (phase) => (phase === 'train' ? 'train:sweep' : phase));
      if (outcome === 'done' && job.job.kind === 'train') trained++;
      if (outcome === 'done' && job.job.kind === 'measure-run') measured++;
      if (outcome !== 'skipped') events.onJob?.(job.id, outcome, message);
    },
  });
  const runDirs = sweep.points.map(runDir);
  if (pool.detached) {
    const none = { trained, failed: [], diverged: [], blocked: [], rows: [], measured, groups: [] };
    return { dir, runDirs, ...none, detached: true };
  }
  // What went wrong, for reports (the same shape as a study's status.json).
  const failed: PoolResult['failed'] = [...pool.failed];
  const blocked = [...pool.blocked];
  const diverged = divergedRuns(
    join(dir, 'runs'),
    sweep.points.map((p) => p.name),
  );
  // results.arrow (every measured row), then every status.json recording its digest.
  const rows: ResultRow[] = [];
  const files: Record<string, FileDigest> = {};
  await clock.timeWriting('results', [join(dir, 'results.arrow')], () => {
    if (measure) {
      for (const out of outputs) rows.push(...(readMeasurement(out) ?? []));
      files['results.arrow'] = writeResults(join(dir, 'results.arrow'), rows);
    } else {
      rmSync(join(dir, 'results.arrow'), { force: true });
    }
  });
  /** status.json, with the breakdown so far; returned with it. */
  const status = (complete: boolean) => {
    const times = breakdown.toJson();
    writeStatus(dir, { complete, failed, blocked, controlFailures: [], diverged, files, breakdown: times });
    return times;
  };
  const first = status(false);
  const base = { dir, runDirs, trained, failed, diverged, blocked, rows, measured };
  // A run that failed to train: nothing is embedded (a failed measurement does not stop the embedding).
  if (failed.some((f) => f.id.startsWith('train:'))) return { ...base, groups: [], breakdown: first };

  const dirOf = new Map(sweep.points.map((p) => [p.name, runDir(p)]));
  const embedOptions = {
    method: sweep.embed.method,
    components: sweep.embed.components,
    examples: sweep.embed.examples,
    ...(sweep.embed.sigma !== undefined && { sigma: sweep.embed.sigma }),
  };
  const divergedNames = new Set(diverged.map((d) => d.run));
  const embedPhase = `embedding:${sweep.embed.method}`;
  // The files of an embedding: the sweep's own at its top level, or a group's whole folder.
  const embedFiles = (outDir: string) =>
    outDir === dir ? ['key.json', 'embedding.arrow', 'embedding.json'].map((f) => join(dir, f)) : [outDir];
  // Keyed by the runs and options: a re-run of an unchanged sweep reads its embeddings back.
  // Diverged runs are left out (with the reason, in key.json); none left: no embedding.
  const embed = async (names: readonly string[], outDir: string, clear: () => void) => {
    const kept = names.filter((name) => !divergedNames.has(name));
    const excluded = names
      .filter((name) => divergedNames.has(name))
      .map((name) => {
        const d = readRunJson(dirOf.get(name) as string).diverged as Divergence;
        return { name, reason: `diverged ${formatDivergence(d)}` };
      });
    if (excluded.length > 0) {
      const names = excluded.map((e) => e.name).join(', ');
      events.onLog?.(`${excluded.length} diverged run(s) left out: ${names}`);
    }
    if (kept.length === 0) {
      events.onLog?.('every run diverged: nothing to embed');
      clear();
      return undefined;
    }
    const runs = kept.map((name) => {
      const runDir = dirOf.get(name) as string;
      return { name, dir: runDir, json: readRunJson(runDir) };
    });
    const { embedding } = await clock.timeWriting(embedPhase, embedFiles(outDir), () =>
      embedKeyed(outDir, runs, embedOptions, excluded, {
        clear,
        relativeTo: dir,
        ...(events.onLog && { log: events.onLog }),
      }),
    );
    return { embedding, runs: kept };
  };
  removeStaleEmbeddings(dir, sweep);
  if (sweep.embed.groupBy.length === 0) {
    const embedded = await embed(
      sweep.points.map((p) => p.name),
      dir,
      () => removeOutputs(dir, ['key.json', 'embedding.arrow', 'embedding.json']),
    );
    const times = status(failed.length === 0 && blocked.length === 0);
    const result = { ...base, groups: [], breakdown: times };
    return embedded ? { ...result, embedding: embedded.embedding } : result;
  }
  const groups: EmbeddedGroup[] = [];
  for (const group of sweep.groups) {
    events.onLog?.(`group ${group.name}: ${group.points.length} runs`);
    const groupDir = join(dir, 'groups', group.name);
    const clear = () => rmSync(groupDir, { recursive: true, force: true });
    // A group that cannot be embedded (e.g. non-finite outputs) is reported; the others still are.
    let embedded: Awaited<ReturnType<typeof embed>>;
    try {
      embedded = await embed(group.points, groupDir, clear);
    } catch (e) {
      if (!(e instanceof EmbedInputError)) throw e;
      failed.push({ id: `embed:${group.name}`, message: e.message });
      events.onLog?.(`group ${group.name}: not embedded: ${e.message}`);
      clear();
      continue;
    }
    // groups.json lists the runs embedded (the diverged ones left out).
    if (embedded) groups.push({ group: { ...group, points: embedded.runs }, embedding: embedded.embedding });
  }
  await clock.timeWriting('results', [join(dir, 'groups.json'), join(dir, 'groups.arrow')], () =>
    writeGroupSummary(dir, sweep.embed, groups),
  );
  const times = status(failed.length === 0 && blocked.length === 0);
  return { ...base, groups, breakdown: times };
}

/** Remove `files` (and folders) of `dir`. */
function removeOutputs(dir: string, files: readonly string[]): void {
  for (const f of files) rmSync(join(dir, f), { recursive: true, force: true });
}

/**
 * Remove embedding outputs this sweep will not rewrite: the single embedding when it is grouped, the
 * groups when it is not, and directories of groups it no longer has (after a grid change).
 */
function removeStaleEmbeddings(dir: string, sweep: ResolvedSweepSpec): void {
  if (sweep.embed.groupBy.length === 0) {
    removeOutputs(dir, ['groups', 'groups.json', 'groups.arrow']);
    return;
  }
  removeOutputs(dir, ['key.json', 'embedding.arrow', 'embedding.json']);
  const keep = new Set(sweep.groups.map((g) => g.name));
  const groupsDir = join(dir, 'groups');
  if (!existsSync(groupsDir)) return;
  for (const g of readdirSync(groupsDir)) {
    if (!keep.has(g)) rmSync(join(groupsDir, g), { recursive: true, force: true });
  }
}
