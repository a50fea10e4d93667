import { describe, expect, it } from 'vitest';
import { mulhi32, philox4x32 } from '../../src/rng/philox.js';

/** Random123 tests/kat_vectors (github.com/DEShawResearch/random123), the three `philox4x32 10`
 * lines: counter (4 words), key (2 words), expected output (4 words). */
const KAT: [number[], number[], number[]][] = [
  [
    [0, 0, 0, 0],
    [0, 0],
    [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8],
  ],
  [
    [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    [0xffffffff, 0xffffffff],
    [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
  ],
  [
    [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
    [0xa4093822, 0x299f31d0],
    [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
  ],
];

describe('philox4x32', () => {
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
