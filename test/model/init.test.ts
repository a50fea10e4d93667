import { describe, expect, it } from 'vitest';
import { initParams } from '../../src/model/init.js';
import { layoutOf, tensorSlot, tensorView } from '../../src/model/layout.js';
import { denseLayers, type InitSpec, type ModelSpec } from '../../src/model/spec.js';
import { Rng } from '../../src/rng/rng.js';

function layout(spec: ModelSpec, init: InitSpec, inputDim = 512, outputDim = 10) {
  return layoutOf(denseLayers(spec, inputDim, outputDim), init);
}

function std(a: Float32Array): number {
  let s = 0;
  let ss = 0;
  for (const v of a) {
    s += v;
    ss += v * v;
  }
  return Math.sqrt(ss / a.length - (s / a.length) ** 2);
}

function maxAbs(a: Float32Array): number {
  let m = 0;
  for (const v of a) m = Math.max(m, Math.abs(v));
  return m;
}

const rng = () => Rng.fromSeed(123).stream('init');

describe('initParams', () => {
  it.each<InitSpec>([
    { kind: 'he' },
    { kind: 'glorot' },
    { kind: 'normal', std: 0.3, biasStd: 0.1 },
    { kind: 'pytorch' },
  ])('matches each large tensor’s initStd under %j', (init) => {
    const lay = layout({ kind: 'mlp', hidden: [256], init }, init);
    const flat = initParams(lay, init, rng());
    const w = tensorSlot(lay, 'dense0.weight'); // 256 × 512 = 131072 entries: relative sd of the std ≈ 0.2%.
    expect(std(tensorView(flat, w)) / w.initStd).toBeCloseTo(1, 2);
    if (init.kind === 'pytorch') {
      const bound = Math.fround(1 / Math.sqrt(512)); // float32 rounding may reach the bound itself
      expect(maxAbs(tensorView(flat, w))).toBeLessThanOrEqual(bound);
      const b = tensorSlot(lay, 'dense0.bias');
      expect(maxAbs(tensorView(flat, b))).toBeLessThanOrEqual(bound);
      expect(std(tensorView(flat, b))).toBeGreaterThan(0);
    }
  });

  it('leaves zero-std tensors at zero', () => {
    const he = layout({ kind: 'mlp', hidden: [16] }, { kind: 'he' });
    const flat = initParams(he, { kind: 'he' }, rng());
    expect([...tensorView(flat, tensorSlot(he, 'dense0.bias'))].every((v) => v === 0)).toBe(true);
    const zeros = layout({ kind: 'mlp', hidden: [16] }, { kind: 'zeros' });
    expect(initParams(zeros, { kind: 'zeros' }, rng()).every((v) => v === 0)).toBe(true);
  });

  it('is deterministic and per-tensor: adding a layer leaves the others unchanged', () => {
    const init: InitSpec = { kind: 'glorot', biasStd: 0.01 };
    const small = layout({ kind: 'mlp', hidden: [32] }, init, 20, 3);
    const big = layout({ kind: 'mlp', hidden: [32, 8] }, init, 20, 3);
    const a = initParams(small, init, rng());
    expect(initParams(small, init, rng())).toEqual(a);
    const b = initParams(big, init, rng());
    for (const name of ['dense0.weight', 'dense0.bias']) {
      expect(tensorView(b, tensorSlot(big, name))).toEqual(tensorView(a, tensorSlot(small, name)));
    }
    expect(initParams(small, init, Rng.fromSeed(124).stream('init'))).not.toEqual(a);
  });
});
