/**
 * Model specifications and their resolution into a list of dense layers.
 *
 * MLPs, deep linear chains (one unit per layer) and linear models are chains of dense layers:
 * engines build their graphs from {@link DenseLayer} lists. Convolutional networks and ResNets
 * (`cnn`, `resnet`) resolve into a layer graph instead ({@link ./net.ts}).
 */
import type { CnnSpec, ResnetSpec } from './net.js';

/** Nonlinearity applied after a dense layer. */
export type Activation = 'relu' | 'tanh' | 'linear';

/**
 * Initialization scheme for weight matrices. Biases are zero unless `biasStd` is given.
 * - `normal`: N(0, std²) for every weight.
 * - `he`: N(0, 2 / fan_in) (Kaiming normal, ReLU gain).
 * - `glorot`: N(0, 2 / (fan_in + fan_out)) (Xavier normal).
 * - `pytorch`: U(−1/√fan_in, 1/√fan_in) for weights and biases, PyTorch's nn.Linear default.
 * - `zeros`: all zeros.
 */
export type InitSpec =
  | { kind: 'normal'; std: number; biasStd?: number }
  | { kind: 'he'; biasStd?: number }
  | { kind: 'glorot'; biasStd?: number }
  | { kind: 'pytorch' }
  | { kind: 'zeros' };

/** A model specification as written in a run spec. */
export type ModelSpec =
  | { kind: 'mlp'; hidden: number[]; activation?: Activation; bias?: boolean; init?: InitSpec }
  | { kind: 'deep-linear-chain'; depth: number; init?: InitSpec }
  | { kind: 'linear'; bias?: boolean; init?: InitSpec }
  | (CnnSpec & { init?: InitSpec })
  | (ResnetSpec & { init?: InitSpec });

/** One dense layer y = act(x Wᵀ + b) with W stored as [out, in] (PyTorch's nn.Linear layout). */
export interface DenseLayer {
  /** Tensor name prefix: `dense{i}`. */
  readonly name: string;
  readonly inputs: number;
  readonly outputs: number;
  readonly bias: boolean;
  readonly activation: Activation;
}

/** The default init when a spec gives none: He for ReLU nets (MLPs, CNNs, ResNets), Glorot otherwise. */
export function defaultInit(spec: ModelSpec): InitSpec {
  if (spec.kind === 'cnn' || spec.kind === 'resnet') return { kind: 'he' };
  if (spec.kind === 'mlp' && (spec.activation ?? 'relu') === 'relu') return { kind: 'he' };
  return { kind: 'glorot' };
}

/**
 * Resolve a model spec into its dense layers, for data with `inputDim` features and `outputDim`
 * outputs (classes for cross-entropy, targets for squared error).
 *
 * The deep linear chain f(x) = w_L ⋯ w_1 · (uᵀx) is `dense0` = uᵀ ([1, inputDim]) followed by
 * `depth` scalar layers `dense1..dense{depth}` ([1, 1]); it has one output and no biases.
 */
export function denseLayers(spec: ModelSpec, inputDim: number, outputDim: number): DenseLayer[] {
  checkDim('inputDim', inputDim);
  checkDim('outputDim', outputDim);
  switch (spec.kind) {
    case 'cnn':
    case 'resnet':
      return [];
    case 'mlp': {
      const widths = [inputDim, ...spec.hidden, outputDim];
      spec.hidden.forEach((w, i) => checkDim(`model.hidden[${i}]`, w));
      const activation = spec.activation ?? 'relu';
      const bias = spec.bias ?? true;
      return widths.slice(1).map((outputs, i) => ({
        name: `dense${i}`,
        inputs: widths[i] as number,
        outputs,
        bias,
        activation: i === widths.length - 2 ? 'linear' : activation,
      }));
    }
    case 'deep-linear-chain': {
      checkDim('model.depth', spec.depth);
      if (outputDim !== 1) {
        throw new Error(`model.kind 'deep-linear-chain' has one output, but the data has ${outputDim}`);
      }
      const layers: DenseLayer[] = [
        { name: 'dense0', inputs: inputDim, outputs: 1, bias: false, activation: 'linear' },
      ];
      for (let i = 1; i <= spec.depth; i++) {
        layers.push({ name: `dense${i}`, inputs: 1, outputs: 1, bias: false, activation: 'linear' });
      }
      return layers;
    }
    case 'linear':
      return [
        {
          name: 'dense0',
          inputs: inputDim,
          outputs: outputDim,
          bias: spec.bias ?? true,
          activation: 'linear',
        },
      ];
  }
}

function checkDim(field: string, value: number): void {
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${field} must be a positive integer, got ${value}`);
  }
}
