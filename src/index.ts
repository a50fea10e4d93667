/**
 * twinscope's public API: re-exports only. See docs/architecture.md for where each piece lives.
 *
 * @packageDocumentation
 */

// Benchmarks.
export { runTrainBenchmark } from './bench/train-bench.js';

// Datasets and deterministic batching.
export * from './data/index.js';
export type { Batch } from './data/types.js';
// Graph IR, autodiff and ONNX emission, for custom jobs.
export { gradients } from './engine/ir/autodiff.js';
export { Graph, type Tensor } from './engine/ir/graph.js';
export { emitLoop, emitOnnx, type FloatType } from './engine/onnx/emit.js';
// Engines: the contract, the ONNX Runtime engine and the tfjs reference engine.
export { createOrtEngine, EVAL_CHUNK, OrtJobs } from './engine/ort/engine.js';
export { measureGemmPeak } from './engine/ort/gemm.js';
export { createLockstepEngine, type LockstepEngine } from './engine/ort/lockstep.js';
export { createTfjsEngine } from './engine/tfjs/engine.js';
export {
  type Engine,
  type EngineOptions,
  type EvalResult,
  type OptimizerSpec,
  type OptimizerState,
  resolveOptimizer,
  type TrainState,
} from './engine/types.js';
export { exportParquet } from './export/parquet.js';
// Measurements.
export {
  activationMatching,
  applyPermutations,
  mlpPermutationSpec,
  weightMatching,
} from './measure/align.js';
export { assignmentObjective, linearAssignment } from './measure/assignment.js';
export {
  alphaGrid,
  type BarrierConvention,
  barrier,
  interpolate,
  interpolationCurve,
  linearlyConnected,
} from './measure/barrier.js';
// Trajectory embeddings.
export {
  BC_FLOOR,
  type BhattacharyyaMatrixOptions,
  bhattacharyya,
  bhattacharyyaMatrix,
  bhattacharyyaMatrixJs,
  gaussianBhattacharyya,
  gaussianBhattacharyyaMatrix,
  type ProbabilityArray,
} from './measure/bhattacharyya.js';
export { angularCka, type CkaOptions, cka, type Matrix, minibatchCka } from './measure/cka.js';
export {
  amplification,
  cosineSimilarity,
  l2Distance,
  l2Norm,
  normalizedL2,
  perTensorL2,
} from './measure/distance.js';
export { type SymmetricEigen, symmetricEigen } from './measure/eigen.js';
export {
  type InpcaEmbedding,
  type InpcaOptions,
  inpca,
  inpcaProject,
  inpcaSquaredDistance,
  widthRatios,
} from './measure/inpca.js';
export { pcaProject, type TrajectoryPca, type TrajectoryPcaOptions, trajectoryPca } from './measure/pca.js';
// Models: specs, parameter layouts, initialization.
export { type LossKind, type ModelGraphSpec, modelGraphSpec } from './model/graph.js';
export { initParams } from './model/init.js';
export {
  initStd,
  layoutOf,
  type ParameterLayout,
  type TensorSlot,
  tensorSlot,
  tensorView,
} from './model/layout.js';
export {
  type Activation,
  type DenseLayer,
  defaultInit,
  denseLayers,
  type InitSpec,
  type ModelSpec,
} from './model/spec.js';
export { butterflyPlots } from './report/butterfly-plots.js';
export {
  axisTitle,
  type EmbedPlot,
  type EmbedPlotOptions,
  embedPlots,
  seedPlotOptions,
  writeEmbedPlots,
} from './report/embed-plots.js';
// Reports.
export {
  escapeHtml,
  jsonForScript,
  type ReportPlot,
  type ReportResult,
  renderReportHtml,
  writeReport,
} from './report/html.js';
export { withLegendToggle } from './report/interactive.js';
// Plots.
export { renderPlot, THEME, writePlot, writePlots } from './report/plot.js';
export { groupPlots } from './report/ribbon-plots.js';
export {
  NotAStudyError,
  type ReportRun,
  readStudyDir,
  type StudyDirContents,
} from './report/study-dir.js';
export {
  cumulativeExplained,
  EmbeddingFileError,
  type EmbeddingJson,
  type EmbeddingKeyJson,
  type EmbedMethod,
  type EmbedPoint,
  embeddingJson,
  embeddingTable,
  type RunEmbedding,
  readEmbedding,
  type WrittenEmbedding,
  writeEmbedding,
} from './results/embedding.js';
export {
  type EmbeddedGroup,
  groupSummary,
  groupTable,
  type SweepGroup,
  writeGroupSummary,
} from './results/groups.js';
export { METRICS, type PerturbationKind, type TwinInfo } from './results/metrics.js';
export type { StudyJson, StudyStatus } from './results/study-files.js';
// Random numbers: counter-based Philox4x32-10 streams.
export * from './rng/index.js';
// Run specs, runs on disk, the trajectory store and exports.
export * from './spec/index.js';
export * from './store/index.js';
export { exportAlignedRun } from './study/aligned.js';
export { EmbedInputError, type EmbedRunsOptions, embedRuns } from './study/embed-runs.js';
export {
  embedKeyed,
  embedStudy,
  type KeyedEmbedOptions,
  type KeyedRun,
  type StudyEmbedding,
} from './study/embed-study.js';
export { measurePair, type PairMeasurement } from './study/measure-pair.js';
export { derivedSeed, type ForkGroup, type PlannedRun, planStudy, type StudyPlan } from './study/plan.js';
export {
  ControlError,
  runStudy,
  type StudyEvents,
  type StudyOptions,
  type StudyResult,
} from './study/run-study.js';
export { runSweep, type SweepOptions, type SweepResult } from './study/run-sweep.js';
// Twin studies.
export {
  loadStudySpec,
  type MeasureSpec,
  type OnsetSpec,
  type PerturbationGrid,
  parseStudySpec,
  type ResolvedStudySpec,
} from './study/spec.js';
export { expandGrid } from './study/sweep-grid.js';
export { loadSweepSpec, parseSweepSpec, type ResolvedSweepSpec, type SweepEmbedSpec } from './study/sweep-spec.js';
export { type SweepPoint } from './study/sweep-grid.js';
// Twins: perturbations and forking.
export {
  type ForkLineage,
  type ForkMember,
  forkRun,
  trainForkGroup,
  type WeightPerturbation,
} from './train/fork.js';
export {
  formatInspection,
  inspectRun,
  type RunInspection,
  type RunVerifyResult,
  verifyRun,
} from './train/inspect.js';
// Training loop.
export {
  batchForStep,
  type StepRecord,
  type TrainLoopOptions,
  trainUntil,
} from './train/loop.js';
export {
  applyPerturbation,
  gaussianPerturbation,
  gradientPerturbation,
  initScaleNorm,
  type Perturbation,
  type PerturbationScope,
} from './train/perturb.js';
export { type RunJson, type RunProgress, readRunJson, type TrainRunOptions, trainRun } from './train/run.js';
export { toolkitVersion } from './version.js';
