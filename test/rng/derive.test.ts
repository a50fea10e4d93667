import { describe, expect, it } from 'vitest';
import { deriveKey, streamMessage } from '../../src/rng/derive.js';

describe('streamMessage', () => {
  it('packs tag, name length, UTF-8 bytes little-endian, id count and ids as (low, high)', () => {
    expect(streamMessage('abcde', [7, 2 ** 32 + 5])).toEqual([
      0x7374726d, 5, 0x64636261, 0x65, 2, 7, 0, 5, 1,
    ]);
  });

  it('rejects negative or fractional ids', () => {
    expect(() => streamMessage('x', [-1])).toThrow(/non-negative/);
    expect(() => streamMessage('x', [1.5])).toThrow(/non-negative/);
  });
});

describe('deriveKey', () => {
  it('is deterministic and separates names, ids and parents', () => {
    const p = [1, 2] as const;
    const keys = [
      deriveKey(p, 'data', []),
      deriveKey(p, 'data', [0]),
      deriveKey(p, 'data', [1]),
      deriveKey(p, 'init', []),
      deriveKey(p, 'data\u0000', []),
      deriveKey([1, 3], 'data', []),
    ].map((k) => k.join(','));
    expect(new Set(keys).size).toBe(keys.length);
    expect(deriveKey(p, 'data', [1])).toEqual(deriveKey([1, 2], 'data', [1]));
  });
});
