/**
 * The jobs a study or sweep executes, as plain JSON (they cross process boundaries), the function
 * that executes one, and {@link runStudyJobs}, which hands a graph of them to the local pool (a
 * worker process, {@link ./worker.ts}, or the coordinator itself runs each).
 */
import { mkdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { compiledScript, type PoolJob, type PoolOptions, type PoolResult, runPool } from '../exec/pool.js';
import { type QueueOptions, type QueueResult, runQueue } from '../exec/queue.js';
import { trainingProbe } from '../measure/diagnostics.js';
import { writeMeasurement } from '../results/measurement-files.js';
import type { TwinInfo } from '../results/metrics.js';
import type { ResolvedRunSpec } from '../spec/resolve.js';
import { type ForkMember, forkRun, trainForkGroup, type WeightPerturbation } from '../train/fork.js';
import { readRunJson, trainRun } from '../train/run.js';
import { writeAlignment } from './aligned.js';
import { measurePair } from './measure-pair.js';
import { measureRun } from './measure-run.js';
import type { MeasureSpec } from './spec.js';
import type { SweepMeasureSpec } from './sweep-measure-spec.js';

/** Train one run from scratch (parents and `init` baselines). */
interface TrainJob {
  readonly kind: 'train';
  readonly dir: string;
  readonly spec: ResolvedRunSpec;
}

/**
 * Fork runs from a parent checkpoint: together in lock-step (one graph), or one after another.
 * `spec` overrides the parent's spec for a member (a `seed` twin's batch order).
 */
export interface ForkJob {
  readonly kind: 'fork';
  readonly parentDir: string;
  readonly forkStep: number;
  readonly lockstep: boolean;
  readonly members: readonly { dir: string; perturbation?: WeightPerturbation; spec?: ResolvedRunSpec }[];
}

/** Measure one twin pair into an Arrow results file and its index (and optionally store B's alignment to A). */
export interface MeasureJob {
  readonly kind: 'measure';
  readonly root: string;
  readonly study: string;
  readonly twin: TwinInfo;
  readonly measure: MeasureSpec;
  readonly out: string;
  /** Where to write B's alignment to A (`<method>.json` per method, study/aligned.ts); absent: none. */
  readonly alignedDir?: string;
}

/**
 * Measure one run of a sweep (its `measure` block: sharpness, sensitivity, surfaces) into
 * `out` (KEY.arrow), its surface files next to it (KEY.surface-…arrow) and the index KEY.json
 * recording all of them.
 */
interface RunMeasureJob {
  readonly kind: 'measure-run';
  /** The run directory. */
  readonly dir: string;
  /** The sweep's name and the run's name (the `study` and `run_a` columns). */
  readonly sweep: string;
  readonly run: string;
  readonly measure: SweepMeasureSpec;
  readonly out: string;
  /** The folder of `out` relative to the sweep directory (for the surface rows' `file`). */
  readonly relativeDir: string;
}

export type StudyJob = TrainJob | ForkJob | MeasureJob | RunMeasureJob;

/** Run callbacks that report each step taken as one more run-step (none for a resumed run's past). */
function stepCounter(onSteps: (n: number) => void) {
  let last = 0;
  return {
    onStart: ({ fromStep }: { fromStep: number }) => {
      last = fromStep;
    },
    onProgress: ({ step }: { step: number }) => {
      onSteps(step - last);
      last = step;
    },
  };
}

/** Execute one job; `onSteps(n)` reports n more run-steps trained. */
export async function executeJob(job: StudyJob, onSteps: (n: number) => void = () => {}): Promise<void> {
  if (job.kind === 'train') {
    // The probe measures a spec's `diagnostics` / `sharpness` along training (none: it is not called).
    await trainRun(job.spec, job.dir, { ...stepCounter(onSteps), probe: trainingProbe });
    return;
  }
  if (job.kind === 'fork') {
    if (job.lockstep && job.members.every((m) => !m.spec)) {
      const members: ForkMember[] = job.members.map((m) =>
        m.perturbation ? { dir: m.dir, perturbation: m.perturbation } : { dir: m.dir },
      );
      await trainForkGroup(job.parentDir, job.forkStep, members, onSteps, { probe: trainingProbe });
      return;
    }
    for (const m of job.members) {
      await forkRun(job.parentDir, job.forkStep, m.perturbation, m.dir, {
        ...(m.spec && { spec: m.spec }),
        ...stepCounter(onSteps),
        probe: trainingProbe,
      });
    }
    return;
  }
  if (job.kind === 'measure-run') {
    const surfaceDir = dirname(job.out);
    mkdirSync(surfaceDir, { recursive: true });
    const stem = basename(job.out).replace(/\.arrow$/, '');
    const target = { sweep: job.sweep, run: job.run, surfaceDir, stem, relativeDir: job.relativeDir };
    const { rows, surfaces } = await measureRun(job.dir, job.measure, target);
    writeMeasurement(job.out, rows, { runA: job.run, runB: null }, surfaces);
    return;
  }
  const result = await measurePair(job.root, job.study, job.twin, job.measure);
  if (job.alignedDir) {
    const sourceDir = join(job.root, job.twin.runB);
    const { specHash: sourceSpecHash } = readRunJson(sourceDir);
    for (const a of result.aligned) {
      writeAlignment(join(job.alignedDir, `${a.method}.json`), {
        sourceDir,
        referenceDir: join(job.root, job.twin.runA),
        method: a.method,
        step: a.step,
        perms: a.perms,
        sourceSpecHash,
      });
    }
  }
  mkdirSync(dirname(job.out), { recursive: true });
  writeMeasurement(job.out, result.rows, { runA: job.twin.runA, runB: job.twin.runB });
}

/**
 * Where a study's jobs go instead of the local pool: a BullMQ queue in Redis (exec/queue.ts), whose
 * workers (`twinscope worker`) write into the study folder `dir`.
 */
export type StudyQueue = Omit<QueueOptions<StudyJob>, 'onSteps' | 'onFinished'>;

/**
 * Run a graph of study jobs in the local pool (in this process with one worker, else in study
 * worker processes), or with `queue` through the distributed queue (the jobs' paths must lie inside
 * `queue.dir`).
 */
export function runStudyJobs(
  jobs: readonly PoolJob<StudyJob>[],
  options: Omit<PoolOptions<StudyJob>, 'execute' | 'workerScript'> & { readonly queue?: StudyQueue },
): Promise<PoolResult & Partial<Pick<QueueResult, 'added' | 'detached'>>> {
  const { queue, ...pool } = options;
  if (queue) {
    return runQueue(jobs, {
      ...queue,
      ...(pool.onSteps && { onSteps: pool.onSteps }),
      ...(pool.onFinished && { onFinished: pool.onFinished }),
    });
  }
  return runPool(jobs, {
    ...pool,
    execute: executeJob,
    workerScript: () => compiledScript('study/worker.js'),
  });
}
