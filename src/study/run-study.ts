/**
 * Run a twin study end to end into one directory:
 *
 * ```
 * DIR/study.json           the resolved spec, the compared pairs and the step plan
 * DIR/runs/<name>/         every run (parents, twins, baselines), each a resumable run directory
 * DIR/measurements/<key>.arrow   the rows of one pair; key = hash of the pair's runs and options
 * DIR/aligned/<twin>/<method>/   B aligned to A, as a run (when measure.align.exportAligned)
 * DIR/results.arrow        every row: pairs, Lyapunov exponents, stability onsets (long form)
 * DIR/embedding/s<seed>/   embedding.arrow, embedding.json, key.json: every complete run of the
 *                          seed embedded together (when measure.embedding; see embed-study.ts)
 * DIR/status.json          what failed: jobs, jobs blocked by them, σ = 0 control, embeddings;
 *                          and which runs diverged
 * ```
 *
 * Figures are not drawn here: the report (report/html.ts) draws them from these files.
 *
 * Every job's output is keyed by its configuration: a re-run skips what is complete and resumes
 * what was interrupted. The σ = 0 control is checked after measuring: any non-zero L2 of a σ = 0
 * twin fails the study (after its results are written, so they can be inspected).
 *
 * A run that diverges is a result, not a failure: its job succeeds, a re-run does not retrain it,
 * its pairs are measured up to the divergence (`diverged` rows, see measure-pair.ts), embeddings
 * leave it out, and status.json lists it under `diverged`.
 */
import { rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { loadDataset } from '../data/load.js';
import type { PoolResult } from '../exec/pool.js';
import { type QueueTarget, queueWorkerCount } from '../exec/queue.js';
import { modelGraphSpec } from '../model/graph.js';
import { readMeasurement } from '../results/measurement-files.js';
import { type ResultRow, writeResults } from '../results/rows.js';
import {
  type DivergedRun,
  type StudyBreakdown,
  type StudyJson,
  writeStatus,
  writeStudyJson,
} from '../results/study-files.js';
import { withFolderLock } from '../util/folder-lock.js';
import { removeStrayTemps } from '../util/stray-temps.js';
import { Breakdown } from './breakdown.js';
import { divergedRuns } from './completeness.js';
import { controlFailures, lyapunovRows } from './derived-rows.js';
import { embedStudy, type StudyEmbedding } from './embed-study.js';
import { runStudyJobs, type StudyQueue } from './jobs.js';
import { searchOnset } from './onset.js';
import { planStudy, runNames, type StudyPlan } from './plan.js';
import { recordQueuedJobs } from './queue-file.js';
import { toQueuedJob } from './queued-jobs.js';
import { lockstepByDefault, type ResolvedStudySpec } from './spec.js';
import { studyJobs } from './study-jobs.js';

/** What a study (or a sweep) reports while it runs. */
export interface StudyEvents {
  /** Before each execution round: jobs to run (not yet complete) and run-steps they will train. */
  readonly onRound?: (info: { label: string; jobs: number; runSteps: number; workers: number }) => void;
  readonly onSteps?: (n: number) => void;
  readonly onJob?: (id: string, outcome: 'done' | 'skipped' | 'failed', message?: string) => void;
  /** Progress of the embedding (measure.embedding, or a sweep's). */
  readonly onLog?: (message: string) => void;
}

/** Options of {@link runStudy}. */
export interface StudyOptions {
  /** Worker processes (default: the spec's, else cores / threadsPerWorker). */
  readonly workers?: number;
  /** Run the jobs through a distributed queue (`twinscope worker`s) instead of the local pool. */
  readonly queue?: QueueRunOptions;
  /**
   * Where to accumulate the time breakdown (study/breakdown.ts), e.g. one the caller goes on with
   * (the report's time); default: a new one. It is stored in status.json and returned.
   */
  readonly breakdown?: Breakdown;
}

/** How a study or sweep runs through the distributed queue (`run --queue`). */
export interface QueueRunOptions {
  /** The queue's Redis (a parsed redis:// URL: `parseQueueUrl`). */
  readonly target: QueueTarget;
  /** Return right after enqueueing (no results are written; the same call later collects them). */
  readonly detach?: boolean;
  /** Attempts per job before it fails for good (default 3). */
  readonly attempts?: number;
  /** Delay before a job's first retry in ms, doubled at each retry (default 5000). */
  readonly backoffMs?: number;
}

/** The queue options of the jobs of the study (or sweep) folder `dir`: paths relative to it, ids recorded in DIR/queue.json. */
export function studyQueue(queue: QueueRunOptions, dir: string): StudyQueue {
  const abs = resolve(dir);
  return {
    ...queue,
    dir: abs,
    toQueued: (job) => toQueuedJob(job, abs),
    onEnqueued: ({ ids }) => recordQueuedJobs(abs, ids),
  };
}

/** The outcome of a study. */
export interface StudyResult {
  readonly dir: string;
  readonly plan: StudyPlan;
  readonly rows: ResultRow[];
  /** One embedding per parent seed (with measure.embedding; empty otherwise). */
  readonly embeddings: StudyEmbedding[];
  /** Failed jobs, and failed embeddings as `embed:s<seed>`. */
  readonly failed: PoolResult['failed'];
  readonly blocked: string[];
  /** σ = 0 twins whose L2 was not exactly 0 (empty when the control passed). */
  readonly controlFailures: string[];
  /** Runs that diverged (not failures: their pairs are measured up to the divergence). */
  readonly diverged: DivergedRun[];
  /** True when the jobs were enqueued and the call returned without waiting (`queue.detach`): nothing else is set. */
  readonly detached?: boolean;
  /** Where the time and bytes went, by phase (as stored in status.json). */
  readonly breakdown?: StudyBreakdown;
}

/** The σ = 0 control failed: the twins differ by more than the perturbation. */
export class ControlError extends Error {
  constructor(readonly failures: readonly string[]) {
    super(
      `σ = 0 control failed: ${failures.length} twin(s) with zero perturbation differ from their reference:\n  ${failures.join('\n  ')}`,
    );
    this.name = 'ControlError';
  }
}

/** study.json: the resolved spec, the step plan and the compared pairs. */
function writeStudy(dir: string, study: ResolvedStudySpec, plan: StudyPlan): void {
  writeStudyJson(dir, {
    spec: study as unknown as StudyJson['spec'],
    stepsPerEpoch: plan.stepsPerEpoch,
    totalSteps: plan.totalSteps,
    checkpoints: plan.checkpoints,
    twins: plan.twins,
  });
}

/**
 * Train and measure `study` into `dir`. See the module comment for the layout. The data and the
 * step plan are checked before `dir` is created (DataError, SpecError: bad input), and `dir` is
 * locked while the study runs (util/folder-lock.ts): a second writer is refused with a LockedError.
 */
export async function runStudy(
  study: ResolvedStudySpec,
  dir: string,
  events: StudyEvents = {},
  options: StudyOptions = {},
): Promise<StudyResult> {
  const data = loadDataset(study.base.data, study.base.dataSeed);
  const nTrain = data.train.n;
  planStudy(study, nTrain);
  const { model, loss } = study.base;
  const parameters = modelGraphSpec(model, data.inputDim, data.outputDim, loss).layout.size;
  const resolved = { ...study, lockstep: lockstepByDefault(study.lockstep, model.kind, parameters) };
  return withFolderLock(dir, () => runLockedStudy(resolved, dir, nTrain, events, options));
}

/** {@link runStudy} once its data are checked and `dir` is locked. */
async function runLockedStudy(
  study: ResolvedStudySpec,
  dir: string,
  nTrain: number,
  events: StudyEvents,
  options: StudyOptions,
): Promise<StudyResult> {
  const workers =
    options.workers ?? study.workers ?? Math.max(1, Math.floor(cpus().length / study.threadsPerWorker));
  const failed: PoolResult['failed'] = [];
  const blocked: string[] = [];
  const rowsOf = new Map<string, ResultRow[]>();
  const queue = options.queue && studyQueue(options.queue, dir);
  let detached = false;
  const breakdown = options.breakdown ?? new Breakdown();
  const clock = breakdown.clock;
  // Train jobs report `train`: a parent's is the base run, any other a baseline (`init`).
  const parents = new Set(study.seeds.map((seed) => `train:${runNames.parent(seed)}`));

  /** Execute a plan (skipping finished jobs) and read its measurement rows. */
  const execute = async (plan: StudyPlan, label: string) => {
    const { jobs, runSteps, outputs } = studyJobs(study, plan, dir);
    const running = queue ? await queueWorkerCount(queue.target) : workers;
    events.onRound?.({
      label: queue ? `${label} (queue)` : label,
      jobs: jobs.length,
      runSteps,
      workers: running,
    });
    breakdown.jobsRun(queue ? 'queue' : workers <= 1 ? 'in-process' : 'workers', running);
    const result = await runStudyJobs(jobs, {
      workers,
      ...(events.onSteps && { onSteps: events.onSteps }),
      onFinished: (job, outcome, message, times) => {
        breakdown.addJob(times, (phase) =>
          phase !== 'train' ? phase : parents.has(job.id) ? 'train:base' : 'train:baseline',
        );
        events.onJob?.(job.id, outcome, message);
      },
      ...(queue && { queue }),
    });
    if (result.detached) {
      detached = true;
      return;
    }
    for (const f of result.failed) if (!failed.some((x) => x.id === f.id)) failed.push(f);
    for (const b of result.blocked) if (!blocked.includes(b)) blocked.push(b);
    const stop = clock.start('results');
    for (const [name, path] of outputs) {
      const rows = readMeasurement(path);
      if (rows) rowsOf.set(name, rows);
    }
    stop();
  };

  // status.json describes a finished study: gone while it runs. Files a killed writer left go too.
  rmSync(join(dir, 'status.json'), { force: true });
  // Through a queue, workers elsewhere may be writing temp files now: leave them (run directories
  // are cleaned by the worker that resumes them, under their own locks).
  if (!queue) removeStrayTemps(dir);
  let plan = planStudy(study, nTrain);
  await clock.timeWriting('results', [join(dir, 'study.json')], () => writeStudy(dir, study, plan));
  await execute(plan, 'grid');
  if (detached) {
    const none = { rows: [], embeddings: [], failed: [], blocked: [], controlFailures: [], diverged: [] };
    return { dir, plan, ...none, detached: true };
  }
  const onsetRows: ResultRow[] = [];
  if (study.onset) {
    const searched = await searchOnset(
      study,
      plan,
      (extra) => {
        plan = planStudy(study, nTrain, extra);
        return execute(plan, `onset search: fork step(s) ${extra.join(', ')}`).then(() => plan);
      },
      rowsOf,
    );
    onsetRows.push(...searched);
    await clock.timeWriting('results', [join(dir, 'study.json')], () => writeStudy(dir, study, plan));
  }
  const pairRows = plan.twins.flatMap((t) => rowsOf.get(t.runB) ?? []);
  const lyapunov = study.measure.lyapunov
    ? lyapunovRows(study.name, plan.twins, pairRows, study.measure.lyapunov.window)
    : [];
  const rows = [...pairRows, ...lyapunov, ...onsetRows];
  const embedPhase = `embedding:${study.measure.embedding?.method ?? 'none'}`;
  const embeddings = study.measure.embedding
    ? await clock.timeWriting(embedPhase, [join(dir, 'embedding')], () =>
        embedStudy(study, plan, dir, events.onLog),
      )
    : await embedStudy(study, plan, dir, events.onLog);
  for (const e of embeddings) {
    if (e.outcome === 'failed') failed.push({ id: `embed:s${e.seed}`, message: e.error ?? 'failed' });
  }
  const control = controlFailures(plan.twins, pairRows);
  const planned = [
    ...plan.parents,
    ...plan.groups.flatMap((g) => g.members),
    ...plan.seedTwins,
    ...plan.baselines,
  ];
  const diverged = divergedRuns(
    join(dir, 'runs'),
    planned.map((r) => r.name),
  );
  // results.arrow, then status.json recording its digest. What went wrong, for reports: failed
  // jobs, jobs blocked by them, σ = 0 control failures; and the runs that diverged (a result: they
  // do not make the study incomplete).
  const results = await clock.timeWriting('results', [join(dir, 'results.arrow')], () =>
    writeResults(join(dir, 'results.arrow'), rows),
  );
  const times = breakdown.toJson();
  writeStatus(dir, {
    complete: failed.length === 0 && blocked.length === 0 && control.length === 0,
    failed,
    blocked,
    controlFailures: control,
    diverged,
    files: { 'results.arrow': results },
    breakdown: times,
  });
  const result = { dir, plan, rows, embeddings, failed, blocked, controlFailures: control, diverged };
  return { ...result, breakdown: times };
}
