/**
 * The Arrow trajectory store of one run directory: `checkpoints.arrow` (one row per checkpoint:
 * `step`, `epoch`, one FixedSizeList<Float32> column per layout tensor, `opt.step`, `opt.slot{i}`)
 * and `metrics.arrow` (one row per training step, `kind` `'step'`, plus `kind` `'eval'` rows), and
 * for runs that measure along training `diagnostics.arrow` (long form: step, metric, layer, rank,
 * examples, value). Arrow IPC streams while a run is in progress, the Arrow IPC file format once
 * finalized.
 */
export type { Checkpoint, DiagnosticRow, MetricRow } from './codec.js';
export { NotARunDirError, StoreError } from './errors.js';
export { scanFile } from './ipc.js';
export type { ExpectedFile, ReadOptions, VerifyResult } from './reader.js';
export {
  checkFileChecksum,
  iterateCheckpoints,
  readCheckpointSteps,
  readCheckpoints,
  readDiagnosticRows,
  readLayout,
  readMetrics,
  verifyFiles,
} from './reader.js';
export type { LayoutMeta } from './schema.js';
export { CHECKPOINTS_FILE, DIAGNOSTICS_FILE, FORMAT_VERSION, METRICS_FILE } from './schema.js';
export type { FileSummary, FinalizeOptions, RunWriterOptions } from './writer.js';
export { openRunWriter, RunWriter } from './writer.js';
