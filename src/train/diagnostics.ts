/**
 * Reading a run's measurements along training (docs/methods.md §12; the file: docs/formats.md,
 * "diagnostics.arrow") as plain rows for plots and tables: {@link readDiagnostics} (long form, with
 * the evaluation rows of the same steps) and {@link readSharpness} (one row per measured step). Both
 * check diagnostics.arrow and metrics.arrow against the checksums run.json records first.
 */
import {
  DIAGNOSTICS_FILE,
  type DiagnosticRow,
  METRICS_FILE,
  readDiagnosticRows,
  readMetrics,
} from '../store/index.js';
import { DIAGNOSTIC_METRICS as M } from './probe.js';
import { type RunJson, readRunJson } from './run.js';
import { checkRunFiles } from './run-files.js';

/** The metrics of {@link DiagnosticsRow}: measured ones (§12.1) and the evaluation's. */
export type DiagnosticsMetric =
  | 'grad_norm'
  | 'saturation'
  | 'dead_fraction'
  | 'weight_norm'
  | 'train_loss'
  | 'train_acc'
  | 'test_loss'
  | 'test_acc';

/** One value of a run's diagnostics (docs/methods.md §12.1), long form. */
export interface DiagnosticsRow {
  /** Updates done. */
  readonly step: number;
  readonly epoch: number;
  /**
   * `grad_norm`, `saturation`, `dead_fraction`, `weight_norm` from diagnostics.arrow; `train_loss`,
   * `train_acc`, `test_loss`, `test_acc` from the evaluation row of the same step in metrics.arrow
   * (whole train and test splits; accuracies are absent for regression).
   */
  readonly metric: DiagnosticsMetric;
  /**
   * `saturation`, `dead_fraction`: the hidden layer (`dense{i}`), or null for all ReLU units;
   * `weight_norm`: the tensor (`dense{i}.weight`), or null for all parameters; otherwise null.
   */
  readonly layer: string | null;
  /** Examples the value was computed on (null for weight norms and evaluation rows). */
  readonly examples: number | null;
  readonly value: number;
}

/** One step of a run's sharpness along training (docs/methods.md §12.2). */
export interface SharpnessRow {
  /** Updates done. */
  readonly step: number;
  readonly epoch: number;
  /** Examples of the training loss whose Hessian was measured (the first n of the train split). */
  readonly examples: number;
  readonly method: 'lanczos' | 'power';
  /** Top-k Hessian eigenvalues, largest first (NaN where a Hessian-vector product was not finite). */
  readonly eigenvalues: number[];
  /** ‖Hy − θy‖ of each eigenvalue's vector. */
  readonly residuals: number[];
  /** λ_max(P⁻¹H) with Adam's preconditioner (Adam/AdamW from step 1); null otherwise. */
  readonly preconditioned: number | null;
  /** The learning rate η of the update from this state (the last update's at the last step). */
  readonly lr: number;
  /** The stability threshold at η: 2/η, (2 + 2β)/η, … (null when η ≤ 0). */
  readonly threshold: number | null;
  /** What the threshold bounds: `eigenvalues[0]` (SGD) or `preconditioned` (Adam/AdamW). */
  readonly thresholdOf: 'sharpness' | 'preconditioned';
  /** Hutchinson's trace estimate (with `sharpness.probes` > 0); null otherwise. */
  readonly trace: { readonly mean: number; readonly stderr: number; readonly probes: number } | null;
}

/** run.json and the diagnostics rows of `dir` (none when the spec asks for neither key). */
function diagnosticFile(dir: string): { run: RunJson; rows: DiagnosticRow[] } {
  const run = readRunJson(dir);
  if (!run.spec.diagnostics && !run.spec.sharpness) return { run, rows: [] };
  checkRunFiles(dir, [DIAGNOSTICS_FILE, METRICS_FILE]);
  return { run, rows: readDiagnosticRows(dir) };
}

const DIAGNOSTIC_NAMES: ReadonlySet<string> = new Set([M.gradNorm, M.saturation, M.dead, M.weightNorm]);

/**
 * The diagnostics of run `dir` (its spec's `diagnostics`, docs/methods.md §12.1) as long-form rows,
 * by step: the measured values, then the evaluation's train/test loss and accuracy at that step.
 * Empty when the spec has no `diagnostics`. A running run's rows so far are read as they are; a
 * finished run's files must match run.json's checksums (a StoreError naming the file otherwise).
 */
export function readDiagnostics(dir: string): DiagnosticsRow[] {
  const { run, rows } = diagnosticFile(dir);
  if (!run.spec.diagnostics) return [];
  const measured = rows.filter((r) => DIAGNOSTIC_NAMES.has(r.metric));
  const steps = new Set(measured.map((r) => r.step));
  const evals = new Map(
    readMetrics(dir)
      .filter((r) => r.kind === 'eval' && steps.has(r.step))
      .map((r) => [r.step, r]),
  );
  const out: DiagnosticsRow[] = [];
  let i = 0;
  for (const step of [...steps].sort((a, b) => a - b)) {
    for (; i < measured.length && (measured[i] as DiagnosticRow).step === step; i++) {
      const r = measured[i] as DiagnosticRow;
      out.push({
        step,
        epoch: r.epoch,
        metric: r.metric as DiagnosticsMetric,
        layer: r.layer,
        examples: r.examples,
        value: r.value,
      });
    }
    const e = evals.get(step);
    if (!e) continue;
    const values: [DiagnosticsMetric, number | null | undefined][] = [
      ['train_loss', e.trainEvalLoss],
      ['train_acc', e.trainAcc],
      ['test_loss', e.testLoss],
      ['test_acc', e.testAcc],
    ];
    for (const [metric, value] of values) {
      if (value !== null && value !== undefined) {
        out.push({ step, epoch: e.epoch, metric, layer: null, examples: null, value });
      }
    }
  }
  return out;
}

/**
 * The sharpness of run `dir` along training (its spec's `sharpness`, docs/methods.md §12.2): one row
 * per measured step, in step order. Empty when the spec has no `sharpness`.
 */
export function readSharpness(dir: string): SharpnessRow[] {
  const { run, rows } = diagnosticFile(dir);
  const spec = run.spec.sharpness;
  if (!spec) return [];
  const thresholdOf = run.spec.optimizer.kind === 'sgd' ? 'sharpness' : 'preconditioned';
  const byStep = new Map<number, DiagnosticRow[]>();
  for (const r of rows) {
    if (DIAGNOSTIC_NAMES.has(r.metric)) continue;
    const list = byStep.get(r.step) ?? [];
    list.push(r);
    byStep.set(r.step, list);
  }
  return [...byStep.entries()]
    .sort(([a], [b]) => a - b)
    .map(([step, list]) => {
      const one = (metric: string) => list.find((r) => r.metric === metric);
      const ranked = (metric: string) =>
        list
          .filter((r) => r.metric === metric)
          .sort((a, b) => (a.rank ?? 0) - (b.rank ?? 0))
          .map((r) => r.value);
      const eigen = list.find((r) => r.metric === M.eigenvalue);
      const trace = one(M.trace);
      return {
        step,
        epoch: (list[0] as DiagnosticRow).epoch,
        examples: eigen?.examples ?? 0,
        method: spec.method,
        eigenvalues: ranked(M.eigenvalue),
        residuals: ranked(M.eigenvalueResidual),
        preconditioned: one(M.preconditioned)?.value ?? null,
        lr: one(M.lr)?.value ?? Number.NaN,
        threshold: one(M.threshold)?.value ?? null,
        thresholdOf,
        trace: trace
          ? { mean: trace.value, stderr: one(M.traceStderr)?.value ?? Number.NaN, probes: spec.probes }
          : null,
      };
    });
}
