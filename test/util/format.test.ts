import { describe, expect, test } from 'vitest';
import { formatPercent } from '../../src/util/format.js';

describe('formatPercent', () => {
  test('a fraction as a percentage with the given decimals', () => {
    expect(formatPercent(0.12345)).toBe('12.3%');
    expect(formatPercent(0.12345, 2)).toBe('12.35%');
    expect(formatPercent(1, 0)).toBe('100%');
  });

  test('missing values', () => {
    expect(formatPercent(null)).toBe('—');
    expect(formatPercent(undefined, 2, '-')).toBe('-');
    expect(formatPercent(Number.NaN)).toBe('—');
  });
});
