import { describe, expect, it } from 'vitest';
import type { SurfaceBenchResult } from '../../src/bench/surface-bench.js';
import { EXIT_OK } from '../../src/cli/io.js';
import { main } from '../../src/cli/main.js';
import { capture } from '../helpers/cli-io.js';

describe('bench surface', () => {
  it('runs --quick in-process: four modes, list bit-identical, combination within float32 rounding', async () => {
    const io = capture();
    const code = await main(['node', 'twinscope', 'bench', 'surface', '--quick', '--sample', '20'], io);
    expect(code, io.err).toBe(EXIT_OK);
    const result = JSON.parse(io.out) as SurfaceBenchResult;
    expect(result.model).toBe('mlp-784-32-32-10');
    expect(result.grid).toEqual([7, 7]);
    expect(result.examples).toBe(600);
    expect(result.theta.accuracy).toBeGreaterThan(0.3); // 20 SGD steps from He init
    expect(result.modes.map((m) => m.name)).toEqual(['sequential', 'list', 'combination', 'lossSurface']);
    const [seq, list, comb, surface] = result.modes;
    // 20 of 49 points: every 3rd, 17 points, times scaled to the grid.
    expect(seq!.points).toBe(17);
    expect(seq!.scaledFrom?.points).toBe(17);
    expect(comb!.points).toBe(49);
    expect(comb!.scaledFrom).toBeUndefined();
    for (const m of result.modes) {
      expect(m.wallMs, m.name).toBeGreaterThan(0);
      expect(m.msPerPoint, m.name).toBeCloseTo(m.wallMs / 49, 9);
    }
    expect(list!.maxLossDifference).toBe(0);
    expect(list!.maxCorrectDifference).toBe(0);
    for (const m of [comb!, surface!]) {
      expect(m.maxLossDifference).toBeLessThan(1e-5);
      expect(m.maxCorrectDifference).toBeLessThanOrEqual(1);
    }
    expect(Object.keys(result.speedup)).toEqual([
      'list vs sequential',
      'combination vs sequential',
      'lossSurface vs sequential',
    ]);
    expect(result.load.start).toBeGreaterThanOrEqual(0);
    expect(result.peakRssMiB).toBeGreaterThan(0);
  });
});
