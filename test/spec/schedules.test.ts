import { describe, expect, it } from 'vitest';
import { checkpointSteps, compileLrSchedule, logSteps, maoSteps, SpecError } from '../../src/spec/index.js';

const range = (from: number, to: number, by: number) =>
  Array.from({ length: Math.floor((to - from) / by) + 1 }, (_, i) => from + i * by);

describe('checkpointSteps', () => {
  it('every n: 0, n, 2n, … and the last step', () => {
    expect(checkpointSteps({ every: 300 }, 1000, 10)).toEqual([0, 300, 600, 900, 1000]);
    expect(checkpointSteps({ every: 250 }, 1000, 10)).toEqual([0, 250, 500, 750, 1000]);
    expect(checkpointSteps({ every: 5000 }, 1000, 10)).toEqual([0, 1000]);
  });

  it('explicit steps: sorted, unique, with 0 and the last step', () => {
    expect(checkpointSteps({ steps: [50, 10, 50] }, 100, 10)).toEqual([0, 10, 50, 100]);
    expect(() => checkpointSteps({ steps: [10, 101] }, 100, 10)).toThrow(SpecError);
    expect(() => checkpointSteps({ steps: [10, 101] }, 100, 10)).toThrow(
      'checkpoints.steps[1]: must be an integer step in [0, 100] (got 101)',
    );
  });

  it('log count: round(T^(i/(count-1))) plus 0', () => {
    expect(checkpointSteps({ log: 5 }, 1000, 10)).toEqual([0, 1, 6, 32, 178, 1000]);
    expect(logSteps(4, 1000)).toEqual([0, 1, 10, 100, 1000]);
    expect(logSteps(1, 1000)).toEqual([0, 1000]);
    // Collisions at small steps leave fewer points.
    expect(logSteps(10, 10)).toEqual([0, 1, 2, 3, 4, 5, 6, 8, 10]);
  });

  it('mao: quarter epochs to 5, every epoch to 25, every 4th to 65, every 15th after', () => {
    const expected = [
      ...[0, 1, 2, 3, 4].flatMap((e) => [10 * e, 10 * e + 3, 10 * e + 5, 10 * e + 8]),
      ...range(50, 250, 10),
      ...range(290, 650, 40),
      800,
      950,
      1000,
    ];
    expect(checkpointSteps({ schedule: 'mao' }, 1000, 10)).toEqual(expected);
    expect(expected.slice(0, 8)).toEqual([0, 3, 5, 8, 10, 13, 15, 18]);
  });

  it('mao: short runs are cut, one step per epoch collapses the quarters', () => {
    expect(maoSteps(70, 10)).toEqual([
      0, 3, 5, 8, 10, 13, 15, 18, 20, 23, 25, 28, 30, 33, 35, 38, 40, 43, 45, 48, 50, 60, 70,
    ]);
    expect(maoSteps(100, 1)).toEqual([...range(0, 25, 1), ...range(29, 65, 4), 80, 95, 100]);
    expect(maoSteps(4000, 40).slice(0, 5)).toEqual([0, 10, 20, 30, 40]);
  });
});

describe('compileLrSchedule', () => {
  it('defaults to the constant base lr', () => {
    const lr = compileLrSchedule(undefined, 0.05);
    expect(lr(0, 0)).toBe(0.05);
    expect(lr(12345, 99)).toBe(0.05);
  });

  it('evaluates warm-up, step decay and cosine expressions', () => {
    const warm = compileLrSchedule('0.1 * min(1, step / 100)', 1);
    expect(warm(0, 0)).toBe(0);
    expect(warm(50, 0)).toBeCloseTo(0.05, 15);
    expect(warm(100, 1)).toBe(0.1);
    expect(warm(1000, 10)).toBe(0.1);
    const decay = compileLrSchedule('lr * 0.5 ^ floor(epoch / 30)', 0.2);
    expect(decay(0, 29)).toBe(0.2);
    expect(decay(0, 30)).toBe(0.1);
    expect(decay(0, 65)).toBe(0.05);
    const cosine = compileLrSchedule('lr * (1 + cos(pi * step / 1000)) / 2', 0.1);
    expect(cosine(0, 0)).toBeCloseTo(0.1, 15);
    expect(cosine(500, 0)).toBeCloseTo(0.05, 15);
    expect(cosine(1000, 0)).toBeCloseTo(0, 15);
    const piecewise = compileLrSchedule('step < 10 ? lr : lr / 10', 1);
    expect([piecewise(9, 0), piecewise(10, 0)]).toEqual([1, 0.1]);
  });

  it('rejects unknown variables and functions, unsupported constructs and bad values at step 0', () => {
    expect(() => compileLrSchedule('lr * t', 1)).toThrow(
      'lrSchedule: unknown variable \'t\' in "lr * t" (expected step, epoch or lr)',
    );
    expect(() => compileLrSchedule('evaluate("1")', 1)).toThrow("lrSchedule: unknown function 'evaluate'");
    expect(() => compileLrSchedule('lr = 3', 1)).toThrow(
      'lrSchedule: "lr = 3" uses an unsupported construct',
    );
    expect(() => compileLrSchedule('[1, 2]', 1)).toThrow('unsupported construct (ArrayNode');
    expect(() => compileLrSchedule('lr.x', 1)).toThrow('unsupported construct');
    expect(() => compileLrSchedule('1 +', 1)).toThrow(/^lrSchedule: cannot parse "1 \+"/);
    expect(() => compileLrSchedule('', 1)).toThrow('lrSchedule: must not be empty');
    expect(() => compileLrSchedule('1 / step', 1)).toThrow(
      'lrSchedule: "1 / step" gives Infinity at step 0 (epoch 0); expected a finite number >= 0',
    );
    expect(() => compileLrSchedule('step - 1', 1)).toThrow('gives -1 at step 0');
    expect(() => compileLrSchedule('sqrt(-1)', 1)).toThrow("gives 'i' at step 0");
  });

  it('checks later values when they are computed', () => {
    const lr = compileLrSchedule('lr - step / 100', 1);
    expect(lr(50, 0)).toBe(0.5);
    expect(() => lr(200, 2)).toThrow('gives -1 at step 200 (epoch 2)');
  });
});
