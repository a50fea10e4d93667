/**
 * Read what an HTML report needs from a study directory (see docs/formats.md, "The study
 * directory"): study.json, status.json, every run's run.json, results.arrow and the embeddings
 * under embedding/s<seed>/. Everything but study.json is optional, so a study that was interrupted
 * or failed still yields a report that says what is missing.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type EmbeddingKeyJson, type RunEmbedding, readEmbedding } from '../results/embedding.js';
import type { EmbeddedGroup } from '../results/groups.js';
import { type ResultRow, readResults } from '../results/rows.js';
import { parseStudyJson, readStatus, type StudyJson, type StudyStatus } from '../results/study-files.js';
import type { RunJson } from '../train/run.js';
import { InputError } from '../util/errors.js';

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
}

/** A directory that cannot be reported at all (no or invalid study.json / sweep.json). */
export class NotAStudyError extends InputError {
  override name = 'NotAStudyError';
}

function readJson(path: string): unknown {
  return JSON.parse(readFileSync(path, 'utf8'));
}

/** Run directories under `runs/` (any depth), as names relative to it. */
function findRuns(runsDir: string, prefix = ''): string[] {
  if (!existsSync(runsDir)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(runsDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const name = prefix ? `${prefix}/${entry.name}` : entry.name;
    const sub = join(runsDir, entry.name);
    if (existsSync(join(sub, 'run.json'))) out.push(name);
    else out.push(...findRuns(sub, name));
  }
  return out;
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
  warnings: string[],
): ReportRun {
  let run: RunJson | undefined;
  const runJson = join(runsDir, name, 'run.json');
  if (existsSync(runJson)) {
    try {
      run = readJson(runJson) as RunJson;
    } catch (e) {
      warnings.push(`runs/${name}/run.json: not valid JSON (${(e as Error).message})`);
    }
  }
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
  let json: unknown;
  try {
    json = readJson(studyPath);
  } catch (e) {
    throw new NotAStudyError(`${studyPath}: not valid JSON (${(e as Error).message})`);
  }
  const parsed = parseStudyJson(json);
  if ('problem' in parsed) throw new NotAStudyError(`${studyPath}: ${parsed.problem}`);
  const { study } = parsed;
  const warnings: string[] = [];

  const status = readStatusOrWarn(dir, warnings, 'study');

  let rows: ResultRow[] | undefined;
  const resultsPath = join(dir, 'results.arrow');
  if (existsSync(resultsPath)) {
    try {
      rows = readResults(resultsPath);
    } catch (e) {
      warnings.push((e as Error).message);
    }
  } else {
    warnings.push('no results.arrow: the study has not finished measuring, so there are no plots');
  }

  const embeddings = readEmbeddings(dir, warnings);

  const twinOf = new Map(study.twins.map((t) => [t.runB, t]));
  const references = new Set(study.twins.map((t) => t.runA));
  const runsDir = join(dir, 'runs');
  const names = [...new Set([...findRuns(runsDir), ...study.twins.map((t) => t.runB), ...references])].sort(
    (a, b) => a.localeCompare(b, 'en', { numeric: true }),
  );
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
    return readReportRun(runsDir, name, role, failed, study.totalSteps, warnings);
  });
  return { dir, study, ...(status && { status }), runs, ...(rows && { rows }), embeddings, warnings };
}

/** The embeddings under DIR/embedding/s<seed>/; unreadable ones and runs left out become warnings. */
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
      warnings.push(`embedding/${name}: no embedding plots (${(e as Error).message})`);
      continue;
    }
    const keyPath = join(root, name, 'key.json');
    if (!existsSync(keyPath)) continue;
    try {
      // Diverged runs are left out by design; the report lists them on their own.
      const excluded = ((readJson(keyPath) as Partial<EmbeddingKeyJson>).excluded ?? []).filter(
        (x) => !x.reason.startsWith('diverged'),
      );
      if (excluded.length > 0) {
        warnings.push(
          `embedding/${name}: ${excluded.length} run(s) left out of the embedding: ` +
            excluded.map((x) => `${x.name} (${x.reason})`).join(', '),
        );
      }
    } catch (e) {
      warnings.push(`embedding/${name}/key.json: not valid JSON (${(e as Error).message})`);
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

/** sweep.json as `twinscope run` writes it for a sweep (the fields a report reads). */
interface SweepJson {
  readonly format?: number;
  readonly toolkit?: string;
  readonly name?: string;
  readonly base?: unknown;
  readonly grid?: unknown;
  readonly embed?: { readonly groupBy?: readonly string[] } & Record<string, unknown>;
  readonly runs: readonly { readonly name: string; readonly overrides?: Record<string, unknown> }[];
}

/** A run's grid values, as its role in the runs table: `decay=0.5 init={"kind":"normal","std":1} seed=3`. */
function formatOverrides(overrides: Record<string, unknown> = {}): string {
  return Object.entries(overrides)
    .map(([f, v]) => `${f.split('.').pop()}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
}

/**
 * Read a sweep directory (docs/formats.md, "The sweep directory"): sweep.json, status.json, every
 * run's run.json and the embedding (embedding.* , or groups.json and groups/<g>/embedding.*). The
 * report lists the runs with their grid values and shows the embedding figures.
 * Throws {@link NotAStudyError} when sweep.json is missing or not a sweep.
 */
export function readSweepDir(dir: string): StudyDirContents {
  const sweepPath = join(dir, 'sweep.json');
  let sweep: SweepJson;
  try {
    sweep = readJson(sweepPath) as SweepJson;
  } catch (e) {
    throw new NotAStudyError(`${sweepPath}: not readable JSON (${(e as Error).message})`);
  }
  if (typeof sweep !== 'object' || sweep === null || !Array.isArray(sweep.runs as unknown)) {
    throw new NotAStudyError(`${sweepPath}: not a sweep (expected 'runs')`);
  }
  const warnings: string[] = [];
  const status = readStatusOrWarn(dir, warnings, 'sweep');
  const failed = status?.failed ?? [];
  const runsDir = join(dir, 'runs');
  const runs = sweep.runs.map((r) =>
    readReportRun(runsDir, r.name, formatOverrides(r.overrides), failed, undefined, warnings),
  );
  const groupBy = sweep.embed?.groupBy ?? [];
  const report: { groupBy: readonly string[]; embedding?: RunEmbedding; groups: EmbeddedGroup[] } = {
    groupBy,
    groups: [],
  };
  const read = (where: string, label: string) => {
    try {
      return readEmbedding(where);
    } catch (e) {
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
    try {
      const summary = readJson(join(dir, 'groups.json')) as {
        groups?: { name: string; values: Record<string, unknown>; runs: string[] }[];
      };
      for (const g of summary.groups ?? []) {
        const embedding = read(join(dir, 'groups', g.name), `groups/${g.name}`);
        if (embedding)
          report.groups.push({ group: { name: g.name, values: g.values, points: g.runs }, embedding });
      }
    } catch (e) {
      warnings.push(`groups.json: not readable (${(e as Error).message}); the sweep has not been embedded`);
    }
  }
  const study: StudyJson = {
    ...(sweep.format !== undefined && { format: sweep.format }),
    ...(sweep.toolkit !== undefined && { toolkit: sweep.toolkit }),
    spec: { name: sweep.name, sweep: { base: sweep.base, grid: sweep.grid }, embed: sweep.embed },
    twins: [],
  };
  return { dir, study, ...(status && { status }), runs, embeddings: [], warnings, sweep: report };
}
