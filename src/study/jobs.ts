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
import { measurementFiles, PhaseClock, type PhaseTimes, snapshotFiles, writtenBytes } from './breakdown.js';
import { measurePair } from './measure-pair.js';
import { measureRun } from './measure-run.js';
import type { MeasureSpec } from './spec.js';
import type { SweepMeasureSpec } from './sweep-measure-spec.js';

/** Train one run from scratch (parents and `init` baselines). */
interface TrainJob {
  readonly kind: 'train';
  readonly dir: string;
  readonly spec: ResolvedRunSpec;
  /**
   * The finished run drops its momentum (nothing forks from it: baselines, a sweep's runs; see
   * TrainRunOptions.dropOptimizerState).
   */
  readonly dropOptimizerState?: true;
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
  /**
   * The finished twins drop their momentum (nothing forks from a twin; see
   * TrainRunOptions.dropOptimizerState).
   */
  readonly dropOptimizerState?: true;
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

/** The measurement kinds of a pair job, timed apart inside it (the rest is `measure:setup`). */
const PAIR_PHASES = [
  'measure:distance',
  'measure:barrier',
  'measure:align-weight',
  'measure:align-activation',
  'measure:cka',
];
/** The measurement kinds of a sweep's run-measure job (the rest is `measure:setup`). */
const RUN_PHASES = ['measure:sharpness', 'measure:sensitivity', 'measure:surface'];

/**
 * Execute one job; `onSteps(n)` reports n more run-steps trained. Resolves to the job's
 * {@link PhaseTimes} (study/breakdown.ts): a train job's time as `train` (the coordinator names its
 * kind of run), a fork job's as `train:twin` or `train:twin-lockstep`, a measurement job's per
 * measurement kind, with what surrounds them as `measure:setup` and the files it writes as
 * `measure:write`; the bytes of the files each wrote.
 */
export async function executeJob(
  job: StudyJob,
  onSteps: (n: number) => void = () => {},
): Promise<PhaseTimes> {
  const clock = new PhaseClock();
  if (job.kind === 'train') {
    // The probe measures a spec's `diagnostics` / `sharpness` along training (none: it is not called).
    await clock.timeWriting('train', [job.dir], () =>
      trainRun(job.spec, job.dir, {
        ...stepCounter(onSteps),
        probe: trainingProbe,
        ...(job.dropOptimizerState && { dropOptimizerState: true }),
      }),
    );
    return clock.times;
  }
  if (job.kind === 'fork') {
    const drop = job.dropOptimizerState ? { dropOptimizerState: true } : {};
    const dirs = job.members.map((m) => m.dir);
    if (job.lockstep && job.members.every((m) => !m.spec)) {
      const members: ForkMember[] = job.members.map((m) =>
        m.perturbation ? { dir: m.dir, perturbation: m.perturbation } : { dir: m.dir },
      );
      await clock.timeWriting('train:twin-lockstep', dirs, () =>
        trainForkGroup(job.parentDir, job.forkStep, members, onSteps, { probe: trainingProbe, ...drop }),
      );
      return clock.times;
    }
    for (const m of job.members) {
      await clock.timeWriting('train:twin', [m.dir], () =>
        forkRun(job.parentDir, job.forkStep, m.perturbation, m.dir, {
          ...(m.spec && { spec: m.spec }),
          ...stepCounter(onSteps),
          probe: trainingProbe,
          ...drop,
        }),
      );
    }
    return clock.times;
  }
  const files = () => measurementFiles(job.out);
  const surfaceFiles = () => files().filter((f) => /\.surface-[^/]*\.arrow$/.test(f));
  const otherFiles = () => files().filter((f) => !/\.surface-[^/]*\.arrow$/.test(f));
  if (job.kind === 'measure-run') {
    const surfaceDir = dirname(job.out);
    mkdirSync(surfaceDir, { recursive: true });
    const stem = basename(job.out).replace(/\.arrow$/, '');
    const target = { sweep: job.sweep, run: job.run, surfaceDir, stem, relativeDir: job.relativeDir };
    const before = snapshotFiles(surfaceFiles());
    const { rows, surfaces } = await clock.time('measure:run', () =>
      measureRun(job.dir, job.measure, target, clock),
    );
    if (job.measure.surfaces.length > 0) {
      clock.addBytes('measure:surface', writtenBytes(before, snapshotFiles(surfaceFiles())));
    }
    clock.remainder('measure:run', RUN_PHASES, 'measure:setup');
    await clock.timeWriting('measure:write', otherFiles, () =>
      writeMeasurement(job.out, rows, { runA: job.run, runB: null }, surfaces),
    );
    return clock.times;
  }
  const result = await clock.time('measure:pair', () =>
    measurePair(job.root, job.study, job.twin, job.measure, clock),
  );
  clock.remainder('measure:pair', PAIR_PHASES, 'measure:setup');
  const written = () => [...files(), ...(job.alignedDir ? [job.alignedDir] : [])];
  await clock.timeWriting('measure:write', written, () => {
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
  });
  return clock.times;
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
