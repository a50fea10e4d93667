/** Datasets and deterministic batching. */
export { type ArrowExamples, loadArrow, readArrowExamples } from './arrow.js';
export {
  type BatchSize,
  batchHash,
  batchIndices,
  batchIndicesAtStep,
  gatherBatch,
  stepsPerEpoch,
} from './batching.js';
export { FASHION_MNIST_CLASSES, FASHION_MNIST_DIR, loadFashionMnist } from './fashion-mnist.js';
export { type IdxArray, type IdxType, parseIdx, readIdxFile } from './idx.js';
export {
  type LinearRegressionData,
  loadLinearRegression,
  makeLinearRegression,
} from './linear-regression.js';
export { loadDataset } from './load.js';
export { loadMnist, mnistDigitsDir, readMnistDigits } from './mnist.js';
export { loadMoons, makeMoons } from './moons.js';
export { classificationSplit, oneHot, regressionSplit, takeRows } from './rows.js';
export { featureStats, splitIndices, standardize, subsetIndices } from './split.js';
export type {
  ArrowSpec,
  Dataset,
  DatasetSpec,
  FashionMnistSpec,
  LinearRegressionSpec,
  MnistSpec,
  MoonsSpec,
  Split,
  Task,
} from './types.js';
