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
 * DIR/plots/               SVG, PNG and Vega-Lite JSON of every plot
 * DIR/status.json          what failed: jobs, jobs blocked by them, σ = 0 control, embeddings
 * ```
 *
 * Every job's output is keyed by its configuration: a re-run skips what is complete and resumes
 * what was interrupted. The σ = 0 control is checked after measuring: any non-zero L2 of a σ = 0
 * twin fails the study (after its results are written, so they can be inspected).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { loadDataset } from '../data/load.js';
import { fitLogSlope, lyapunovExponents } from '../measure/lyapunov.js';
import { type ResultRow, readResults, writeResults } from '../measure/results.js';
import { butterflyPlots } from '../report/butterfly-plots.js';
import { writePlots } from '../report/plot.js';
import { canonical, readRunJson, writeJsonAtomic } from '../train/run.js';
import { toolkitVersion } from '../version.js';
import { embedStudy, type StudyEmbedding } from './embed-study.js';
import type { StudyJob } from './jobs.js';
import { type PlannedRun, planStudy, runNames, type StudyPlan } from './plan.js';
import { type PoolJob, type PoolResult, runPool } from './pool.js';
import type { MeasureSpec, ResolvedStudySpec } from './spec.js';
import { METRICS, type TwinInfo } from './types.js';

/** What a study (or a sweep) reports while it runs. */
export interface StudyEvents {
  /** Before each execution round: jobs to run (not yet complete) and run-steps they will train. */
  readonly onRound?: (info: { label: string; jobs: number; runSteps: number; workers: number }) => void;
  readonly onSteps?: (n: number) => void;
  readonly onJob?: (id: string, outcome: 'done' | 'skipped' | 'failed', message?: string) => void;
  /** Progress of the embedding (measure.embedding, or a sweep's). */
  readonly onLog?: (message: string) => void;
}

export interface StudyOptions {
  /** Worker processes (default: the spec's, else cores / threadsPerWorker). */
  readonly workers?: number;
}

/** The outcome of a study. */
export interface StudyResult {
  readonly dir: string;
  readonly plan: StudyPlan;
  readonly rows: ResultRow[];
  /** Plot files written (SVG paths). */
  readonly plots: string[];
  /** One embedding per parent seed (with measure.embedding; empty otherwise). */
  readonly embeddings: StudyEmbedding[];
  /** Failed jobs, and failed embeddings as `embed:s<seed>`. */
  readonly failed: PoolResult['failed'];
  readonly blocked: string[];
  /** σ = 0 twins whose L2 was not exactly 0 (empty when the control passed). */
  readonly controlFailures: string[];
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

const hash = (value: unknown) => createHash('sha256').update(canonical(value)).digest('hex');

/** The pair measurements of `measure` (the embedding is not one: it does not change a pair's rows). */
function pairMeasure(measure: MeasureSpec): MeasureSpec {
  const { embedding: _embedding, ...pairs } = measure;
  return pairs;
}

/**
 * Whether `dir` holds the complete run `planned` (same spec, same perturbation, same training mode).
 * The perturbation's norm is left out: it is only known once the perturbation is drawn.
 */
export function runComplete(
  dir: string,
  planned: Pick<PlannedRun, 'spec' | 'fork'>,
  lockstep = false,
): boolean {
  if (!existsSync(join(dir, 'run.json'))) return false;
  const run = readRunJson(dir);
  if (run.status !== 'complete' || canonical(run.spec) !== canonical(planned.spec)) return false;
  const { norm: _norm, ...perturbation } = (run.lineage.perturbation ?? {}) as Record<string, unknown>;
  const expected = planned.fork?.perturbation ?? {};
  return (
    canonical(perturbation) === canonical(expected) &&
    Boolean((run.lineage as { lockstep?: boolean }).lockstep) === (lockstep && planned.fork !== undefined)
  );
}

/** Run-steps a run still needs: all of them unless complete (resumed runs count whole; an estimate). */
function stepsLeft(dir: string, planned: PlannedRun, lockstep: boolean, total: number): number {
  return runComplete(dir, planned, lockstep) ? 0 : total - (planned.fork?.step ?? 0);
}

/** The jobs of a plan, with their dependencies and completion checks. */
function studyJobs(study: ResolvedStudySpec, plan: StudyPlan, dir: string) {
  const runsDir = join(dir, 'runs');
  const runDir = (name: string) => join(runsDir, name);
  const producer = new Map<string, string>();
  const jobs: PoolJob[] = [];
  let runSteps = 0;
  const add = (id: string, deps: string[], job: StudyJob, runs: PlannedRun[], lockstep: boolean) => {
    const done = () => runs.every((r) => runComplete(runDir(r.name), r, lockstep));
    for (const r of runs) {
      producer.set(r.name, id);
      runSteps += stepsLeft(runDir(r.name), r, lockstep, plan.totalSteps);
    }
    jobs.push({ id, deps, job, done });
  };
  for (const r of [...plan.parents, ...plan.baselines]) {
    add(`train:${r.name}`, [], { kind: 'train', dir: runDir(r.name), spec: r.spec }, [r], false);
  }
  const lockstepOk = study.lockstep && study.base.engine === 'ort';
  for (const g of plan.groups) {
    const parentJob = `train:${g.parent}`;
    const member = (r: PlannedRun) => ({
      dir: runDir(r.name),
      ...(r.fork?.perturbation && { perturbation: r.fork.perturbation }),
    });
    const base = { kind: 'fork', parentDir: runDir(g.parent), forkStep: g.forkStep } as const;
    if (lockstepOk && g.members.length > 1) {
      const job = { ...base, lockstep: true, members: g.members.map(member) };
      add(`fork:${g.parent}@${g.forkStep}`, [parentJob], job, [...g.members], true);
    } else {
      for (const r of g.members) {
        add(`fork:${r.name}`, [parentJob], { ...base, lockstep: false, members: [member(r)] }, [r], false);
      }
    }
  }
  for (const r of plan.seedTwins) {
    const fork = r.fork as NonNullable<PlannedRun['fork']>;
    const job: StudyJob = {
      kind: 'fork',
      parentDir: runDir(fork.parent),
      forkStep: fork.step,
      lockstep: false,
      members: [{ dir: runDir(r.name), spec: r.spec }],
    };
    add(`fork:${r.name}`, [`train:${fork.parent}`], job, [r], false);
  }
  const planned = new Map(
    [...plan.parents, ...plan.baselines, ...plan.seedTwins, ...plan.groups.flatMap((g) => g.members)].map(
      (r) => [r.name, r],
    ),
  );
  const outputs = new Map<string, string>();
  const measure = pairMeasure(study.measure);
  for (const twin of plan.twins) {
    const key = hash({
      twin,
      measure,
      a: planned.get(twin.reference),
      b: planned.get(twin.name),
      lockstep: lockstepOk,
      toolkit: toolkitVersion(),
    }).slice(0, 24);
    const out = join(dir, 'measurements', `${key}.arrow`);
    outputs.set(twin.name, out);
    const deps = [producer.get(twin.reference), producer.get(twin.name)].filter((d): d is string => !!d);
    const job: StudyJob = {
      kind: 'measure',
      root: runsDir,
      study: study.name,
      twin,
      measure,
      out,
      ...(study.measure.align?.exportAligned && { alignedDir: join(dir, 'aligned', twin.name) }),
    };
    jobs.push({ id: `measure:${twin.name}`, deps: [...new Set(deps)], job, done: () => existsSync(out) });
  }
  return { jobs, runSteps, outputs };
}

/** Lyapunov exponents of every twin from its L2 rows: per window, and one fit over all steps. */
function lyapunovRows(study: string, twins: readonly TwinInfo[], rows: readonly ResultRow[], window: number) {
  const out: ResultRow[] = [];
  for (const twin of twins) {
    const l2 = rows
      .filter((r) => r.runB === twin.name && r.metric === METRICS.l2 && r.layer === null)
      .sort((a, b) => a.step - b.step);
    const steps = l2.map((r) => r.step);
    const d = l2.map((r) => r.value);
    if (d.filter((v) => v > 0).length < 2) continue;
    const base = {
      study,
      runA: twin.reference,
      runB: twin.name,
      metric: METRICS.lyapunov,
      layer: null,
      split: null,
    };
    const fits = [
      ...lyapunovExponents(steps, d, { window }).map((f) => ({ f, window: window as number | 'all' })),
      { f: fitLogSlope(steps, d), window: 'all' as const },
    ];
    for (const { f, window: w } of fits) {
      out.push({
        ...base,
        step: f.toStep,
        value: f.exponent,
        // JSON has no NaN: an undefined standard error (fewer than 3 points) is stored as null.
        options: {
          window: w,
          fromStep: f.fromStep,
          toStep: f.toStep,
          stderr: Number.isFinite(f.stderr) ? f.stderr : null,
          points: f.points,
        },
      });
    }
  }
  return out;
}

/** σ = 0 weight twins must have L2 exactly 0 at every measured step. */
function controlFailures(twins: readonly TwinInfo[], rows: readonly ResultRow[]): string[] {
  const out: string[] = [];
  for (const twin of twins) {
    if (twin.sigma !== 0 || (twin.kind !== 'gaussian' && twin.kind !== 'batch')) continue;
    for (const r of rows) {
      if (r.runB === twin.name && r.metric === METRICS.l2 && r.layer === null && r.value !== 0) {
        out.push(`${twin.name}: L2 = ${r.value} at step ${r.step}`);
      }
    }
  }
  return out;
}

/** study.json: the resolved spec, the step plan and the compared pairs. */
function writeStudyJson(dir: string, study: ResolvedStudySpec, plan: StudyPlan): void {
  writeJsonAtomic(join(dir, 'study.json'), {
    format: 1,
    toolkit: toolkitVersion(),
    spec: study,
    stepsPerEpoch: plan.stepsPerEpoch,
    totalSteps: plan.totalSteps,
    checkpoints: plan.checkpoints,
    twins: plan.twins,
  });
}

/** Train and measure `study` into `dir`. See the module comment for the layout. */
export async function runStudy(
  study: ResolvedStudySpec,
  dir: string,
  events: StudyEvents = {},
  options: StudyOptions = {},
): Promise<StudyResult> {
  mkdirSync(dir, { recursive: true });
  const nTrain = loadDataset(study.base.data, study.base.dataSeed).train.n;
  const workers =
    options.workers ?? study.workers ?? Math.max(1, Math.floor(cpus().length / study.threadsPerWorker));
  const failed: PoolResult['failed'] = [];
  const blocked: string[] = [];
  const rowsOf = new Map<string, ResultRow[]>();

  /** Execute a plan (skipping finished jobs) and read its measurement rows. */
  const execute = async (plan: StudyPlan, label: string) => {
    const { jobs, runSteps, outputs } = studyJobs(study, plan, dir);
    events.onRound?.({ label, jobs: jobs.length, runSteps, workers });
    const result = await runPool(jobs, {
      workers,
      ...(events.onSteps && { onSteps: events.onSteps }),
      onFinished: (job, outcome, message) => events.onJob?.(job.id, outcome, message),
    });
    for (const f of result.failed) if (!failed.some((x) => x.id === f.id)) failed.push(f);
    for (const b of result.blocked) if (!blocked.includes(b)) blocked.push(b);
    for (const [name, path] of outputs) if (existsSync(path)) rowsOf.set(name, readResults(path));
  };

  let plan = planStudy(study, nTrain);
  writeStudyJson(dir, study, plan);
  await execute(plan, 'grid');
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
    writeStudyJson(dir, study, plan);
  }
  const pairRows = plan.twins.flatMap((t) => rowsOf.get(t.name) ?? []);
  const lyapunov = study.measure.lyapunov
    ? lyapunovRows(study.name, plan.twins, pairRows, study.measure.lyapunov.window)
    : [];
  const rows = [...pairRows, ...lyapunov, ...onsetRows];
  writeResults(join(dir, 'results.arrow'), rows);
  const plots = (await writePlots(join(dir, 'plots'), butterflyPlots(rows, plan.twins))).map((p) => p.svg);
  const embeddings = await embedStudy(study, plan, dir, events.onLog);
  for (const e of embeddings) {
    plots.push(...e.plots);
    if (e.outcome === 'failed') failed.push({ id: `embed:s${e.seed}`, message: e.error ?? 'failed' });
  }
  const control = controlFailures(plan.twins, pairRows);
  // What went wrong, for reports: failed jobs, jobs blocked by them, σ = 0 control failures.
  writeJsonAtomic(join(dir, 'status.json'), {
    complete: failed.length === 0 && blocked.length === 0 && control.length === 0,
    failed,
    blocked,
    controlFailures: control,
  });
  return { dir, plan, rows, plots, embeddings, failed, blocked, controlFailures: control };
}

/**
 * Stability onset (per seed and σ): bisection over the parent's checkpoint steps before the last
 * for the earliest fork step t whose twins stay linearly connected — mean error barrier (linear
 * convention, at the last step, test split or train when there is none) below the threshold.
 * Assumes stability is monotone in t; the evaluated (t, barrier) pairs are stored in the options.
 */
async function searchOnset(
  study: ResolvedStudySpec,
  grid: StudyPlan,
  ensure: (extraForkSteps: number[]) => Promise<StudyPlan>,
  rowsOf: ReadonlyMap<string, ResultRow[]>,
): Promise<ResultRow[]> {
  const onset = study.onset as NonNullable<ResolvedStudySpec['onset']>;
  const candidates = grid.checkpoints.filter((c) => c < grid.totalSteps);
  const extra = new Set<number>();
  const out: ResultRow[] = [];
  const sigmas = onset.kind === 'seed' ? [0] : onset.sigmas;
  for (const seed of study.seeds) {
    for (const sigma of sigmas) {
      const evaluated = new Map<number, number>();
      const barrierAt = async (t: number): Promise<number> => {
        const known = evaluated.get(t);
        if (known !== undefined) return known;
        extra.add(t);
        const plan = await ensure([...extra].sort((a, b) => a - b));
        const twins = plan.twins.filter(
          (w) =>
            w.seed === seed &&
            w.forkStep === t &&
            w.kind === onset.kind &&
            w.sigma === sigma &&
            w.repeat < onset.repeats,
        );
        const values = twins.flatMap((w) =>
          (rowsOf.get(w.name) ?? []).filter(
            (r) =>
              r.metric === METRICS.errorBarrier &&
              r.options.convention === 'linear' &&
              r.step === plan.totalSteps,
          ),
        );
        const test = values.filter((r) => r.split === 'test');
        const use = test.length > 0 ? test : values;
        const mean = use.reduce((s, r) => s + r.value, 0) / use.length;
        evaluated.set(t, mean);
        return mean;
      };
      const stable = async (i: number) => (await barrierAt(candidates[i] as number)) < onset.threshold;
      let onsetStep = Number.NaN;
      let lo = 0;
      let hi = candidates.length - 1;
      if (await stable(0)) onsetStep = candidates[0] as number;
      else if (await stable(hi)) {
        // invariant: candidates[lo] unstable, candidates[hi] stable
        while (hi - lo > 1) {
          const mid = (lo + hi) >> 1;
          if (await stable(mid)) hi = mid;
          else lo = mid;
        }
        onsetStep = candidates[hi] as number;
      }
      out.push({
        study: study.name,
        runA: runNames.parent(seed),
        runB: null,
        step: Number.isNaN(onsetStep) ? grid.totalSteps : onsetStep,
        metric: METRICS.stabilityOnset,
        layer: null,
        split: null,
        value: onsetStep,
        options: {
          kind: onset.kind,
          sigma,
          threshold: onset.threshold,
          repeats: onset.repeats,
          found: !Number.isNaN(onsetStep),
          evaluated: [...evaluated].sort(([a], [b]) => a - b),
        },
      });
    }
  }
  return out;
}
