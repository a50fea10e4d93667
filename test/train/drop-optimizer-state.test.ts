/**
 * Optimizer state only where a resume or a fork reads it (TrainRunOptions.dropOptimizerState): a
 * run that completes drops its checkpoints' optimizer slots; its weights are unchanged, an
 * interrupted run still resumes (from a checkpoint that keeps its slots) to the same bytes as an
 * uninterrupted one, a run killed between the finalize and run.json finishes, and a fork from a run
 * without slots is refused with a message naming it. Adam keeps its moments (a measurement reads
 * them).
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { parseRunSpec } from '../../src/spec/run-spec.js';
import { readCheckpoints, readLayout } from '../../src/store/index.js';
import { forkRun } from '../../src/train/fork.js';
import { verifyRun } from '../../src/train/inspect.js';
import { readRunJson, trainRun, writeRunJson } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

// SGD with momentum: one optimizer slot per checkpoint. 45 steps, checkpoints at 0, 10, …, 40, 45.
const spec = parseRunSpec({ ...tinyBase, name: 'drop' });
const sha = (dir: string, name: string) =>
  createHash('sha256')
    .update(readFileSync(join(dir, name)))
    .digest('hex');
const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('dropOptimizerState', () => {
  test('a completed run keeps its weights bit for bit and no optimizer slots', async () => {
    const root = scratchDir('twinscope-drop-');
    const kept = join(root, 'kept');
    const dropped = join(root, 'dropped');
    await trainRun(spec, kept);
    await trainRun(spec, dropped, { dropOptimizerState: true });
    const a = readCheckpoints(kept);
    const b = readCheckpoints(dropped);
    expect(b.map((c) => c.step)).toEqual([0, 10, 20, 30, 40, 45]);
    expect(a.map((c) => c.step)).toEqual(b.map((c) => c.step));
    b.forEach((c, i) => {
      const k = a[i] as (typeof a)[number];
      expect(bytes(c.params).equals(bytes(k.params)), `step ${c.step}`).toBe(true);
      expect(c.opt.step).toBe(k.opt.step);
      expect(k.opt.slots).toHaveLength(1);
      expect(c.opt.slots).toHaveLength(0);
    });
    expect(readLayout(kept).slotCount).toBe(1);
    expect(readLayout(dropped).slotCount).toBe(0);
    // The metrics are the same file; the checkpoints lose the momentum column (P floats per row).
    expect(sha(dropped, 'metrics.arrow')).toBe(sha(kept, 'metrics.arrow'));
    const P = readRunJson(dropped).layout.size; // 2-16-16-2: 354 weights
    expect(P).toBe(354);
    const saved =
      statSync(join(kept, 'checkpoints.arrow')).size - statSync(join(dropped, 'checkpoints.arrow')).size;
    expect(saved).toBeGreaterThanOrEqual(6 * 4 * P);
    expect(readRunJson(dropped).files?.['checkpoints.arrow']?.bytes).toBe(
      statSync(join(dropped, 'checkpoints.arrow')).size,
    );
    expect(verifyRun(dropped).ok).toBe(true);
  });

  test('Adam keeps its moments: the preconditioned sharpness of a checkpoint reads them', async () => {
    const dir = join(scratchDir('twinscope-drop-adam-'), 'adam');
    const adam = parseRunSpec({
      ...tinyBase,
      name: 'adam',
      optimizer: { kind: 'adam', lr: 0.01 },
      epochs: 2,
    });
    await trainRun(adam, dir, { dropOptimizerState: true });
    expect(readLayout(dir).slotCount).toBe(2);
    for (const c of readCheckpoints(dir)) expect(c.opt.slots).toHaveLength(2);
  });

  test('an interrupted run resumes from a checkpoint that keeps its slots, to the same bytes', async () => {
    const root = scratchDir('twinscope-drop-resume-');
    const whole = join(root, 'whole');
    await trainRun(spec, whole, { dropOptimizerState: true });
    const cut = join(root, 'cut');
    // Interrupted after step 25: the stream then ends at the checkpoint of step 20 (with its slots).
    await expect(
      trainRun(spec, cut, {
        dropOptimizerState: true,
        onProgress: (p) => {
          if (p.step === 25) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect(readRunJson(cut).status).toBe('running');
    const partial = readCheckpoints(cut);
    expect(partial.map((c) => c.step)).toEqual([0, 10, 20]);
    expect(partial.at(-1)?.opt.slots).toHaveLength(1);
    let from = -1;
    await trainRun(spec, cut, { dropOptimizerState: true, onStart: (s) => (from = s.fromStep) });
    expect(from).toBe(20);
    for (const name of ['checkpoints.arrow', 'metrics.arrow'])
      expect(sha(cut, name), name).toBe(sha(whole, name));
    expect(verifyRun(cut).ok).toBe(true);
  });

  test('killed after the finalize, before run.json said complete: the re-run finishes it', async () => {
    const root = scratchDir('twinscope-drop-window-');
    const whole = join(root, 'whole');
    const run = await trainRun(spec, whole, { dropOptimizerState: true });
    const before = sha(whole, 'checkpoints.arrow');
    // What such a kill leaves: finalized files without slots, run.json still `running`.
    const { files: _files, final: _final, ...running } = run;
    writeRunJson(whole, { ...running, status: 'running' });
    let mode = '';
    const again = await trainRun(spec, whole, { dropOptimizerState: true, onStart: (s) => (mode = s.mode) });
    expect(mode).toBe('resume');
    expect(again.status).toBe('complete');
    expect(sha(whole, 'checkpoints.arrow')).toBe(before);
    expect(again.final).toEqual(run.final);
    expect(verifyRun(whole).ok).toBe(true);
  });

  test('a fork reads the slots of a parent that kept them, and refuses one that dropped them', async () => {
    const root = scratchDir('twinscope-drop-fork-');
    const parent = join(root, 'parent');
    const dropped = join(root, 'dropped');
    await trainRun(spec, parent);
    await trainRun(spec, dropped, { dropOptimizerState: true });
    // σ = 0 from the parent that kept its momentum: the twin equals the parent from step 20 on.
    const twin = join(root, 'twin');
    await forkRun(parent, 20, { kind: 'gaussian', sigma: 0, seed: 1 }, twin, { dropOptimizerState: true });
    const p = new Map(readCheckpoints(parent).map((c) => [c.step, c]));
    for (const c of readCheckpoints(twin)) {
      expect(bytes(c.params).equals(bytes(p.get(c.step)?.params as Float32Array)), `step ${c.step}`).toBe(
        true,
      );
      expect(c.opt.slots).toHaveLength(0);
    }
    await expect(
      forkRun(dropped, 20, undefined, join(root, 'refused'), { dropOptimizerState: true }),
    ).rejects.toThrow(`${dropped}@20: the checkpoint keeps no optimizer state`);
  });
});
