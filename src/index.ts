// biome-ignore-all assist/source/organizeImports: exports are grouped by pipeline stage, in data-flow order
/**
 * twinscope's public API: re-exports only, as explicit lists grouped by pipeline stage in data-flow
 * order (docs/architecture.md says where each piece lives). Every type named in a public signature is
 * exported too (`npm run api` checks it with API Extractor), and each symbol is documented where it
 * is declared.
 *
 * @packageDocumentation
 */

// Version and random numbers: counter-based Philox4x32-10 streams and the splittable Rng.
export { toolkitVersion } from './version.js';
export { philox4x32 } from './rng/philox.js';
export { deriveKey, type PhiloxKey, streamMessage } from './rng/derive.js';
export { Rng } from './rng/rng.js';

// Bad input (exit code 2 in the CLI), damaged files (exit 1), integrity checks and the
// one-writer-per-folder lock.
export { InputError, IntegrityError } from './util/errors.js';
export { type FileDigest, digestFile } from './util/file-digest.js';
export { readSealedJson, writeSealedJson } from './util/sealed-json.js';
export { findStrayTemps, type StrayTemp } from './util/stray-temps.js';
export {
  type FolderLock,
  type FolderLockOptions,
  LockedError,
  type LockHolder,
  lockFolder,
  withFolderLock,
} from './util/folder-lock.js';

// Data: datasets, splits, standardization and deterministic batching.
export type {
  ArrowSpec,
  Batch,
  CommonDatasetSpec,
  Dataset,
  DatasetSpec,
  FashionMnistSpec,
  LinearRegressionSpec,
  MnistSpec,
  MoonsSpec,
  Split,
  Task,
} from './data/types.js';
export { loadDataset } from './data/load.js';
export { DataError } from './data/check.js';
export { validateDataset } from './data/validate.js';
export { loadMoons, makeMoons } from './data/moons.js';
export { loadMnist, mnistDigitsDir, readMnistDigits } from './data/mnist.js';
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, loadFashionMnist } from './data/fashion-mnist.js';
export { type IdxArray, type IdxType, parseIdx, readIdxFile } from './data/idx.js';
export {
  type LinearRegressionData,
  loadLinearRegression,
  makeLinearRegression,
} from './data/linear-regression.js';
export { type ArrowExamples, loadArrow, readArrowExamples } from './data/arrow.js';
export { classificationSplit, oneHot, regressionSplit, takeRows } from './data/rows.js';
export { featureStats, splitIndices, standardize, subsetIndices } from './data/split.js';
export {
  type BatchSize,
  batchHash,
  batchIndices,
  batchIndicesAtStep,
  gatherBatch,
  stepsPerEpoch,
} from './data/batching.js';

// Models: specs, dense layers, layer graphs (conv nets, ResNets), parameter layouts, initialization.
export {
  type Activation,
  type DenseLayer,
  defaultInit,
  denseLayers,
  type InitSpec,
  type ModelSpec,
} from './model/spec.js';
export {
  type CnnSpec,
  cnnNet,
  type ImageShape,
  imageShape,
  type Net,
  type NetNode,
  type NetNodeBase,
  type NormKind,
  type ResnetSpec,
  resnetNet,
} from './model/net.js';
export {
  initStd,
  isTrainable,
  layoutOf,
  netLayoutOf,
  type ParameterLayout,
  type TensorRole,
  type TensorSlot,
  tensorSlot,
  tensorView,
  trainableEntries,
} from './model/layout.js';
export { initParams } from './model/init.js';
export {
  hasNormBuffers,
  hiddenOutputs,
  type LossKind,
  type ModelGraphSpec,
  modelGraphSpec,
} from './model/graph.js';

// Engines: the contract, the ONNX Runtime engine (single runs and lock-step groups), the tfjs
// reference engine; the graph IR, its autodiff and ONNX emission for custom graphs.
export type {
  Engine,
  EngineOptions,
  EvalResult,
  EvaluateManyOptions,
  OptimizerSpec,
  OptimizerState,
  ParamsBatch,
  ParamsCombination,
  TrainState,
} from './engine/types.js';
export { createOrtEngine } from './engine/ort/engine.js';
export { createLockstepEngine, type LockstepEngine } from './engine/ort/lockstep.js';
export { createTfjsEngine } from './engine/tfjs/engine.js';
export { measureGemmPeak } from './engine/ort/gemm.js';
export {
  type AttrValue,
  type ConvOptions,
  type DType,
  Graph,
  type Node,
  type Tensor,
} from './engine/ir/graph.js';
export { gradients } from './engine/ir/autodiff.js';
export { emitOnnx, type FloatType } from './engine/onnx/emit.js';

// Run specs: parsing with every default filled, the step plan, checkpoint and learning-rate
// schedules (the spec stage's own list).
export {
  type CheckpointSchedule,
  checkpointSteps,
  compileLrSchedule,
  type DiagnosticsSpec,
  type EngineKind,
  everySteps,
  loadRunSpec,
  logSteps,
  type LrSchedule,
  maoSteps,
  type MeasureEvery,
  parseRunSpec,
  planRun,
  type ResolvedModelSpec,
  type ResolvedOptimizerSpec,
  type ResolvedRunSpec,
  type RunPlan,
  type SharpnessSpec,
  SpecError,
  totalSteps,
} from './spec/index.js';

// The trajectory store of a run directory: checkpoints.arrow and metrics.arrow, and diagnostics.arrow
// of runs that measure along training (the store stage's own list).
export {
  type Checkpoint,
  CHECKPOINTS_FILE,
  DIAGNOSTICS_FILE,
  type DiagnosticRow,
  type ExpectedFile,
  type FileSummary,
  type FinalizeOptions,
  FORMAT_VERSION,
  iterateCheckpoints,
  type LayoutMeta,
  type MetricRow,
  METRICS_FILE,
  openRunWriter,
  type ReadOptions,
  readCheckpointSteps,
  readCheckpoints,
  readDiagnosticRows,
  readLayout,
  readMetrics,
  NotARunDirError,
  RunWriter,
  type RunWriterOptions,
  StoreError,
  type VerifyResult,
  verifyFiles,
} from './store/index.js';

// Training: the loop, runs on disk, twin perturbations and forking, inspection, measurements along
// training (the probe contract and the readers of diagnostics.arrow).
export {
  batchForStep,
  type StepRecord,
  type TrainLoopOptions,
  trainUntil,
} from './train/loop.js';
export {
  type Divergence,
  formatDivergence,
  type RunJson,
  type RunProgress,
  type RunStart,
  readRunJson,
  type TrainRunOptions,
  trainRun,
} from './train/run.js';
export {
  applyPerturbation,
  gaussianPerturbation,
  gradientPerturbation,
  initScaleNorm,
  type Perturbation,
  type PerturbationScope,
} from './train/perturb.js';
export {
  type ForkLineage,
  type ForkMember,
  forkRun,
  type GroupProgress,
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
export { checkRunFiles, readRunCheckpoints } from './train/run-files.js';
export { DIAGNOSTIC_METRICS, type ProbeInput, type RunProbe } from './train/probe.js';
export {
  type DiagnosticsMetric,
  type DiagnosticsRow,
  readDiagnostics,
  readSharpness,
  type SharpnessRow,
} from './train/diagnostics.js';

// Measurements: distances, loss barriers, permutation alignment, CKA, Lyapunov exponents,
// trajectory embeddings (Bhattacharyya distances, InPCA, PCA), sharpness and the diagnostics along
// training, weight-perturbation sensitivity and loss surfaces.
export {
  amplification,
  cosineSimilarity,
  l2Distance,
  l2Norm,
  normalizedL2,
  perTensorL2,
} from './measure/distance.js';
export {
  alphaGrid,
  barrier,
  type BarrierConvention,
  type BarrierResult,
  type CurveData,
  interpolate,
  type InterpolationCurve,
  interpolationCurve,
  linearlyConnected,
  type NormHandling,
} from './measure/barrier.js';
export {
  type AssignmentOptions,
  assignmentObjective,
  type CostMatrix,
  linearAssignment,
} from './measure/assignment.js';
export {
  activationMatching,
  type ActivationMatchingOptions,
  applyPermutations,
  buildPermutationSpec,
  type HiddenPermutation,
  mlpPermutationSpec,
  type PermutationAxis,
  type PermutationGroup,
  type PermutationSpec,
  weightMatching,
  type WeightMatchingOptions,
  type WeightMatchingResult,
} from './measure/align.js';
// Permutation specs of CNNs and ResNets: channel groups, residual streams merged (union-find).
export { netPermutationSpec, permutationSpecFor } from './measure/net-permutation-spec.js';
export {
  angularCka,
  cka,
  type CkaKernel,
  type CkaOptions,
  type Matrix,
  minibatchCka,
  type MinibatchCkaOptions,
} from './measure/cka.js';
export { fitLogSlope, type LyapunovFit, lyapunovExponents } from './measure/lyapunov.js';
export {
  BC_FLOOR,
  bhattacharyya,
  bhattacharyyaMatrix,
  bhattacharyyaMatrixJs,
  type BhattacharyyaMatrixOptions,
  gaussianBhattacharyya,
  gaussianBhattacharyyaMatrix,
  type ProbabilityArray,
} from './measure/bhattacharyya.js';
export { type SymmetricEigen, symmetricEigen } from './measure/eigen.js';
export {
  adamPreconditioner,
  engineHvp,
  type HutchinsonOptions,
  type HutchinsonResult,
  hutchinsonTrace,
  type HvpFn,
  lanczos,
  type LanczosOptions,
  type LanczosResult,
  powerIteration,
  type PowerIterationOptions,
  type PowerIterationResult,
  preconditionedHvp,
  preconditionedSharpness,
  stabilityThreshold,
} from './measure/hessian.js';
export {
  type GradientNorm,
  gradientNorm,
  type LayerSaturation,
  measureSharpness,
  reluSaturation,
  SATURATION_THRESHOLD,
  type SharpnessMeasurement,
  type SharpnessOptions,
  trainingProbe,
  trainSubset,
  weightNorms,
} from './measure/diagnostics.js';
export {
  inpca,
  type InpcaEmbedding,
  type InpcaOptions,
  inpcaProject,
  inpcaSquaredDistance,
  widthRatios,
} from './measure/inpca.js';
export { pcaProject, type TrajectoryPca, trajectoryPca, type TrajectoryPcaOptions } from './measure/pca.js';
export { averageRanks, type RankCorrelation, spearman } from './measure/rank-correlation.js';
export {
  type CriticalSigmaMeasurement,
  type CriticalSigmaOptions,
  type CriticalSigmaResult,
  type CriticalSigmaSearchOptions,
  criticalSigma,
  engineEvaluator,
  findCriticalSigma,
  type FrozenRange,
  type LossAccuracy,
  type NoiseKind,
  type NoiseStreams,
  noiseStream,
  type ParamsEvaluator,
  perturbWeights,
  type SensitivityLevel,
  type SensitivityOptions,
  type SensitivityResult,
  type SigmaProbe,
  type SummaryStats,
  summaryStats,
  weightSensitivity,
} from './measure/sensitivity.js';
export {
  type BiasDirection,
  type FilterNormalizeOptions,
  filterNormalize,
  type LineSpec,
  type LossLine,
  type LossSurface,
  lossLine,
  lossSurface,
  type PcaPlane,
  type PcaPlaneOptions,
  type PcaSurface,
  type PcaSurfaceOptions,
  pcaPlane,
  pcaSurface,
  projectOntoPlane,
  type RandomDirectionOptions,
  type RandomPlaneDirections,
  type RandomPlaneOptions,
  type RandomPlaneSurface,
  randomDirection,
  randomPlaneSurface,
  type SurfaceGridOptions,
  surfaceAxis,
} from './measure/surface.js';

// Models from anywhere as ONNX: import (weights become graph inputs, activations extra outputs,
// one onnxruntime session per architecture), export of a run's checkpoint as a standard ONNX
// model, and the comparison of two models (distances, interpolation barriers, CKA).
export { OnnxModelError } from './onnx/proto.js';
export {
  checkSameArchitecture,
  type HiddenOutput,
  type ImportedArchitecture,
  type ImportedModel,
  type ImportOptions,
  importOnnx,
  importOnnxFile,
} from './onnx/import-model.js';
export { type HiddenValues, type ImportedEval, ImportedSession } from './onnx/session.js';
export {
  type ExportOptions,
  exportModelOnnx,
  exportRunOnnx,
  parseRunTarget,
  type RunCheckpointModel,
  readRunCheckpointModel,
} from './onnx/export-model.js';
export { type LoadedModel, loadModelRef } from './onnx/sources.js';
export {
  type AlignedComparison,
  type AlignMethod,
  type BarrierPair,
  type CompareAlignment,
  type CompareData,
  type CompareOptions,
  type CompareResult,
  compareModels,
  type SplitCurve,
} from './onnx/compare.js';
// Permutation specs of imported graphs: inferred (channels, residual streams), read from JSON, checked.
export {
  type CheckSpecOptions,
  checkPermutationSpec,
  inferPermutationSpec,
  type PermutationSpecJson,
  parsePermutationSpec,
  permutationSpecJson,
  readPermutationSpecFile,
} from './onnx/permutation-spec.js';
// Normalization statistics at any weight vector of an imported model: BatchNorm running statistics
// recomputed as PyTorch does (momentum=None), copied, or REPAIR (Jordan et al. 2022).
export {
  type AffineLayer,
  type BatchNormNode,
  type ChannelMoments,
  NORM_MODES,
  type NormMode,
  NormStats,
  type NormStatsOptions,
  normalizationLayers,
  type RepairEndpoint,
} from './onnx/norm-stats.js';
// Merging imported models: the merge rules on flat weight vectors (linear, SLERP, task arithmetic,
// TIES, DARE, greedy soup), and `twinscope merge` (alignment to a reference, normalization
// statistics, scores, the merged model as standard ONNX).
export {
  type DareOptions,
  dareDrop,
  dareMerge,
  greedySoup,
  linearMerge,
  SLERP_COLINEAR,
  type SoupStep,
  slerpMerge,
  slerpTensor,
  type TaskVectorOptions,
  type TiesOptions,
  taskArithmetic,
  tiesMerge,
  trimTopK,
} from './onnx/merge-methods.js';
export {
  checkMergeOptions,
  MERGE_METHODS,
  type MergeAlignment,
  type MergeMethod,
  type MergeOptions,
  type MergeResult,
  type ModelScore,
  mergedOnnx,
  mergeModels,
  type SplitScore,
} from './onnx/merge.js';

// Results on disk: result rows, metric names, embeddings, sweep groups, study.json and status.json.
export { type ResultRow, readResults } from './results/rows.js';
export { METRICS, type PerturbationKind, type TwinInfo } from './results/metrics.js';
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
  type GroupedEmbedding,
  groupSummary,
  groupTable,
  type SweepGroup,
  writeGroupSummary,
} from './results/groups.js';
export type {
  DivergedRun,
  PhaseTotals,
  StudyBreakdown,
  StudyJson,
  StudyStatus,
} from './results/study-files.js';
export {
  readSurface,
  type SurfaceData,
  type SurfaceMeta,
  type SurfacePathPoint,
  writeSurface,
} from './results/surface-files.js';

// Execution: what a pool of worker processes reports back; where a distributed queue is.
export type { PoolResult } from './exec/pool.js';
export { parseQueueUrl, type QueueTarget } from './exec/queue.js';

// Studies and sweeps: specs, plans, running them, pair measurements, embeddings.
export {
  type ForkStep,
  loadStudySpec,
  type MeasureSpec,
  type MeasureWhen,
  type OnsetSpec,
  parseStudySpec,
  type PerturbationGrid,
  type ResolvedStudySpec,
} from './study/spec.js';
export { derivedSeed, type ForkGroup, type PlannedRun, planStudy, type StudyPlan } from './study/plan.js';
export {
  ControlError,
  type QueueRunOptions,
  runStudy,
  type StudyEvents,
  type StudyOptions,
  type StudyResult,
} from './study/run-study.js';
export { measurePair, type PairMeasurement } from './study/measure-pair.js';
export { Breakdown, PhaseClock, type PhaseTimes } from './study/breakdown.js';
export {
  loadSweepSpec,
  parseSweepSpec,
  type ResolvedSweepSpec,
  type SweepEmbedSpec,
} from './study/sweep-spec.js';
export { expandGrid, type Grid, type SweepGrid, type SweepPoint } from './study/sweep-grid.js';
export type {
  SweepMeasureSpec,
  SweepSensitivitySpec,
  SweepSharpnessSpec,
  SweepSurfaceSpec,
} from './study/sweep-measure-spec.js';
export { measureRun, type RunMeasurement, type RunMeasureTarget } from './study/measure-run.js';
export { runSweep, type SweepOptions, type SweepResult } from './study/run-sweep.js';
export { type DirVerifyResult, NotAVerifiableDirError, repairDir, verifyDir } from './study/verify-dir.js';
export { EmbedInputError, embedRuns, type EmbedRunsOptions } from './study/embed-runs.js';
export {
  embedKeyed,
  type KeyedEmbedOptions,
  type KeyedRun,
  embedStudy,
  type StudyEmbedding,
} from './study/embed-study.js';
export { exportAlignedRun } from './study/aligned.js';

// Reports: plots (Vega-Lite to SVG and PNG), and the HTML report of a study or sweep directory.
export {
  type RenderedPlot,
  renderPlot,
  THEME,
  type WrittenPlot,
  writePlot,
  writePlots,
} from './report/plot.js';
export { withLegendToggle } from './report/interactive.js';
export { type ButterflyPlot, butterflyPlots } from './report/butterfly-plots.js';
export {
  type EmbedPlot,
  type EmbedPlotOptions,
  embedPlots,
  seedPlotOptions,
  writeEmbedPlots,
} from './report/embed-plots.js';
export { groupPlots } from './report/ribbon-plots.js';
export {
  type GeometryCorrelation,
  type GeometryPlot,
  geometryCorrelations,
  geometryPlots,
} from './report/geometry-plots.js';
export {
  NotAStudyError,
  type ReportRun,
  readReportDir,
  readStudyDir,
  readSweepDir,
  type StudyDirContents,
  type SweepReport,
} from './report/study-dir.js';
export {
  type RunTraining,
  type SettingSummary,
  type SharpnessSummary,
  type SpreadStats,
  settingLabel,
  settingSummaries,
  sharpnessSummaries,
  type TrainingPlot,
  trainingPlots,
} from './report/training-plots.js';
export {
  loadViewerScripts,
  type ReportPlot,
  type ReportResult,
  renderReportHtml,
  type ViewerScripts,
  writeReport,
} from './report/html.js';
// The HTML report of a comparison (`twinscope compare --out DIR`): drawn from a CompareResult.
export {
  type ComparePlot,
  type CompareReportResult,
  comparePlots,
  formatCompareNumber,
  renderCompareHtml,
  writeCompareReport,
} from './report/compare-report.js';

// Export: a run's trajectory store as Parquet.
export { type ExportedFile, exportParquet, type ExportResult } from './export/parquet.js';

// Benchmarks: time per training step and GFLOP/s per engine, lock-step against separate runs.
export {
  BENCH_ENGINES,
  type BenchEngine,
  runTrainBenchmark,
  type TrainBenchCase,
  type TrainBenchOptions,
  type TrainBenchRatio,
  type TrainBenchResult,
} from './bench/train-bench.js';
export type { LockstepBenchCase, LockstepBenchResult } from './bench/lockstep-bench.js';
export type { MachineInfo } from './bench/machine.js';
