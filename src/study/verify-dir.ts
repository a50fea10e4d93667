/**
 * `twinscope verify` on any folder twinscope writes: a run directory, a study, a sweep, or the output
 * of `twinscope embed`. Every finalized file is checked the way its readers check it (seals of the
 * JSON files, digests they record for the Arrow files, the store's schema and row checks for run
 * files), every run directory inside is verified, and temporary files left by a killed writer are
 * listed. Never writes, except {@link repairDir}, which removes those temporary files under the
 * folder's lock.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readEmbedding, readEmbeddingKey } from '../results/embedding.js';
import { GROUPS_FORMAT } from '../results/groups.js';
import { readMeasurement } from '../results/measurement-files.js';
import { readResults } from '../results/rows.js';
import {
  parseStudyJson,
  readStatus,
  readStudyJsonFile,
  readSweepJson,
  type StudyStatus,
} from '../results/study-files.js';
import { verifyRun } from '../train/inspect.js';
import { readRunJson } from '../train/run.js';
import { findRunDirs } from '../train/run-files.js';
import { InputError } from '../util/errors.js';
import { checkDigest, isFileDigest } from '../util/file-digest.js';
import { lockState, withFolderLock } from '../util/folder-lock.js';
import { formatBelow, readSealedJson } from '../util/sealed-json.js';
import { findStrayTemps, removeStrayTemps, type StrayTemp } from '../util/stray-temps.js';
import { readAlignment } from './aligned.js';

/** What {@link verifyDir} found. */
export interface DirVerifyResult {
  /** No problem and no stray temporary file. */
  readonly ok: boolean;
  readonly kind: 'run' | 'study' | 'sweep' | 'embedding';
  /** Every problem, each naming its file (paths relative to the folder). */
  readonly problems: string[];
  /** Temporary files left by killed writers (removed by `verify --repair` and by a resume). */
  readonly strayTemps: StrayTemp[];
  /** What was checked, in one line. */
  readonly summary: string;
}

/** A folder that twinscope did not write (no run.json, study.json, sweep.json or embedding.json): exit 2. */
export class NotAVerifiableDirError extends InputError {
  override name = 'NotAVerifiableDirError';
}

/** The kind of folder `dir` is, or a NotAVerifiableDirError. */
function kindOf(dir: string): DirVerifyResult['kind'] {
  const has = (f: string) => existsSync(join(dir, f));
  if (has('run.json')) return 'run';
  if (has('study.json')) return 'study';
  if (has('sweep.json')) return 'sweep';
  if (has('embedding.json')) return 'embedding';
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (!stat?.isDirectory()) {
    throw new NotAVerifiableDirError(
      `${dir}: not a directory (${stat ? 'a file, not a folder' : 'no such folder'})`,
    );
  }
  throw new NotAVerifiableDirError(
    `${dir}: not a run, study, sweep or embedding directory (no run.json, study.json, sweep.json or embedding.json)`,
  );
}

/** Collects problems: `check(what)` runs `what` and records its error's message instead of throwing. */
class Checker {
  readonly problems: string[] = [];

  constructor(private readonly dir: string) {}

  /** The message with the folder's path taken out of file paths, so problems read `runs/s0/…: …`. */
  private relative(message: string): string {
    return message.split(`${this.dir}/`).join('');
  }

  problem(message: string): void {
    this.problems.push(this.relative(message));
  }

  check(what: () => void): boolean {
    try {
      what();
      return true;
    } catch (e) {
      this.problem((e as Error).message);
      return false;
    }
  }

  /** Verify every run directory under the folder `root` (`runs`, `aligned`) of the directory. */
  runs(root: string): number {
    const names = findRunDirs(join(this.dir, root));
    for (const name of names) {
      const r = verifyRun(join(this.dir, root, name));
      // Store problems name the file in the run (`checkpoints.arrow: …`); others its whole path.
      const runDir = join(this.dir, root, name);
      for (const p of r.problems) this.problem(p.startsWith(`${runDir}/`) ? p : `${root}/${name}/${p}`);
    }
    return names.length;
  }

  /** Check an embedding folder (embedding.json's seal, embedding.arrow's digest, key.json's seal). */
  embedding(folder: string): void {
    const at = join(this.dir, folder);
    this.check(() => readEmbedding(at));
    if (existsSync(join(at, 'key.json'))) this.check(() => readEmbeddingKey(join(at, 'key.json')));
  }

  /** status.json: sealed; missing means the study or sweep has not finished. */
  status(what: 'study' | 'sweep') {
    try {
      const { status, warning } = readStatus(this.dir, what);
      if (warning) this.problem(`status.json: ${warning.replace(/^no status\.json: /, 'missing: ')}`);
      return status;
    } catch (e) {
      this.problem((e as Error).message);
      return undefined;
    }
  }
}

/** Check a study directory (see docs/formats.md, "The study directory"). */
function verifyStudy(dir: string, c: Checker): string {
  c.check(() => {
    const parsed = parseStudyJson(readStudyJsonFile(dir));
    if ('problem' in parsed) throw new Error(`study.json: ${parsed.problem}`);
  });
  const status = c.status('study');
  const results = join(dir, 'results.arrow');
  const digest = status?.files?.['results.arrow'];
  if (digest) c.check(() => readResults(results, { digest, where: join(dir, 'status.json') }));
  else if (status && !status.files && existsSync(results)) c.check(() => readResults(results));
  else if (status) c.problem('results.arrow: not recorded in status.json');
  const measurements = join(dir, 'measurements');
  const files = existsSync(measurements) ? readdirSync(measurements) : [];
  let pairs = 0;
  for (const f of files.filter((f) => f.endsWith('.arrow'))) {
    pairs++;
    c.check(() => {
      if (!readMeasurement(join(measurements, f))) {
        throw new Error(
          `measurements/${f}: no index ${f.replace(/\.arrow$/, '.json')} (interrupted; a re-run measures the pair again)`,
        );
      }
    });
  }
  for (const f of files.filter(
    (f) => f.endsWith('.json') && !files.includes(f.replace(/\.json$/, '.arrow')),
  )) {
    c.problem(`measurements/${f}: indexes ${f.replace(/\.json$/, '.arrow')}, which is missing`);
  }
  const runs = c.runs('runs');
  // Alignments (aligned/<twin>/<method>.json); studies written before them hold aligned runs.
  const aligned = c.runs('aligned') + verifyAlignments(join(dir, 'aligned'), c);
  const embeddingRoot = join(dir, 'embedding');
  const seeds = existsSync(embeddingRoot) ? readdirSync(embeddingRoot).filter((s) => /^s\d+$/.test(s)) : [];
  for (const s of seeds) c.embedding(join('embedding', s));
  return `study: ${runs} runs, ${pairs} measurement files, ${aligned} alignments, ${seeds.length} embeddings`;
}

/**
 * Check every alignment file under `root` (not inside a run directory): its seal, and that the run
 * it permutes still has the spec hash it was aligned at. Returns their number.
 */
function verifyAlignments(root: string, c: Checker): number {
  if (!existsSync(root)) return 0;
  let count = 0;
  const walk = (folder: string) => {
    if (existsSync(join(folder, 'run.json'))) return;
    for (const entry of readdirSync(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.json')) {
        count++;
        c.check(() => {
          const a = readAlignment(path);
          const source = readRunJson(a.sourceDir);
          if (source.specHash !== a.sourceSpecHash) {
            throw new Error(`${path}: stale: ${a.sourceDir} was re-trained since it was aligned`);
          }
        });
      }
    }
  };
  walk(root);
  return count;
}

/**
 * Check the measurements of a sweep (its `measure` block): results.arrow against status.json, and
 * every measurement index with the files it lists (rows and surfaces); a data file whose index is
 * missing is named. Returns the number of measured runs (indexes).
 */
function verifySweepMeasurements(dir: string, c: Checker, status: StudyStatus | undefined): number {
  const results = join(dir, 'results.arrow');
  const digest = status?.files?.['results.arrow'];
  if (digest) c.check(() => readResults(results, { digest, where: join(dir, 'status.json') }));
  else if (status && existsSync(results)) c.problem('results.arrow: not recorded in status.json');
  const measurements = join(dir, 'measurements');
  const files = existsSync(measurements) ? readdirSync(measurements) : [];
  const indexes = files.filter((f) => f.endsWith('.json'));
  for (const f of indexes) {
    const arrow = f.replace(/\.json$/, '.arrow');
    c.check(() => {
      if (!files.includes(arrow)) throw new Error(`measurements/${f}: indexes ${arrow}, which is missing`);
      readMeasurement(join(measurements, arrow));
    });
  }
  for (const f of files.filter((f) => f.endsWith('.arrow'))) {
    const key = f.replace(/(\.surface-.*)?\.arrow$/, '');
    if (!indexes.includes(`${key}.json`)) {
      c.problem(`measurements/${f}: no index ${key}.json (interrupted; a re-run measures the run again)`);
    }
  }
  return indexes.length;
}

/** Check a sweep directory (see docs/formats.md, "The sweep directory"). */
function verifySweep(dir: string, c: Checker): string {
  let groupBy: readonly string[] = [];
  let measured = false;
  c.check(() => {
    const parsed = readSweepJson(dir);
    if ('problem' in parsed) throw new Error(`sweep.json: ${parsed.problem}`);
    groupBy = parsed.sweep.embed?.groupBy ?? [];
    measured = parsed.sweep.measure !== undefined;
  });
  const status = c.status('sweep');
  const measurements = verifySweepMeasurements(dir, c, status);
  const runs = c.runs('runs');
  let embeddings = 0;
  if (groupBy.length === 0 && existsSync(join(dir, 'embedding.json'))) {
    c.embedding('.');
    embeddings = 1;
  }
  if (groupBy.length > 0 && existsSync(join(dir, 'groups.json'))) {
    let groups: { name: string }[] = [];
    c.check(() => {
      const json = readSealedJson(join(dir, 'groups.json'), formatBelow(GROUPS_FORMAT)) as {
        files?: Record<string, unknown>;
        groups?: { name: string }[];
      };
      groups = json.groups ?? [];
      const arrow = json.files?.['groups.arrow'];
      if (isFileDigest(arrow)) checkDigest(join(dir, 'groups.arrow'), arrow, join(dir, 'groups.json'));
    });
    for (const g of groups) c.embedding(join('groups', g.name));
    embeddings = groups.length;
  }
  const what = measured || measurements > 0 ? `, ${measurements} measurement files` : '';
  return `sweep: ${runs} runs${what}, ${embeddings} embeddings`;
}

/**
 * Verify the folder `dir`: a run directory, a study, a sweep, or `twinscope embed` output (see the
 * module comment). Problems name their files; a folder being written by another process is reported
 * as such. Throws an InputError (exit 2) when `dir` is none of these.
 */
export function verifyDir(dir: string): DirVerifyResult {
  const kind = kindOf(dir);
  const c = new Checker(dir);
  const lock = lockState(dir);
  if (lock.state === 'held' && !lock.mine) {
    const h = lock.holder;
    c.problem(
      `${dir}: being written${h ? ` by pid ${h.pid} on host ${h.hostname} since ${h.started} (${h.command})` : ''}; verify it when that ends`,
    );
  }
  let summary: string;
  if (kind === 'run') {
    const r = verifyRun(dir);
    for (const p of r.problems) c.problem(p);
    summary = r.summary;
  } else if (kind === 'study') summary = verifyStudy(dir, c);
  else if (kind === 'sweep') summary = verifySweep(dir, c);
  else {
    c.embedding('.');
    summary = 'embedding';
  }
  const strayTemps = findStrayTemps(dir);
  for (const t of strayTemps) {
    c.problem(
      `${t.path}: temporary file (${t.bytes} bytes) left by process ${t.pid}; 'twinscope verify --repair' or a resume removes it`,
    );
  }
  return { ok: c.problems.length === 0, kind, problems: c.problems, strayTemps, summary };
}

/**
 * Remove the temporary files killed writers left under `dir`, holding the folder's lock (so no writer
 * is active), then verify it again. Returns what was removed and the new verification.
 */
export async function repairDir(dir: string): Promise<{ removed: StrayTemp[]; after: DirVerifyResult }> {
  kindOf(dir);
  const removed = await withFolderLock(dir, async () => removeStrayTemps(dir), {
    command: `twinscope verify --repair ${dir}`,
  });
  return { removed, after: verifyDir(dir) };
}
