/**
 * Study jobs as they travel through the distributed queue (exec/queue.ts): every path made relative
 * to the study folder on the way in ({@link toQueuedJob}), and on the way out ({@link parseQueuedJob},
 * in the worker) the JSON checked against the shape of a {@link StudyJob} and every path resolved
 * against the study folder and refused if it leaves it. A worker writes only inside the study folder
 * a job names. (Specs inside a job are passed on as they are: their data paths are read-only inputs.)
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import { InputError } from '../util/errors.js';
import type { StudyJob } from './jobs.js';

/** `path` relative to `dir`, or an error if it is not inside `dir`. */
function inside(dir: string, path: string, field: string): string {
  const rel = relative(dir, resolve(dir, path));
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    throw new InputError(`${field}: ${path} leaves the study folder ${dir}`);
  return rel;
}

/** The job with every path relative to the study folder `dir`, absolute (an error for a path outside it). */
export function toQueuedJob(job: StudyJob, dir: string): StudyJob {
  // The planner's paths are relative to the working directory when the study folder was given so.
  const r = (p: string, field: string) => inside(dir, resolve(p), field);
  switch (job.kind) {
    case 'train':
      return { ...job, dir: r(job.dir, 'dir') };
    case 'fork':
      return {
        ...job,
        parentDir: r(job.parentDir, 'parentDir'),
        members: job.members.map((m) => ({ ...m, dir: r(m.dir, 'members.dir') })),
      };
    case 'measure':
      return {
        ...job,
        root: r(job.root, 'root'),
        out: r(job.out, 'out'),
        ...(job.alignedDir !== undefined && { alignedDir: r(job.alignedDir, 'alignedDir') }),
      };
    case 'measure-run':
      return { ...job, dir: r(job.dir, 'dir'), out: r(job.out, 'out') };
  }
}

const path = z.string().min(1);
const object = z.record(z.string(), z.unknown());
const count = z.number().int().nonnegative();

const queuedJobSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('train'),
    dir: path,
    spec: object,
    dropOptimizerState: z.literal(true).optional(),
  }),
  z.strictObject({
    kind: z.literal('fork'),
    parentDir: path,
    forkStep: count,
    lockstep: z.boolean(),
    members: z
      .array(z.strictObject({ dir: path, perturbation: object.optional(), spec: object.optional() }))
      .min(1),
    dropOptimizerState: z.literal(true).optional(),
  }),
  z.strictObject({
    kind: z.literal('measure'),
    root: path,
    study: z.string().min(1),
    twin: z.looseObject({
      runA: path,
      runB: path,
      kind: z.string(),
      sigma: z.number(),
      forkStep: count,
      repeat: count,
      seed: count,
    }),
    measure: object,
    out: path,
    alignedDir: path.optional(),
  }),
  z.strictObject({
    kind: z.literal('measure-run'),
    dir: path,
    sweep: z.string().min(1),
    run: z.string().min(1),
    measure: object,
    out: path,
    relativeDir: path,
  }),
]);

/**
 * Check a queued job's JSON and resolve its paths against the study folder `dir` (absolute). Throws
 * an {@link InputError} naming the field for JSON of the wrong shape, for a relative `dir`, and for
 * any path (absolute, or with `..`) that leads out of `dir`.
 */
export function parseQueuedJob(json: unknown, dir: string): StudyJob {
  if (!isAbsolute(dir)) throw new InputError(`study folder ${dir}: not an absolute path`);
  const parsed = queuedJobSchema.safeParse(json);
  if (!parsed.success) throw new InputError(`invalid job: ${z.prettifyError(parsed.error)}`);
  const job = parsed.data;
  const at = (p: string, field: string) => {
    if (isAbsolute(p))
      throw new InputError(`${field}: ${p} is absolute (queued paths are relative to the study folder)`);
    return resolve(dir, inside(dir, p, field));
  };
  switch (job.kind) {
    case 'train':
      return { ...job, dir: at(job.dir, 'dir') } as unknown as StudyJob;
    case 'fork':
      return {
        ...job,
        parentDir: at(job.parentDir, 'parentDir'),
        members: job.members.map((m) => ({ ...m, dir: at(m.dir, 'members.dir') })),
      } as unknown as StudyJob;
    case 'measure': {
      const root = at(job.root, 'root');
      // The pair's runs are read from root/<runA>, root/<runB>: inside the study folder too.
      inside(root, job.twin.runA, 'twin.runA');
      inside(root, job.twin.runB, 'twin.runB');
      return {
        ...job,
        root,
        out: at(job.out, 'out'),
        ...(job.alignedDir !== undefined && { alignedDir: at(job.alignedDir, 'alignedDir') }),
      } as unknown as StudyJob;
    }
    case 'measure-run':
      inside(dir, job.relativeDir, 'relativeDir');
      return { ...job, dir: at(job.dir, 'dir'), out: at(job.out, 'out') } as unknown as StudyJob;
  }
}
