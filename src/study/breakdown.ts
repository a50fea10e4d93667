/**
 * Where a study's or sweep's time and bytes go: wall time, CPU time and bytes written per phase
 * (training by kind of run, each measurement kind, embeddings, results, the report), stored in
 * status.json (`breakdown`, docs/formats.md) and printed at the end of `twinscope run`.
 *
 * Two pieces:
 *
 * - {@link PhaseClock} times the phases of one piece of work in the process that runs it (a job in
 *   a pool worker, or the coordinator): wall time (`performance.now`), CPU time
 *   (`process.cpuUsage`: user + system of the whole process, onnxruntime's threads included; one
 *   job runs at a time per worker process, so the process's CPU is the job's) and the bytes of the
 *   files it wrote. Its {@link PhaseTimes} are plain JSON: a job returns them through the pool.
 * - {@link Breakdown} accumulates the phase times of every job and of the coordinator's own phases,
 *   and the coordinator's CPU over the whole run, into a {@link StudyBreakdown}.
 *
 * Bytes count the files a phase wrote: a file is counted (its whole size) when it is new or was
 * rewritten (another inode, size or mtime) between a {@link snapshotFiles} taken before the phase and
 * one after it. A fresh study's phases therefore add up to the size of its folder (but status.json,
 * written after the breakdown).
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { PhaseTotals, StudyBreakdown } from '../results/study-files.js';

/** Phase name → totals: what a job reports to the coordinator (plain JSON). */
export type PhaseTimes = Record<string, PhaseTotals>;

/** CPU time (user + system) of this process so far, in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Add `add` into `into[phase]` (created at zero). */
function accumulate(into: PhaseTimes, phase: string, add: Partial<PhaseTotals>): void {
  const t = into[phase] ?? { wallMs: 0, cpuMs: 0, bytes: 0, count: 0 };
  into[phase] = {
    wallMs: t.wallMs + (add.wallMs ?? 0),
    cpuMs: t.cpuMs + (add.cpuMs ?? 0),
    bytes: t.bytes + (add.bytes ?? 0),
    count: t.count + (add.count ?? 0),
  };
}

/** Identity of a file's contents as far as `stat` tells: rewritten files change inode, size or mtime. */
type FileStamp = { readonly ino: number; readonly size: number; readonly mtimeMs: number };

/** Every file under `paths` (files or folders, recursively; missing ones skipped) with its stamp. */
export function snapshotFiles(paths: readonly string[]): Map<string, FileStamp> {
  const out = new Map<string, FileStamp>();
  const visit = (p: string) => {
    const s = statSync(p, { throwIfNoEntry: false });
    if (!s) return;
    if (s.isDirectory()) {
      for (const name of readdirSync(p)) visit(join(p, name));
    } else if (s.isFile()) {
      out.set(p, { ino: s.ino, size: s.size, mtimeMs: s.mtimeMs });
    }
  };
  for (const p of paths) visit(p);
  return out;
}

/** Bytes of the files of `after` that are new or rewritten since `before`. */
export function writtenBytes(before: Map<string, FileStamp>, after: Map<string, FileStamp>): number {
  let bytes = 0;
  for (const [path, s] of after) {
    const b = before.get(path);
    if (!b || b.ino !== s.ino || b.size !== s.size || b.mtimeMs !== s.mtimeMs) bytes += s.size;
  }
  return bytes;
}

/**
 * The phases of one piece of work, timed in the process that runs it. Phases may nest (a job's
 * whole time, and a measurement inside it): each {@link PhaseClock.start} measures its own interval.
 */
export class PhaseClock {
  /** The totals so far, by phase. */
  readonly times: PhaseTimes = {};

  /** Start timing `phase`; the returned function stops it and adds one to its count. */
  start(phase: string): () => void {
    const wall = performance.now();
    const cpu = cpuMs();
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      accumulate(this.times, phase, { wallMs: performance.now() - wall, cpuMs: cpuMs() - cpu, count: 1 });
    };
  }

  /** Time `fn` as `phase` (also when it throws). */
  async time<T>(phase: string, fn: () => T | Promise<T>): Promise<T> {
    const stop = this.start(phase);
    try {
      return await fn();
    } finally {
      stop();
    }
  }

  /**
   * Time `fn` as `phase` and count as its bytes the files under `paths` that it wrote (see the
   * module comment). `paths` is listed before and after `fn` (a function: files `fn` creates).
   */
  async timeWriting<T>(
    phase: string,
    paths: readonly string[] | (() => readonly string[]),
    fn: () => T | Promise<T>,
  ): Promise<T> {
    const list = typeof paths === 'function' ? paths : () => paths;
    const before = snapshotFiles(list());
    try {
      return await this.time(phase, fn);
    } finally {
      this.addBytes(phase, writtenBytes(before, snapshotFiles(list())));
    }
  }

  /** Add `bytes` written to `phase`. */
  addBytes(phase: string, bytes: number): void {
    accumulate(this.times, phase, { bytes });
  }

  /**
   * Record under `rest` what the interval `whole` spent outside the phases `parts` (e.g. a pair
   * measurement's reading and engine start-up, around its measurement kinds). Never negative.
   */
  remainder(whole: string, parts: readonly string[], rest: string): void {
    const w = this.times[whole];
    if (!w) return;
    const inner = parts.map((p) => this.times[p]).filter((t): t is PhaseTotals => t !== undefined);
    const wallMs = Math.max(0, w.wallMs - inner.reduce((s, t) => s + t.wallMs, 0));
    const cpu = Math.max(0, w.cpuMs - inner.reduce((s, t) => s + t.cpuMs, 0));
    delete this.times[whole];
    accumulate(this.times, rest, { wallMs, cpuMs: cpu, bytes: w.bytes, count: w.count });
  }
}

/**
 * The breakdown of one `twinscope run` (or `bench study`): jobs' phase times merged as they
 * finish, the coordinator's own phases, and the coordinator's CPU since the breakdown was created.
 */
export class Breakdown {
  private readonly phases: PhaseTimes = {};
  private readonly order: string[] = [];
  private readonly wall0 = performance.now();
  private readonly cpu0 = cpuMs();
  private workerCpuMs = 0;
  private place: StudyBreakdown['jobs'] = 'in-process';
  private workers = 1;
  /** The coordinator's phases (embeddings, results, report). */
  readonly clock = new PhaseClock();

  /**
   * Record where the jobs run (called by each execution round; the last one wins): their CPU is
   * counted apart from the coordinator's only in `workers`.
   */
  jobsRun(place: StudyBreakdown['jobs'], workers: number): void {
    this.place = place;
    this.workers = workers;
  }

  /**
   * Merge a job's phase times. `rename` maps a phase the job could not name on its own (a train
   * job's `train`: a parent, a baseline or a sweep's run) to its name in the breakdown.
   */
  addJob(times: unknown, rename: (phase: string) => string = (p) => p): void {
    if (typeof times !== 'object' || times === null) return;
    for (const [phase, t] of Object.entries(times as PhaseTimes)) {
      if (!isTotals(t)) continue;
      this.add(rename(phase), t);
      if (this.place === 'workers') this.workerCpuMs += t.cpuMs;
    }
  }

  private add(phase: string, t: PhaseTotals): void {
    if (!this.order.includes(phase)) this.order.push(phase);
    accumulate(this.phases, phase, t);
  }

  /** The breakdown so far (the coordinator's clock merged in), as stored in status.json. */
  toJson(): StudyBreakdown {
    const all: PhaseTimes = {};
    const order = [...this.order];
    for (const p of order) accumulate(all, p, this.phases[p] as PhaseTotals);
    for (const [p, t] of Object.entries(this.clock.times)) {
      if (!order.includes(p)) order.push(p);
      accumulate(all, p, t);
    }
    const round = (x: number) => Math.round(x * 10) / 10;
    const mainMs = cpuMs() - this.cpu0;
    return {
      wallMs: round(performance.now() - this.wall0),
      cpuMs: round(mainMs + this.workerCpuMs),
      mainCpuMs: round(mainMs),
      workerCpuMs: round(this.workerCpuMs),
      jobs: this.place,
      workers: this.workers,
      phases: sortPhases(order).map((phase) => {
        const t = all[phase] as PhaseTotals;
        return { phase, wallMs: round(t.wallMs), cpuMs: round(t.cpuMs), bytes: t.bytes, count: t.count };
      }),
    };
  }
}

/** Whether `t` looks like {@link PhaseTotals} (job results cross a process boundary). */
function isTotals(t: unknown): t is PhaseTotals {
  const o = t as Partial<PhaseTotals> | null;
  return (
    typeof o === 'object' &&
    o !== null &&
    [o.wallMs, o.cpuMs, o.bytes, o.count].every((x) => typeof x === 'number' && Number.isFinite(x))
  );
}

/** Phases in flow order: training, measurements, embeddings, results, report; first seen first within each. */
function sortPhases(phases: readonly string[]): string[] {
  const rank = (p: string) => {
    const i = ['train', 'measure', 'embedding', 'results', 'report'].indexOf(p.split(':')[0] as string);
    return i < 0 ? 5 : i;
  };
  return phases
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map(({ p }) => p);
}

/** The files of a measurement job: `KEY.arrow`, its index and surface files (`KEY.…`) in its folder. */
export function measurementFiles(out: string): string[] {
  const dir = dirname(out);
  const stem = basename(out).replace(/\.arrow$/, '');
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f === `${stem}.arrow` || f.startsWith(`${stem}.`))
    .map((f) => join(dir, f));
}
