/**
 * Twins aligned to their reference. A study stores an alignment as a small sealed JSON file, the
 * permutation of every hidden layer plus the two runs it relates ({@link writeAlignment}), not as a
 * permuted copy of the twin's trajectory (which is as large as the run itself; issue 16 measured
 * 6.6 GB of copies for butterfly-mnist). {@link materializeAlignment} (`twinscope materialize`)
 * writes the copy on demand: every checkpoint of B (weights and optimizer slots) with the hidden
 * units permuted into A's order, B's metrics unchanged (a permutation does not change the network
 * function), and a lineage that names the reference and the alignment method. The result opens
 * with `inspect`/`verify` and can be merged with A coordinate-wise.
 */
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { applyPermutations, mlpPermutationSpec, type PermutationSpec } from '../measure/align.js';
import { permutationSpecFor } from '../measure/net-permutation-spec.js';
import { openRunWriter, readMetrics } from '../store/index.js';
import { type RunJson, readRunJson, runContextParts, specHash, writeRunJson } from '../train/run.js';
import { readRunCheckpoints } from '../train/run-files.js';
import { IntegrityError } from '../util/errors.js';
import { LOCK_NAME, withFolderLock } from '../util/folder-lock.js';
import { readSealedJson, writeSealedJson } from '../util/sealed-json.js';

/** The format of alignment files. */
const ALIGNMENT_FORMAT = 1;

/** An alignment as stored: B's hidden units permuted into A's order. */
export interface Alignment {
  /** The run that is permuted (B) and the reference (A), absolute paths. */
  readonly sourceDir: string;
  readonly referenceDir: string;
  /** `weight` or `activation` matching (or any label). */
  readonly method: string;
  /** The checkpoint step at which the permutations were found. */
  readonly step: number;
  /** One permutation per hidden layer: unit i of A's order is unit perms[l][i] of B. */
  readonly perms: readonly Int32Array[];
  /** B's spec hash when the alignment was found (a re-trained B makes the alignment stale). */
  readonly sourceSpecHash: string;
}

/**
 * Write `alignment` to `file` (sealed JSON, atomic): `format`, `kind` = `alignment`, `method`,
 * `step`, `source` and `reference` (paths relative to the file's folder), `sourceSpecHash`, and
 * `perms` as arrays of integers.
 */
export function writeAlignment(file: string, alignment: Alignment): void {
  mkdirSync(dirname(file), { recursive: true });
  const at = dirname(file);
  writeSealedJson(file, {
    format: ALIGNMENT_FORMAT,
    kind: 'alignment',
    method: alignment.method,
    step: alignment.step,
    source: relative(at, alignment.sourceDir),
    reference: relative(at, alignment.referenceDir),
    sourceSpecHash: alignment.sourceSpecHash,
    perms: alignment.perms.map((p) => Array.from(p)),
  });
}

/**
 * Read an alignment file ({@link writeAlignment}), its seal checked.
 * @throws IntegrityError when the seal does not match or a field is malformed.
 */
export function readAlignment(file: string): Alignment {
  const doc = readSealedJson(file);
  const bad = (what: string) => new IntegrityError(`${file}: ${what}`, file);
  if (doc.kind !== 'alignment' || doc.format !== ALIGNMENT_FORMAT) {
    throw bad(
      `not an alignment file of format ${ALIGNMENT_FORMAT} (kind ${String(doc.kind)}, format ${String(doc.format)})`,
    );
  }
  const { method, step, source, reference, sourceSpecHash, perms } = doc;
  if (typeof method !== 'string' || typeof source !== 'string' || typeof reference !== 'string') {
    throw bad('method, source and reference must be strings');
  }
  if (typeof sourceSpecHash !== 'string') throw bad('sourceSpecHash must be a string');
  if (!Number.isSafeInteger(step) || (step as number) < 0) throw bad('step must be an integer >= 0');
  if (!Array.isArray(perms) || !perms.every((p) => Array.isArray(p) && isPermutation(p))) {
    throw bad('perms must be a list of permutations of 0 … n−1');
  }
  const at = dirname(file);
  return {
    sourceDir: resolve(at, source),
    referenceDir: resolve(at, reference),
    method,
    step: step as number,
    perms: perms.map((p) => Int32Array.from(p as number[])),
    sourceSpecHash,
  };
}

function isPermutation(p: readonly unknown[]): boolean {
  const seen = new Uint8Array(p.length);
  for (const v of p) {
    if (!Number.isSafeInteger(v) || (v as number) < 0 || (v as number) >= p.length || seen[v as number]) {
      return false;
    }
    seen[v as number] = 1;
  }
  return true;
}

/**
 * Write the run that `file` describes (B permuted into A's order) into `outDir`, as
 * {@link exportAlignedRun} does. Refuses an alignment whose source run has been re-trained since
 * (its spec hash differs) or whose permutations do not fit the run's layout.
 */
export async function materializeAlignment(file: string, outDir: string): Promise<RunJson> {
  const a = readAlignment(file);
  const source = readRunJson(a.sourceDir);
  if (source.specHash !== a.sourceSpecHash) {
    throw new IntegrityError(
      `${file}: the run ${a.sourceDir} has spec hash ${source.specHash.slice(0, 16)}…, but the alignment was found for ${a.sourceSpecHash.slice(0, 16)}… (re-run the study to align it again)`,
      file,
    );
  }
  // One writer per output folder, as for every folder twinscope writes.
  return withFolderLock(outDir, () =>
    exportAlignedRun(a.sourceDir, a.referenceDir, a.perms, a.method, outDir),
  );
}

/**
 * The permutation spec of a run's model: an MLP's from its layout; a CNN's or ResNet's from its
 * model spec (which needs the data's input and output sizes, so the dataset is loaded).
 */
function runPermutationSpec(run: RunJson): PermutationSpec {
  const dense = run.layout.tensors.every((t) => /^dense\d+\.(weight|bias)$/.test(t.name));
  return dense ? mlpPermutationSpec(run.layout) : permutationSpecFor(runContextParts(run.spec).model);
}

/**
 * Write `sourceDir` permuted by `perms` into `outDir` (its contents replaced if it exists, so that a
 * re-run rewrites it whole; a folder lock in it is kept). `referenceDir` and `method` are recorded in the lineage.
 */
export async function exportAlignedRun(
  sourceDir: string,
  referenceDir: string,
  perms: readonly Int32Array[],
  method: string,
  outDir: string,
): Promise<RunJson> {
  const source = readRunJson(sourceDir);
  if (source.status !== 'complete')
    throw new Error(`${sourceDir}: run is not complete; cannot export it aligned`);
  // Replace what the folder holds, but not a folder lock (the caller's, e.g. materializeAlignment's).
  if (existsSync(outDir)) {
    for (const name of readdirSync(outDir)) {
      if (name !== LOCK_NAME) rmSync(join(outDir, name), { recursive: true });
    }
  }
  const spec = runPermutationSpec(source);
  const checkpoints = readRunCheckpoints(sourceDir);
  const slotCount = checkpoints[0]?.opt.slots.length ?? 0;
  const { writer } = await openRunWriter(outDir, source.layout, slotCount);
  try {
    await writer.appendMetrics(readMetrics(sourceDir));
    for (const c of checkpoints) {
      await writer.appendCheckpoint({
        ...c,
        params: applyPermutations(c.params, source.layout, perms, spec),
        opt: {
          step: c.opt.step,
          slots: c.opt.slots.map((s) => applyPermutations(s, source.layout, perms, spec)),
        },
      });
    }
    const files = await writer.finalize();
    const lineage = {
      ...source.lineage,
      alignedFrom: relative(outDir, sourceDir),
      alignedTo: relative(outDir, referenceDir),
      alignment: method,
    };
    const run: RunJson = { ...source, lineage, specHash: specHash(source.spec, lineage), files };
    writeRunJson(outDir, run);
    return run;
  } finally {
    writer.close();
  }
}
