/**
 * The job graph of a twin study: train every parent and baseline, fork the twins of each fork step
 * (in lock-step or one by one), measure every pair. Each job carries a completion check, so the
 * executor skips what an earlier run finished; a pair's measurement file is named by the hash of
 * everything that determines its rows.
 */
import { join } from 'node:path';
import type { PoolJob } from '../exec/pool.js';
import { measurementRecorded } from '../results/measurement-files.js';
import { configHash } from '../util/json.js';
import { toolkitVersion } from '../version.js';
import { runComplete } from './completeness.js';
import type { StudyJob } from './jobs.js';
import type { PlannedRun, StudyPlan } from './plan.js';
import type { MeasureSpec, ResolvedStudySpec } from './spec.js';

/** The pair measurements of `measure` (the embedding is not one: it does not change a pair's rows). */
function pairMeasure(measure: MeasureSpec): MeasureSpec {
  const { embedding: _embedding, ...pairs } = measure;
  return pairs;
}

/** Run-steps a run still needs: all of them unless complete (resumed runs count whole; an estimate). */
function stepsLeft(dir: string, planned: PlannedRun, lockstep: boolean, total: number): number {
  return runComplete(dir, planned, lockstep) ? 0 : total - (planned.fork?.step ?? 0);
}

/** The jobs of a plan, with their dependencies and completion checks. */
export function studyJobs(study: ResolvedStudySpec, plan: StudyPlan, dir: string) {
  const runsDir = join(dir, 'runs');
  const runDir = (name: string) => join(runsDir, name);
  const producer = new Map<string, string>();
  const jobs: PoolJob<StudyJob>[] = [];
  let runSteps = 0;
  const add = (id: string, deps: string[], job: StudyJob, runs: PlannedRun[], lockstep: boolean) => {
    const done = () => runs.every((r) => runComplete(runDir(r.name), r, lockstep));
    for (const r of runs) {
      producer.set(r.name, id);
      runSteps += stepsLeft(runDir(r.name), r, lockstep, plan.totalSteps);
    }
    jobs.push({ id, deps, job, done });
  };
  // Optimizer state is kept where a fork reads it: the parents (every checkpoint, since the
  // stability-onset search may fork at any of them). Twins and baselines drop it when they finish
  // (SGD's momentum; Adam's moments stay: see TrainRunOptions.dropOptimizerState).
  for (const r of plan.parents) {
    add(`train:${r.name}`, [], { kind: 'train', dir: runDir(r.name), spec: r.spec }, [r], false);
  }
  for (const r of plan.baselines) {
    const job = { kind: 'train', dir: runDir(r.name), spec: r.spec, dropOptimizerState: true } as const;
    add(`train:${r.name}`, [], job, [r], false);
  }
  const lockstepOk = study.lockstep === true && study.base.engine === 'ort';
  for (const g of plan.groups) {
    const parentJob = `train:${g.parent}`;
    const member = (r: PlannedRun) => ({
      dir: runDir(r.name),
      ...(r.fork?.perturbation && { perturbation: r.fork.perturbation }),
    });
    const base = {
      kind: 'fork',
      parentDir: runDir(g.parent),
      forkStep: g.forkStep,
      dropOptimizerState: true,
    } as const;
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
      dropOptimizerState: true,
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
    const key = configHash({
      twin,
      measure,
      a: planned.get(twin.runA),
      b: planned.get(twin.runB),
      lockstep: lockstepOk,
      toolkit: toolkitVersion(),
    }).slice(0, 24);
    const out = join(dir, 'measurements', `${key}.arrow`);
    outputs.set(twin.runB, out);
    const deps = [producer.get(twin.runA), producer.get(twin.runB)].filter((d): d is string => !!d);
    const job: StudyJob = {
      kind: 'measure',
      root: runsDir,
      study: study.name,
      twin,
      measure,
      out,
      ...(study.measure.align?.exportAligned && { alignedDir: join(dir, 'aligned', twin.runB) }),
    };
    jobs.push({
      id: `measure:${twin.runB}`,
      deps: [...new Set(deps)],
      job,
      done: () => measurementRecorded(out),
    });
  }
  return { jobs, runSteps, outputs };
}
