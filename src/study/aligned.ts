/**
 * Export a twin aligned to its reference as a run of its own: every checkpoint of B (weights and
 * optimizer slots) with the hidden units permuted into A's order, B's metrics unchanged (a
 * permutation does not change the network function), and a lineage that names the reference and
 * the alignment method. The result opens with `inspect`/`verify` and can be merged with A
 * coordinate-wise.
 */
import { existsSync, rmSync } from 'node:fs';
import { relative } from 'node:path';
import { applyPermutations } from '../measure/align.js';
import { openRunWriter, readMetrics } from '../store/index.js';
import { type RunJson, readRunJson, specHash, writeRunJson } from '../train/run.js';
import { readRunCheckpoints } from '../train/run-files.js';

/**
 * Write `sourceDir` permuted by `perms` into `outDir` (replaced if it exists, so that a re-run
 * rewrites it whole). `referenceDir` and `method` are recorded in the lineage.
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
  if (existsSync(outDir)) rmSync(outDir, { recursive: true });
  const checkpoints = readRunCheckpoints(sourceDir);
  const slotCount = checkpoints[0]?.opt.slots.length ?? 0;
  const { writer } = await openRunWriter(outDir, source.layout, slotCount);
  try {
    await writer.appendMetrics(readMetrics(sourceDir));
    for (const c of checkpoints) {
      await writer.appendCheckpoint({
        ...c,
        params: applyPermutations(c.params, source.layout, perms),
        opt: { step: c.opt.step, slots: c.opt.slots.map((s) => applyPermutations(s, source.layout, perms)) },
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
