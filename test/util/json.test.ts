import { createHash } from 'node:crypto';
import { describe, expect, test } from 'vitest';
import { canonical, configHash } from '../../src/util/json.js';

describe('canonical JSON', () => {
  test('sorts keys at every depth, keeps array order, drops undefined fields', () => {
    expect(canonical({ b: 1, a: { d: [3, { z: 1, y: 2 }], c: undefined } })).toBe(
      '{"a":{"d":[3,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonical([2, 1])).toBe('[2,1]');
    expect(canonical('é"')).toBe(JSON.stringify('é"'));
    expect(canonical(null)).toBe('null');
  });

  test('equal configurations written in another key order hash equally; others do not', () => {
    const a = configHash({ spec: { lr: 0.1, seed: 0 }, lineage: {} });
    expect(configHash({ lineage: {}, spec: { seed: 0, lr: 0.1 } })).toBe(a);
    expect(configHash({ spec: { lr: 0.1, seed: 1 }, lineage: {} })).not.toBe(a);
    // sha256 of the canonical text, in hex.
    expect(a).toBe(createHash('sha256').update('{"lineage":{},"spec":{"lr":0.1,"seed":0}}').digest('hex'));
  });
});
