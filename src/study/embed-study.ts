/**
 * The trajectory embedding of a twin study (`measure.embedding`): per parent seed, every complete
 * run of that seed (parent, reference twins, perturbed twins, seed twins, init baselines) embedded
 * together with {@link embedRuns} (InPCA of the outputs or PCA of the weights). Parents of different
 * seeds may see different data, so each seed has its own embedding:
 *
 * ```
 * DIR/embedding/s<seed>/embedding.arrow   one row per checkpoint (run = the study's run name)
 * DIR/embedding/s<seed>/embedding.json    method, eigenvalues, explained stress / variance, options
 * DIR/embedding/s<seed>/key.json          what it was computed from (key, runs, runs left out)
 * ```
 *
 * Its figures are drawn by the report (report/embed-plots.ts), not here.
 *
 * Resumable ({@link embedKeyed}, which sweeps use too): `key` is the sha256 of the canonical JSON of the embedded runs (name, run.json spec,
 * lineage, status and file hashes), the embedding options and the toolkit version. When key.json
 * holds the same key, the embedding is read back instead of recomputed. Before a recompute the seed's
 * files and figures are removed, and key.json is written after the new embedding files, so a key
 * always describes the files next to it and nothing stale survives an interruption.
 *
 * Runs that are not complete (diverged, failed or interrupted) are left out and listed in key.json
 * with the reason (a diverged run: `diverged at step N (...)`); a seed without complete runs, or
 * whose embedding fails, has no embedding (its stale files are removed), and the study goes on.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  type EmbeddingKeyJson,
  type RunEmbedding,
  readEmbedding,
  readEmbeddingKey,
  writeEmbedding,
} from '../results/embedding.js';
import { formatDivergence, type RunJson, readRunJson } from '../train/run.js';
import { IntegrityError } from '../util/errors.js';
import { canonical, configHash } from '../util/json.js';
import { writeSealedJson } from '../util/sealed-json.js';
import { toolkitVersion } from '../version.js';
import { type EmbedRunsOptions, embedRuns } from './embed-runs.js';
import { type PlannedRun, runNames, type StudyPlan } from './plan.js';
import type { ResolvedStudySpec } from './spec.js';

/** The outcome of one seed's embedding. */
export interface StudyEmbedding {
  readonly seed: number;
  /** DIR/embedding/s<seed>. */
  readonly dir: string;
  /** `computed` now, `reused` (same key), `failed` (see `error`), or `empty` (no complete run). */
  readonly outcome: 'computed' | 'reused' | 'failed' | 'empty';
  /** The embedded runs (study run names), in embedding order. */
  readonly runs: readonly string[];
  /** Runs of the seed left out because they are not complete (diverged ones among them), with why. */
  readonly excluded: EmbeddingKeyJson['excluded'];
  /** The embedding (computed or read back); absent when failed or empty. */
  readonly embedding?: RunEmbedding;
  readonly error?: string;
}

/** The directory of seed `seed`'s embedding inside the study directory `dir`. */
const embeddingDir = (dir: string, seed: number) => join(dir, 'embedding', `s${seed}`);

/** The runs of each parent seed in the plan: parent, fork groups (reference first), seed twins, baselines. */
function runsBySeed(study: ResolvedStudySpec, plan: StudyPlan): Map<number, PlannedRun[]> {
  const out = new Map<number, PlannedRun[]>();
  const baselineSeed = new Map(plan.twins.filter((t) => t.kind === 'init').map((t) => [t.runB, t.seed]));
  for (const seed of study.seeds) {
    const parent = runNames.parent(seed);
    out.set(seed, [
      ...plan.parents.filter((r) => r.name === parent),
      ...plan.groups.filter((g) => g.parent === parent).flatMap((g) => g.members),
      ...plan.seedTwins.filter((r) => r.fork?.parent === parent),
      ...plan.baselines.filter((r) => baselineSeed.get(r.name) === seed),
    ]);
  }
  return out;
}

/** The run.json of the complete run `planned` in `dir`, or why `dir` does not hold it. */
function runState(dir: string, planned: PlannedRun): { reason: string } | { json: RunJson } {
  if (!existsSync(join(dir, 'run.json'))) return { reason: 'missing (no run.json)' };
  let json: RunJson;
  try {
    json = readRunJson(dir);
  } catch (e) {
    // A damaged run.json stops the embedding (naming the file), rather than leaving the run out.
    if (e instanceof IntegrityError) throw e;
    return { reason: (e as Error).message };
  }
  if (json.diverged) return { reason: `diverged ${formatDivergence(json.diverged)}` };
  if (json.status !== 'complete') return { reason: `not complete (status ${json.status})` };
  if (canonical(json.spec) !== canonical(planned.spec)) return { reason: 'spec differs from the study' };
  return { json };
}

/** key.json, or undefined when it is missing or damaged (the embedding is then computed again). */
function readKey(path: string): Partial<EmbeddingKeyJson> | undefined {
  try {
    return readEmbeddingKey(path);
  } catch {
    return undefined;
  }
}

/** Remove the embedding files of `seed` (stale outputs of other inputs). */
function removeSeed(dir: string, seed: number): void {
  rmSync(embeddingDir(dir, seed), { recursive: true, force: true });
}

/** A complete run to embed: its name (the point label), directory and run.json. */
export interface KeyedRun {
  readonly name: string;
  readonly dir: string;
  readonly json: RunJson;
}

/** The options of an embedding that its key covers (see {@link embedKeyed}). */
export type KeyedEmbedOptions = Pick<EmbedRunsOptions, 'method' | 'components' | 'examples' | 'sigma'>;

/**
 * Embed `runs` with {@link embedRuns} into `outDir` (embedding.arrow, embedding.json, key.json), or
 * read the embedding back when key.json there holds the same key: the sha256 of the runs (name, and
 * their run.json spec, lineage, status and file hashes), `options` and the toolkit version. Points
 * are labelled with the run names, and run directories are stored relative to `relativeTo`. Before
 * a recompute `clear` removes the old outputs (default: the three files), and key.json is written
 * last, so a key always describes the files next to it. `excluded` (runs left out, with why) is
 * recorded in key.json.
 */
export async function embedKeyed(
  outDir: string,
  runs: readonly KeyedRun[],
  options: KeyedEmbedOptions,
  excluded: EmbeddingKeyJson['excluded'] = [],
  hooks: { log?: (message: string) => void; clear?: () => void; relativeTo?: string } = {},
): Promise<{ embedding: RunEmbedding; outcome: 'computed' | 'reused' }> {
  const say = hooks.log ?? (() => {});
  const key = configHash({
    runs: runs.map(({ name, json }) => ({
      name,
      spec: json.spec,
      lineage: json.lineage,
      status: json.status,
      files: json.files,
    })),
    options,
    toolkit: toolkitVersion(),
  });
  const keyPath = join(outDir, 'key.json');
  const keyJson: EmbeddingKeyJson = { format: 2, key, runs: runs.map((r) => r.name), excluded };
  const stored = readKey(keyPath);
  if (stored?.key === key) {
    try {
      const embedding = readEmbedding(outDir);
      say(`unchanged (${runs.length} runs), reusing ${outDir}`);
      // Same runs embedded, but the runs left out may have changed state.
      if (canonical(stored.excluded) !== canonical(excluded)) writeSealedJson(keyPath, keyJson);
      return { embedding, outcome: 'reused' };
    } catch (e) {
      say(`recomputing: ${(e as Error).message}`);
    }
  }
  // Old files (and figures) go first: an interrupted recompute leaves nothing stale behind.
  if (hooks.clear) hooks.clear();
  else
    for (const f of ['key.json', 'embedding.json', 'embedding.arrow'])
      rmSync(join(outDir, f), { force: true });
  say(`${options.method} of ${runs.length} runs`);
  const raw = await embedRuns(
    runs.map((r) => r.dir),
    { ...options, log: say },
  );
  const nameOf = new Map(raw.runs.map((label, i) => [label, runs[i]?.name as string]));
  const embedding: RunEmbedding = {
    ...raw,
    runs: runs.map((r) => r.name),
    runDirs: runs.map((r) => (hooks.relativeTo ? relative(hooks.relativeTo, r.dir) : r.dir)),
    points: raw.points.map((p) => ({ ...p, run: nameOf.get(p.run) ?? p.run })),
  };
  writeEmbedding(outDir, embedding);
  writeSealedJson(keyPath, keyJson);
  return { embedding, outcome: 'computed' };
}

/**
 * Embed every complete run of each parent seed of `plan` (the final plan of `study`, trained into
 * `dir`) and write DIR/embedding/s<seed>/ (see the module comment). Does nothing
 * without `study.measure.embedding`. Never throws for a seed: a failure is returned as `failed`.
 */
export async function embedStudy(
  study: ResolvedStudySpec,
  plan: StudyPlan,
  dir: string,
  log?: (message: string) => void,
): Promise<StudyEmbedding[]> {
  const spec = study.measure.embedding;
  if (!spec) return [];
  const root = join(dir, 'embedding');
  // Seeds no longer in the study: their embeddings describe runs the study does not have.
  if (existsSync(root)) {
    for (const e of readdirSync(root, { withFileTypes: true })) {
      const m = /^s(\d+)$/.exec(e.name);
      if (e.isDirectory() && m && !study.seeds.includes(Number(m[1]))) removeSeed(dir, Number(m[1]));
    }
  }
  const options = {
    method: spec.method,
    components: spec.components,
    ...(spec.method === 'inpca' && { examples: spec.examples }),
    ...(spec.method === 'inpca' && spec.sigma !== undefined && { sigma: spec.sigma }),
  };
  const out: StudyEmbedding[] = [];
  for (const [seed, planned] of runsBySeed(study, plan)) {
    const seedDir = embeddingDir(dir, seed);
    const say = (message: string) => log?.(`embedding s${seed}: ${message}`);
    const runs: { name: string; dir: string; json: RunJson }[] = [];
    const excluded: { name: string; reason: string }[] = [];
    for (const r of planned) {
      const runDir = join(dir, 'runs', r.name);
      const state = runState(runDir, r);
      if ('json' in state) runs.push({ name: r.name, dir: runDir, json: state.json });
      else excluded.push({ name: r.name, reason: state.reason });
    }
    if (excluded.length > 0) {
      say(`${excluded.length} run(s) left out: ${excluded.map((e) => `${e.name} (${e.reason})`).join(', ')}`);
    }
    const base = { seed, dir: seedDir, runs: runs.map((r) => r.name), excluded };
    if (runs.length === 0) {
      say('no complete run to embed');
      removeSeed(dir, seed);
      out.push({ ...base, outcome: 'empty' });
      continue;
    }
    try {
      const { embedding, outcome } = await embedKeyed(seedDir, runs, options, excluded, {
        log: say,
        clear: () => removeSeed(dir, seed),
        relativeTo: dir,
      });
      out.push({ ...base, outcome, embedding });
    } catch (e) {
      const error = (e as Error).message;
      say(`failed: ${error}`);
      removeSeed(dir, seed);
      out.push({ ...base, outcome: 'failed', error });
    }
  }
  return out;
}
