/**
 * Learning-rate schedules written as math expressions in a run spec's `lrSchedule`, e.g.
 * `"0.1 * min(1, step / 100)"` (linear warm-up) or `"lr * 0.5 ^ floor(epoch / 30)"` (step decay).
 *
 * Expressions are parsed with mathjs and checked node by node before they are compiled — nothing is
 * ever `eval`ed, and only arithmetic, comparisons, the ternary `c ? a : b`, the constants `pi` and
 * `e`, the variables below and a fixed list of functions ({@link LR_FUNCTIONS}) are allowed.
 *
 * Variables: `step` (optimizer steps done before this one, from 0), `epoch` (the current epoch, from
 * 0) and `lr` (the optimizer's base learning rate).
 */
import { type MathNode, parse } from 'mathjs';
import { SpecError } from './errors.js';

/** A learning rate for each step: `step` counts updates done so far (0 for the first), `epoch` from 0. */
export type LrSchedule = (step: number, epoch: number) => number;

/** Variables an expression may use. */
const LR_VARIABLES: readonly string[] = ['step', 'epoch', 'lr'];

/** Functions an expression may call. */
const LR_FUNCTIONS: readonly string[] = [
  'abs',
  'ceil',
  'cos',
  'exp',
  'floor',
  'log',
  'log10',
  'log2',
  'max',
  'min',
  'mod',
  'pow',
  'round',
  'sign',
  'sin',
  'sqrt',
  'tanh',
];

const CONSTANTS = ['pi', 'e'];
const ALLOWED_NODES = new Set([
  'ConstantNode',
  'SymbolNode',
  'OperatorNode',
  'ParenthesisNode',
  'FunctionNode',
  'ConditionalNode',
]);

const FIELD = 'lrSchedule';

/**
 * Compile a learning-rate expression into a schedule; without one the schedule is the constant
 * `baseLr`. Throws a {@link SpecError} naming `lrSchedule` when the expression does not parse, uses
 * an unknown variable or function or any construct other than arithmetic (assignments, matrices,
 * property access, …), or does not give a finite number ≥ 0 at step 0, epoch 0. The returned
 * function throws a SpecError when a later step gives anything else.
 */
export function compileLrSchedule(expr: string | undefined, baseLr: number): LrSchedule {
  if (expr === undefined) return () => baseLr;
  if (expr.trim() === '') throw new SpecError(`${FIELD}: must not be empty`);
  let node: MathNode;
  try {
    node = parse(expr);
  } catch (err) {
    throw new SpecError(`${FIELD}: cannot parse ${JSON.stringify(expr)}: ${(err as Error).message}`);
  }
  const unsupported: string[] = [];
  const problems: string[] = [];
  node.traverse((n, path, parent) => {
    if (!ALLOWED_NODES.has(n.type)) {
      unsupported.push(
        `${FIELD}: ${JSON.stringify(expr)} uses an unsupported construct (${n.type} '${n.toString()}')`,
      );
      return;
    }
    if (n.type === 'FunctionNode') {
      const fn = (n as unknown as { fn: MathNode }).fn;
      const name = fn.type === 'SymbolNode' ? (fn as unknown as { name: string }).name : undefined;
      if (name === undefined || !LR_FUNCTIONS.includes(name)) {
        problems.push(
          `${FIELD}: unknown function '${name ?? fn.toString()}' in ${JSON.stringify(expr)} (allowed: ${LR_FUNCTIONS.join(', ')})`,
        );
      }
    } else if (n.type === 'SymbolNode' && !(parent?.type === 'FunctionNode' && path === 'fn')) {
      const name = (n as unknown as { name: string }).name;
      if (!LR_VARIABLES.includes(name) && !CONSTANTS.includes(name)) {
        problems.push(
          `${FIELD}: unknown variable '${name}' in ${JSON.stringify(expr)} (expected step, epoch or lr)`,
        );
      }
    }
  });
  // Symbols inside an unsupported construct (`x = 3`) are not worth a second line.
  if (unsupported.length > 0) throw new SpecError([...new Set(unsupported)]);
  if (problems.length > 0) throw new SpecError([...new Set(problems)]);
  const compiled = node.compile();
  const schedule: LrSchedule = (step, epoch) => {
    let value: unknown;
    try {
      value = compiled.evaluate({ step, epoch, lr: baseLr });
    } catch (err) {
      throw new SpecError(
        `${FIELD}: ${JSON.stringify(expr)} fails at step ${step} (epoch ${epoch}): ${(err as Error).message}`,
      );
    }
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
      throw new SpecError(
        `${FIELD}: ${JSON.stringify(expr)} gives ${formatResult(value)} at step ${step} (epoch ${epoch}); expected a finite number >= 0`,
      );
    }
    return value;
  };
  schedule(0, 0);
  return schedule;
}

function formatResult(value: unknown): string {
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value !== null && typeof value === 'object' && 'toString' in value) return `'${String(value)}'`;
  return typeof value;
}
