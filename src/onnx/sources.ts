/**
 * Where a model to compare (or merge) comes from: an ONNX file, or a twinscope run directory at a
 * checkpoint (`DIR` for its last checkpoint, `DIR@STEP`). A run is exported in memory
 * (src/onnx/export-model.ts) and imported like any ONNX file, so both kinds go through one path.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { exportRunOnnx, parseRunTarget } from './export-model.js';
import { type ImportedModel, importOnnx, importOnnxFile } from './import-model.js';
import { OnnxModelError } from './proto.js';

/** An imported model and, for a run directory, the checkpoint step it was taken at. */
export interface LoadedModel {
  readonly model: ImportedModel;
  readonly step: number | null;
}

/** Load `ref`: an ONNX file, a run directory, or `DIR@STEP`. */
export function loadModelRef(ref: string): LoadedModel {
  const { dir, step } = parseRunTarget(ref);
  const kind = statSync(dir, { throwIfNoEntry: false });
  if (!kind)
    throw new OnnxModelError(`${ref}: no such file or directory (expected an ONNX file or a run directory)`);
  if (kind.isDirectory()) {
    if (!existsSync(join(dir, 'run.json'))) {
      throw new OnnxModelError(
        `${ref}: a folder without run.json (expected an ONNX file or a run directory)`,
      );
    }
    const exported = exportRunOnnx(dir, step);
    return { model: importOnnx(exported.bytes, `${dir}@${exported.step}`), step: exported.step };
  }
  if (step !== undefined) throw new OnnxModelError(`${ref}: @STEP applies to run directories, not files`);
  return { model: importOnnxFile(dir), step: null };
}
