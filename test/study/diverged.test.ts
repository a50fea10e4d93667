/**
 * Diverged runs in studies and sweeps: a twin that diverges is a result, not a failure. The study
 * exits 0, its pair is measured at the checkpoints both runs kept (up to the divergence) with a
 * `diverged` row for the rest, status.json lists it, the embedding leaves it out with the reason,
 * the report names it, and a re-run retrains nothing. A sweep embeds the runs that did not diverge
 * (a group whose runs all diverged has no embedding and is not a failure).
 */
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, test } from 'vitest';
import { main } from '../../src/cli/main.js';
import { METRICS } from '../../src/results/metrics.js';
import { readResults } from '../../src/results/rows.js';
import { readStatus } from '../../src/results/study-files.js';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints } from '../../src/store/index.js';
import { measurePair } from '../../src/study/measure-pair.js';
import { runSweep } from '../../src/study/run-sweep.js';
import { parseSweepSpec } from '../../src/study/sweep-spec.js';
import { forkRun } from '../../src/train/fork.js';
import { verifyRun } from '../../src/train/inspect.js';
import { readRunJson, trainRun } from '../../src/train/run.js';
import { capture } from '../helpers/cli-io.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const root = scratchDir('twinscope-diverged-study-');

/** σ = 1e4 at t = 10 makes the twin's loss NaN three steps later; σ = 0 is the control. */
const study = {
  name: 'diverging',
  base: { ...tinyBase, checkpoints: { every: 2 } },
  perturbations: [{ kind: 'gaussian', sigmas: [0, 1e4], forkSteps: [10], repeats: 1 }],
  measure: {
    distance: {},
    barrier: { examples: 50 },
    align: { methods: ['weight'], examples: 50 },
    embedding: { method: 'inpca', components: 2, examples: 50 },
  },
  workers: 1,
};
const dir = join(root, 'study');
const diverging = 's0/t10/gaussian-1e4-r0';
const control = 's0/t10/gaussian-0-r0';
const argv = (specPath: string, out: string) => [
  'node',
  'twinscope',
  'run',
  specPath,
  '--out',
  out,
  '--no-progress',
];
let first: ReturnType<typeof capture>;
let code: number;

beforeAll(async () => {
  // One worker: the jobs run in this process (no dist/ build needed).
  const specPath = join(root, 'study.json');
  writeFileSync(specPath, JSON.stringify(study));
  first = capture();
  code = await main(argv(specPath, dir), first);
}, 240_000);

describe('a study with a diverging twin', () => {
  test('completes with exit code 0 and names the diverged run', () => {
    expect(first.err).not.toContain('error:');
    expect(code).toBe(0);
    expect(first.out).toMatch(/^diverged 1 run\(s\) .*: s0\/t10\/gaussian-1e4-r0 at step 13$/m);
  });

  test('the run diverged at step 13 and kept its finite checkpoints 10 and 12; verify passes', () => {
    const run = readRunJson(join(dir, 'runs', diverging));
    expect(run.status).toBe('diverged');
    expect(run.diverged).toEqual({ reason: 'loss', step: 13, value: 'NaN', lastCheckpoint: 12 });
    const cps = readCheckpoints(join(dir, 'runs', diverging));
    expect(cps.map((c) => c.step)).toEqual([10, 12]);
    for (const c of cps) expect(c.params.every(Number.isFinite)).toBe(true);
    expect(verifyRun(join(dir, 'runs', diverging)).ok).toBe(true);
    expect(readRunJson(join(dir, 'runs', control)).status).toBe('complete');
  });

  test('status.json: complete, nothing failed, the diverged run listed', () => {
    const { status } = readStatus(dir, 'study');
    expect(status).toMatchObject({ complete: true, failed: [], blocked: [], controlFailures: [] });
    expect(status?.diverged).toEqual([{ run: diverging, step: 13, reason: 'loss' }]);
  });

  test('its pair has rows up to the divergence and a diverged row for the rest', () => {
    const rows = readResults(join(dir, 'results.arrow')).filter((r) => r.runB === diverging);
    const l2 = rows.filter((r) => r.metric === METRICS.l2 && r.layer === null);
    expect(l2.map((r) => r.step)).toEqual([10, 12]);
    for (const r of rows.filter((x) => x.metric !== METRICS.diverged))
      expect(Number.isFinite(r.value)).toBe(true);
    // Barriers and alignment are taken at the end, which a diverged pair does not have.
    expect(rows.filter((r) => r.metric === METRICS.lossBarrier)).toEqual([]);
    const notes = rows.filter((r) => r.metric === METRICS.diverged);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({
      runA: 's0/t10/a',
      step: 13,
      value: 12,
      options: { run: diverging, reason: 'loss', nonFinite: 'NaN', endSkipped: ['barrier', 'align'] },
    });
    // The σ = 0 twin is measured in full, and the control passes.
    const full = readResults(join(dir, 'results.arrow')).filter((r) => r.runB === control);
    expect(full.some((r) => r.metric === METRICS.lossBarrier && r.step === 45)).toBe(true);
    expect(full.some((r) => r.metric === METRICS.diverged)).toBe(false);
  });

  test('the embedding leaves the diverged run out, with the reason', () => {
    const key = JSON.parse(readFileSync(join(dir, 'embedding', 's0', 'key.json'), 'utf8'));
    expect(key.runs).not.toContain(diverging);
    expect(key.runs).toContain(control);
    expect(key.excluded).toEqual([
      { name: diverging, reason: expect.stringMatching(/^diverged at step 13 \(training loss NaN/) },
    ]);
  });

  test('the report shows the run as diverged', () => {
    const html = readFileSync(join(dir, 'report', 'index.html'), 'utf8');
    expect(html).toContain('<tr class="run status-diverged" data-run="s0/t10/gaussian-1e4-r0">');
    expect(html).toContain('<span class="badge">diverged at step 13</span>');
    expect(html).toContain('1 run(s) diverged');
    expect(html).toContain('✓ Study complete');
  });

  test('a re-run retrains and re-measures nothing, and exits 0 again', async () => {
    const runJson = join(dir, 'runs', diverging, 'run.json');
    const mtime = statSync(runJson).mtimeMs;
    const again = capture();
    expect(await main([...argv(join(root, 'study.json'), dir), '--no-report'], again)).toBe(0);
    expect(statSync(runJson).mtimeMs).toBe(mtime);
    expect(again.out).toContain('diverged 1 run(s)');
  });
});

describe('measurePair with a diverged run', () => {
  test('measurements that fail or are not finite on the last, huge weights are dropped and noted', async () => {
    const runs = join(root, 'pair');
    await trainRun(parseRunSpec(tinyBase), join(runs, 'parent'));
    await forkRun(join(runs, 'parent'), 10, undefined, join(runs, 'a'));
    // σ = 1e38: finite weights at the fork step (kept), a NaN loss right after.
    const perturbation = { kind: 'gaussian', sigma: 1e38, seed: 1 } as const;
    const b = await forkRun(join(runs, 'parent'), 10, perturbation, join(runs, 'b'));
    expect(b.diverged).toEqual({ reason: 'loss', step: 10, value: 'NaN', lastCheckpoint: 10 });
    const twin = {
      runA: 'a',
      runB: 'b',
      kind: 'gaussian',
      sigma: 1e38,
      forkStep: 10,
      repeat: 0,
      seed: 0,
    } as const;
    const examples = { alphas: 3, examples: 20 };
    const { rows, aligned } = await measurePair(runs, 'x', twin, {
      distance: { at: 'checkpoints' },
      barrier: { at: 'checkpoints', ...examples, splits: ['test'] },
      align: { at: 'checkpoints', methods: ['weight'], examples: 20, exportAligned: false },
      cka: { at: 'checkpoints', kernel: 'linear', debiased: false, examples: 20 },
    });
    expect(aligned).toEqual([]);
    // Distances are finite and kept; the barrier, the aligned barrier and CKA are not.
    const measured = rows.filter((r) => r.metric !== METRICS.diverged);
    expect([...new Set(measured.map((r) => r.metric))]).toEqual([
      METRICS.l2,
      METRICS.normalizedL2,
      METRICS.cosine,
      METRICS.amplification,
    ]);
    expect(measured.every((r) => r.step === 10 && Number.isFinite(r.value))).toBe(true);
    const note = rows.find((r) => r.metric === METRICS.diverged);
    expect(note?.step).toBe(10);
    expect(note?.value).toBe(10);
    expect(note?.options.endSkipped).toEqual([]);
    expect(note?.options.dropped).toEqual([
      { step: 10, measurement: 'barrier', error: 'interp_loss is NaN' },
      { step: 10, measurement: 'align weight', error: 'aligned_loss_barrier is NaN' },
      { step: 10, measurement: 'cka', error: expect.stringMatching(/^cka: .*non-finite value/) },
    ]);
  }, 60_000);
});

describe('a sweep with diverging runs', () => {
  test('embeds the runs that did not diverge; a group of diverged runs has no embedding and is no failure', async () => {
    const sweep = parseSweepSpec({
      name: 'lr-sweep',
      sweep: {
        base: { ...tinyBase, checkpoints: { every: 2 } },
        grid: { 'optimizer.lr': [0.1, 100], seed: [0, 1] },
      },
      embed: { method: 'pca', components: 2, groupBy: ['optimizer.lr'] },
      workers: 1,
    });
    const out = join(root, 'sweep');
    const result = await runSweep(sweep, out);
    expect(result.failed).toEqual([]);
    expect(result.diverged.map((d) => [d.run, d.step, d.reason])).toEqual([
      ['2-lr100-seed0', 5, 'loss'],
      ['3-lr100-seed1', expect.any(Number), 'loss'],
    ]);
    expect(result.groups.map((g) => [g.group.name, g.group.points])).toEqual([
      ['g0-lr0.1', ['0-lr0.1-seed0', '1-lr0.1-seed1']],
    ]);
    expect(existsSync(join(out, 'groups', 'g1-lr100'))).toBe(false);
    const { status } = readStatus(out, 'sweep');
    expect(status?.complete).toBe(true);
    expect(status?.diverged.map((d) => d.run)).toEqual(['2-lr100-seed0', '3-lr100-seed1']);

    // Ungrouped: one embedding of the runs that did not diverge, the others listed in key.json.
    const flat = join(root, 'flat');
    const ungrouped = await runSweep(parseSweepSpec({ ...sweepJson(), embed: { method: 'pca' } }), flat);
    expect(ungrouped.failed).toEqual([]);
    expect(ungrouped.embedding?.runs).toEqual(['0-lr0.1-seed0', '1-lr0.1-seed1']);
    const key = JSON.parse(readFileSync(join(flat, 'key.json'), 'utf8'));
    expect(key.excluded.map((e: { name: string }) => e.name)).toEqual(['2-lr100-seed0', '3-lr100-seed1']);
  }, 120_000);
});

function sweepJson() {
  return {
    name: 'lr-sweep',
    sweep: {
      base: { ...tinyBase, checkpoints: { every: 2 } },
      grid: { 'optimizer.lr': [0.1, 100], seed: [0, 1] },
    },
    workers: 1,
  };
}
