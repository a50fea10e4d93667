import { describe, expect, it } from 'vitest';
import { mulhi32, philox4x32 } from '../../src/rng/philox.js';
import { philoxKat } from '../helpers/fixtures.js';

/** Random123's known-answer vectors (fixtures/philox4x32-10-kat.json, with their source lines). */
const KAT = philoxKat().map((v) => [v.counter, v.key, v.output] as const);

describe('philox4x32', () => {
  it('reads three known-answer vectors', () => {
    expect(KAT).toHaveLength(3);
  });

  it.each(KAT)('matches the Random123 known-answer vector for counter %j', (ctr, key, want) => {
    expect([...philox4x32(ctr, key)]).toEqual(want);
  });

  it('writes into the given output array', () => {
    const out = new Uint32Array(4);
    expect(philox4x32([0, 0, 0, 0], [0, 0], out)).toBe(out);
  });
});

describe('mulhi32', () => {
  it('equals the high word of the exact 64-bit product', () => {
    const cases = [0, 1, 0xffff, 0x10000, 0xffffffff, 0xd2511f53, 0xcd9e8d57, 0x80000000, 0x12345678];
    for (const a of cases) {
      for (const b of cases) {
        expect(mulhi32(a, b)).toBe(Number((BigInt(a) * BigInt(b)) >> 32n));
      }
    }
  });
});
