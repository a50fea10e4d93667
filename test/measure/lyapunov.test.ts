import { describe, expect, test } from 'vitest';
import { fitLogSlope, lyapunovExponents } from '../../src/measure/lyapunov.js';
import { mulberry32 } from '../helpers/reference-model.js';

describe('finite-time Lyapunov exponents', () => {
  test('exact exponential growth gives λ exactly and zero standard error', () => {
    const steps = [0, 10, 20, 50, 100];
    const fit = fitLogSlope(
      steps,
      steps.map((t) => 1e-8 * Math.exp(0.03 * t)),
    );
    expect(fit.exponent).toBeCloseTo(0.03, 12);
    expect(fit.stderr).toBeLessThan(1e-12);
    expect(fit).toMatchObject({ fromStep: 0, toStep: 100, points: 5 });
  });

  test('the standard error matches the textbook formula on noisy data', () => {
    const rand = mulberry32(1);
    const steps = Array.from({ length: 40 }, (_, i) => i * 5);
    const logs = steps.map((t) => -10 + 0.02 * t + 0.1 * (rand() - 0.5));
    const fit = fitLogSlope(steps, logs.map(Math.exp));
    // Independent computation of slope and its standard error.
    const n = steps.length;
    const tm = steps.reduce((a, b) => a + b) / n;
    const ym = logs.reduce((a, b) => a + b) / n;
    const sxx = steps.reduce((s, t) => s + (t - tm) ** 2, 0);
    const b = steps.reduce((s, t, i) => s + (t - tm) * ((logs[i] as number) - ym), 0) / sxx;
    const rss = steps.reduce((s, t, i) => s + ((logs[i] as number) - ym - b * (t - tm)) ** 2, 0);
    expect(fit.exponent).toBeCloseTo(b, 12);
    expect(fit.stderr).toBeCloseTo(Math.sqrt(rss / (n - 2) / sxx), 12);
    expect(Math.abs(fit.exponent - 0.02)).toBeLessThan(3 * fit.stderr + 1e-3);
  });

  test('windows: growth then saturation shows as a falling exponent; zero distances are skipped', () => {
    const steps = Array.from({ length: 12 }, (_, i) => i * 10);
    const d = steps.map((t) => (t === 0 ? 0 : Math.min(Math.exp(0.05 * t), Math.exp(3))));
    const fits = lyapunovExponents(steps, d, { window: 4 });
    expect(fits).toHaveLength(3);
    expect(fits[0]?.points).toBe(3);
    expect(fits[0]?.exponent).toBeCloseTo(0.05, 12);
    expect(fits[2]?.exponent).toBeCloseTo(0, 12);
    expect(
      lyapunovExponents(
        steps,
        steps.map(() => 0),
      ),
    ).toEqual([]);
    expect(() => fitLogSlope([1, 2], [0, 0])).toThrow('needs at least 2 positive distances');
    expect(() => lyapunovExponents(steps, d, { window: 1 })).toThrow('window must be an integer ≥ 2');
  });
});
