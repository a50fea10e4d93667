/**
 * Read what an HTML report needs from a study directory (see docs/formats.md, "The study
 * directory"): study.json, status.json, every run's run.json, results.arrow and the embeddings
 * under embedding/s<seed>/. Everything but study.json is optional, so a study that was interrupted
 * or failed still yields a report that says what is missing. Every file read is checked first (the
 * seals of the JSON files, the digests they record for the Arrow files): a damaged file stops the
 * report with an IntegrityError naming it, so a report never shows numbers from a damaged file.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type RunEmbedding, readEmbedding, readEmbeddingKey } from '../results/embedding.js';
import { type EmbeddedGroup, GROUPS_FORMAT } from '../results/groups.js';
import { METRICS } from '../results/metrics.js';
import { type ResultRow, readResults } from '../results/rows.js';
import {
  parseStudyJson,
  readStatus,
  readStudyJsonFile,
  readSweepJson,
  type StudyJson,
  type StudyStatus,
} from '../results/study-files.js';
import { readSurface, type SurfaceData } from '../results/surface-files.js';
import { readDiagnostics, readSharpness } from '../train/diagnostics.js';
import { type RunJson, readRunJson } from '../train/run.js';
import { findRunDirs } from '../train/run-files.js';
import { InputError, IntegrityError } from '../util/errors.js';
import { isFileDigest } from '../util/file-digest.js';
import { formatBelow, readSealedJson } from '../util/sealed-json.js';
import { type RunTraining, type SettingSummary, settingLabel, settingSummaries } from './training-plots.js';

/** One run of the study as the report shows it. */
export interface ReportRun {
  /** Run name: its directory relative to `runs/` (e.g. `s0/t10/gaussian-1e-4-r0`). */
  readonly name: string;
  /**
   * `complete`, `diverged` (ended with a non-finite loss or parameters: a result, see `diverged`),
   * `incomplete` (run.json says running), `missing` (no run.json) or `failed`.
   */
  readonly status: 'complete' | 'diverged' | 'incomplete' | 'missing' | 'failed';
  /** What the run is: parent, reference twin, or the twin's perturbation. */
  readonly role: string;
  /** Messages of failed jobs that produce this run. */
  readonly problems: readonly string[];
  /** The run's final metrics row (run.json `final`), when it has one. */
  readonly final?: RunJson['final'];
  /** Where and why the run diverged (run.json `diverged`). */
  readonly diverged?: RunJson['diverged'];
  /** Total steps the run trains (run.json, else study.json). */
  readonly totalSteps?: number;
}

/** Everything a report of one study directory is made from. */
export interface StudyDirContents {
  readonly dir: string;
  readonly study: StudyJson;
  /** status.json, or undefined when the directory has none. */
  readonly status?: StudyStatus;
  readonly runs: readonly ReportRun[];
  /** results.arrow rows, or undefined when the file is missing. */
  readonly rows?: readonly ResultRow[];
  /** The readable embeddings under embedding/s<seed>/, by seed (ascending); empty when there are none. */
  readonly embeddings: readonly { readonly seed: number; readonly embedding: RunEmbedding }[];
  /** Problems reading the directory that the report should show (unreadable files). */
  readonly warnings: readonly string[];
  /** Present for a sweep directory (see {@link readSweepDir}): its embeddings. */
  readonly sweep?: SweepReport;
}

/** What a report shows of a sweep's embeddings. */
export interface SweepReport {
  /** The `embed.groupBy` fields (empty: one embedding of every run). */
  readonly groupBy: readonly string[];
  /** The embedding of every run (no groupBy), when readable. */
  readonly embedding?: RunEmbedding;
  /** One embedding per group (with groupBy), those that are readable. */
  readonly groups: readonly EmbeddedGroup[];
  /** The measured rows (results.arrow, checked) of a sweep with a `measure` block. */
  readonly rows?: readonly ResultRow[];
  /** The loss surfaces its `surface` rows point to, each checked against the digest in its row. */
  readonly surfaces: readonly SurfaceData[];
  /** The σ whose sensitivity is rank-correlated with sharpness (`measure.sensitivity.correlateAt`). */
  readonly correlateAt?: number;
  /**
   * The measurements along training (run specs with `diagnostics` or `sharpness`) of the runs that
   * have a diagnostics.arrow, each read with its checksums checked; empty when none has.
   */
  readonly training: readonly RunTraining[];
  /** The final test accuracy and loss of each setting (grid values without the seeds), over its runs. */
  readonly settings: readonly SettingSummary[];
}

/** A directory that cannot be reported at all (no or invalid study.json / sweep.json). */
export class NotAStudyError extends InputError {
  override name = 'NotAStudyError';
}

/** status.json, or undefined with a warning when it is missing or unreadable. */
function readStatusOrWarn(dir: string, warnings: string[], what: 'study' | 'sweep'): StudyStatus | undefined {
  const { status, warning } = readStatus(dir, what);
  if (warning) warnings.push(warning);
  return status;
}

/** One run of the report from runs/<name>/run.json and the failed jobs that produce it. */
function readReportRun(
  runsDir: string,
  name: string,
  role: string,
  failed: StudyStatus['failed'],
  plannedSteps: number | undefined,
): ReportRun {
  const runDir = join(runsDir, name);
  const run: RunJson | undefined = existsSync(join(runDir, 'run.json')) ? readRunJson(runDir) : undefined;
  const problems = failed
    .filter((f) => jobProduces(f.id, name, run?.status === 'complete'))
    .map((f) => f.message);
  const status: ReportRun['status'] =
    run?.status === 'complete' || run?.status === 'diverged'
      ? run.status
      : problems.length > 0
        ? 'failed'
        : run === undefined
          ? 'missing'
          : 'incomplete';
  const totalSteps = run?.totalSteps ?? plannedSteps;
  return {
    name,
    status,
    role,
    problems,
    ...(run?.final !== undefined && { final: run.final }),
    ...(run?.diverged !== undefined && { diverged: run.diverged }),
    ...(totalSteps !== undefined && { totalSteps }),
  };
}

const fmtSigma = (s: number) => (s === 0 ? '0' : s.toExponential(0).replace('e+', 'e'));

/**
 * Read a study directory (study.json) or a sweep directory (sweep.json, see {@link readSweepDir}).
 * Throws {@link NotAStudyError} when it holds neither.
 */
export function readReportDir(dir: string): StudyDirContents {
  if (existsSync(join(dir, 'study.json')) || !existsSync(join(dir, 'sweep.json'))) return readStudyDir(dir);
  return readSweepDir(dir);
}

/**
 * Read a study directory. Throws {@link NotAStudyError} when study.json is missing or not a study;
 * any other unreadable file becomes a warning and the report goes on without it.
 */
export function readStudyDir(dir: string): StudyDirContents {
  const studyPath = join(dir, 'study.json');
  if (!existsSync(studyPath)) {
    throw new NotAStudyError(
      `${dir}: no study.json or sweep.json (not a study or sweep directory; run 'twinscope run' first)`,
    );
  }
  const parsed = parseStudyJson(readStudyJsonFile(dir));
  if ('problem' in parsed) throw new NotAStudyError(`${studyPath}: ${parsed.problem}`);
  const { study } = parsed;
  const warnings: string[] = [];

  const status = readStatusOrWarn(dir, warnings, 'study');

  const rows = readStudyResults(dir, status, warnings, 'study');

  const embeddings = readEmbeddings(dir, warnings);

  const twinOf = new Map(study.twins.map((t) => [t.runB, t]));
  const references = new Set(study.twins.map((t) => t.runA));
  const runsDir = join(dir, 'runs');
  const names = [
    ...new Set([...findRunDirs(runsDir), ...study.twins.map((t) => t.runB), ...references]),
  ].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const failed = status?.failed ?? [];
  const runs = names.map((name): ReportRun => {
    const twin = twinOf.get(name);
    const role = twin
      ? `${twin.kind}${twin.kind === 'gaussian' || twin.kind === 'batch' ? ` σ=${fmtSigma(twin.sigma)}` : ''} t=${twin.forkStep} r${twin.repeat}`
      : references.has(name)
        ? name.endsWith('/parent') || name === 'parent'
          ? 'parent (reference)'
          : 'reference twin A'
        : name.endsWith('/parent') || name === 'parent'
          ? 'parent'
          : '';
    return readReportRun(runsDir, name, role, failed, study.totalSteps);
  });
  return { dir, study, ...(status && { status }), runs, ...(rows && { rows }), embeddings, warnings };
}

/**
 * DIR/results.arrow checked against the digest status.json records; undefined with a warning when
 * it is missing or not recorded (the study has not finished, or was interrupted while writing it).
 * status.json written before seals records no digest: the file is read as it is.
 */
function readStudyResults(
  dir: string,
  status: StudyStatus | undefined,
  warnings: string[],
  what: 'study' | 'sweep',
): ResultRow[] | undefined {
  const path = join(dir, 'results.arrow');
  if (!existsSync(path)) {
    warnings.push(`no results.arrow: the ${what} has not finished measuring, so there are no plots`);
    return undefined;
  }
  const digest = status?.files?.['results.arrow'];
  if (digest) return readResults(path, { digest, where: join(dir, 'status.json') });
  if (status && !status.files) return readResults(path);
  warnings.push(
    `results.arrow is not recorded in status.json (the ${what} has not finished); re-run it for plots`,
  );
  return undefined;
}

/**
 * The surfaces the `surface` rows of a sweep's results.arrow point to (options.file, relative to
 * DIR), each checked against the digest its row records: a damaged file stops the report with an
 * IntegrityError naming it; a row without a file reference becomes a warning.
 */
function readSurfaces(dir: string, rows: readonly ResultRow[], warnings: string[]): SurfaceData[] {
  const out: SurfaceData[] = [];
  for (const r of rows) {
    if (r.metric !== METRICS.surface) continue;
    const { file, sha256, bytes } = r.options as { file?: unknown; sha256?: unknown; bytes?: unknown };
    const digest = { sha256, bytes };
    if (typeof file !== 'string' || file.includes('..') || !isFileDigest(digest)) {
      warnings.push(`results.arrow: the surface row of ${r.runA} at step ${r.step} names no surface file`);
      continue;
    }
    const where = `${join(dir, 'results.arrow')} (the surface row of ${r.runA} at step ${r.step})`;
    out.push(readSurface(join(dir, file), { digest, where }));
  }
  return out;
}

/**
 * The embeddings under DIR/embedding/s<seed>/; unreadable ones and runs left out become warnings,
 * damaged ones (IntegrityError) stop the report.
 */
function readEmbeddings(dir: string, warnings: string[]): StudyDirContents['embeddings'] {
  const root = join(dir, 'embedding');
  if (!existsSync(root)) return [];
  const out: { seed: number; embedding: RunEmbedding }[] = [];
  let entries: string[];
  try {
    entries = readdirSync(root, { withFileTypes: true })
      .filter((e) => e.isDirectory() && /^s\d+$/.test(e.name))
      .map((e) => e.name);
  } catch (e) {
    warnings.push(`embedding/: not readable (${(e as Error).message})`);
    return [];
  }
  for (const name of entries) {
    const seed = Number(name.slice(1));
    try {
      out.push({ seed, embedding: readEmbedding(join(root, name)) });
    } catch (e) {
      if (e instanceof IntegrityError) throw e;
      warnings.push(`embedding/${name}: no embedding plots (${(e as Error).message})`);
      continue;
    }
    const keyPath = join(root, name, 'key.json');
    if (!existsSync(keyPath)) continue;
    // Diverged runs are left out by design; the report lists them on their own.
    const excluded = (readEmbeddingKey(keyPath).excluded ?? []).filter(
      (x) => !x.reason.startsWith('diverged'),
    );
    if (excluded.length > 0) {
      warnings.push(
        `embedding/${name}: ${excluded.length} run(s) left out of the embedding: ` +
          excluded.map((x) => `${x.name} (${x.reason})`).join(', '),
      );
    }
  }
  return out.sort((a, b) => a.seed - b.seed);
}

/**
 * Whether the study job `id` (see src/study/run-study.ts) trains run `name`: `train:NAME`,
 * `fork:NAME`, or a lock-step group `fork:PARENT@T` whose members sit next to the parent under
 * `t{T}/` (only counted for runs that did not complete).
 */
function jobProduces(id: string, name: string, complete: boolean): boolean {
  if (id === `train:${name}` || id === `fork:${name}` || id === `measure:${name}`) return true;
  const group = /^fork:(.*)@(\d+)$/.exec(id);
  if (!group || complete) return false;
  const parent = group[1] as string;
  const base = parent.includes('/') ? parent.slice(0, parent.lastIndexOf('/') + 1) : '';
  return name.startsWith(`${base}t${group[2]}/`);
}

/** A run's grid values, as its role in the runs table: `decay=0.5 init={"kind":"normal","std":1} seed=3`. */
function formatOverrides(overrides: Record<string, unknown> = {}): string {
  return Object.entries(overrides)
    .map(([f, v]) => `${f.split('.').pop()}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

/**
 * The diagnostics and sharpness along training of the sweep's runs that have a diagnostics.arrow
 * (readDiagnostics / readSharpness: a finished run's files must match its run.json checksums, a
 * StoreError naming the file otherwise), in sweep order.
 */
function readTraining(
  runsDir: string,
  runs: readonly { readonly name: string }[],
  settingOf: ReadonlyMap<string, string>,
): RunTraining[] {
  const out: RunTraining[] = [];
  for (const { name } of runs) {
    const runDir = join(runsDir, name);
    if (!existsSync(join(runDir, 'run.json')) || !existsSync(join(runDir, 'diagnostics.arrow'))) continue;
    const diagnostics = readDiagnostics(runDir);
    const sharpness = readSharpness(runDir);
    if (diagnostics.length + sharpness.length === 0) continue;
    out.push({ run: name, setting: settingOf.get(name) as string, diagnostics, sharpness });
  }
  return out;
}

/**
 * Read a sweep directory (docs/formats.md, "The sweep directory"): sweep.json, status.json, every
 * run's run.json and the embedding (embedding.* , or groups.json and groups/<g>/embedding.*). The
 * report lists the runs with their grid values and shows the embedding figures.
 * Throws {@link NotAStudyError} when sweep.json is missing or not a sweep.
 */
export function readSweepDir(dir: string): StudyDirContents {
  const parsed = readSweepJson(dir);
  if ('problem' in parsed) throw new NotAStudyError(`${join(dir, 'sweep.json')}: ${parsed.problem}`);
  const { sweep } = parsed;
  const warnings: string[] = [];
  const status = readStatusOrWarn(dir, warnings, 'sweep');
  const failed = status?.failed ?? [];
  const runsDir = join(dir, 'runs');
  const runs = sweep.runs.map((r) =>
    readReportRun(runsDir, r.name, formatOverrides(r.overrides), failed, undefined),
  );
  const settingOf = new Map(sweep.runs.map((r) => [r.name, settingLabel(r.overrides)]));
  const training = readTraining(runsDir, sweep.runs, settingOf);
  const settings = settingSummaries(
    runs.map((r) => ({
      name: r.name,
      setting: settingOf.get(r.name) as string,
      final: r.final,
      finished: r.status === 'complete',
    })),
  );
  const groupBy = sweep.embed?.groupBy ?? [];
  const measured = sweep.measure !== undefined;
  const rows = measured ? readStudyResults(dir, status, warnings, 'sweep') : undefined;
  const correlateAt = (sweep.measure?.sensitivity as { correlateAt?: unknown } | undefined)?.correlateAt;
  const report: {
    groupBy: readonly string[];
    embedding?: RunEmbedding;
    groups: EmbeddedGroup[];
    rows?: readonly ResultRow[];
    surfaces: SurfaceData[];
    correlateAt?: number;
    training: readonly RunTraining[];
    settings: readonly SettingSummary[];
  } = {
    groupBy,
    groups: [],
    training,
    settings,
    ...(rows && { rows }),
    surfaces: rows ? readSurfaces(dir, rows, warnings) : [],
    ...(typeof correlateAt === 'number' && { correlateAt }),
  };
  const read = (where: string, label: string) => {
    try {
      return readEmbedding(where);
    } catch (e) {
      if (e instanceof IntegrityError) throw e;
      warnings.push(`${label}: no embedding figures (${(e as Error).message})`);
      return undefined;
    }
  };
  if (groupBy.length === 0) {
    const embedding = existsSync(join(dir, 'embedding.json')) ? read(dir, 'embedding') : undefined;
    if (embedding) report.embedding = embedding;
    else if (!existsSync(join(dir, 'embedding.json')))
      warnings.push('no embedding.json: the sweep has not been embedded');
  } else {
    const groupsPath = join(dir, 'groups.json');
    if (!existsSync(groupsPath)) warnings.push('no groups.json: the sweep has not been embedded');
    else {
      const summary = readSealedJson(groupsPath, formatBelow(GROUPS_FORMAT)) as {
        groups?: { name: string; values: Record<string, unknown>; runs: string[] }[];
      };
      for (const g of summary.groups ?? []) {
        const embedding = read(join(dir, 'groups', g.name), `groups/${g.name}`);
        if (embedding)
          report.groups.push({ group: { name: g.name, values: g.values, points: g.runs }, embedding });
      }
    }
  }
  const study: StudyJson = {
    ...(sweep.format !== undefined && { format: sweep.format }),
    ...(sweep.toolkit !== undefined && { toolkit: sweep.toolkit }),
    spec: {
      name: sweep.name,
      sweep: { base: sweep.base, grid: sweep.grid },
      embed: sweep.embed,
      ...(sweep.measure && { measure: sweep.measure }),
    },
    twins: [],
  };
  return { dir, study, ...(status && { status }), runs, embeddings: [], warnings, sweep: report };
}
