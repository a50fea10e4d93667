/**
 * A sweep's figures and table along training (src/report/training-plots.ts, read by
 * report/study-dir.ts readSweepDir): a tiny sweep of 2 settings × 2 seeds with diagnostics and
 * sharpness every epoch. The figure data equal the rows readDiagnostics / readSharpness give for each
 * run, seeds of one setting share its colour, the final-accuracy table matches a brute-force mean and
 * sample standard deviation of the runs' final test accuracy, the report writes every figure, and a
 * re-run after losing one run retrains that run alone, with the same rows.
 */
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { writeReport } from '../../src/report/html.js';
import { readSweepDir } from '../../src/report/study-dir.js';
import {
  diagnosticsData,
  settingLabel,
  settingSummaries,
  sharpnessData,
  sharpnessSummaries,
  spread,
  trainingPlots,
} from '../../src/report/training-plots.js';
import { runSweep } from '../../src/study/run-sweep.js';
import { parseSweepSpec } from '../../src/study/sweep-spec.js';
import { readDiagnostics, readSharpness } from '../../src/train/diagnostics.js';
import { readRunJson } from '../../src/train/run.js';
import { scratchDir } from '../helpers/scratch.js';
import { tinyBase } from '../helpers/study.js';

const spec = () =>
  parseSweepSpec({
    name: 'training-curves',
    sweep: {
      base: {
        ...tinyBase,
        data: { ...tinyBase.data, n: 200 },
        optimizer: { kind: 'sgd', lr: 0.1 },
        batchSize: 50,
        epochs: 3,
        checkpoints: { every: 3 },
        diagnostics: { every: 'epoch' },
        sharpness: { every: 'epoch', examples: 60 },
      },
      grid: { 'optimizer.lr': [0.05, 0.3], seed: [0, 1] },
    },
    embed: { method: 'pca', components: 2 },
  });

describe('settings and spreads', () => {
  test('a setting is the grid values without the seeds', () => {
    expect(settingLabel({ 'optimizer.lr': 0.1, seed: 3, orderSeed: 1 })).toBe('lr=0.1');
    expect(settingLabel({ 'model.init': { kind: 'normal', std: 1 }, dataSeed: 2 })).toBe('init=normal-1');
    expect(settingLabel({ 'model.hidden': [64, 64] })).toBe('hidden=[64,64]');
    expect(settingLabel({ seed: 0 })).toBe('all runs');
  });

  test('spread: mean, sample std (n − 1), min, max of the finite values; NaN std for one value', () => {
    expect(spread([1, 2, 4, Number.NaN])).toEqual({
      n: 3,
      mean: 7 / 3,
      std: Math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2),
      min: 1,
      max: 4,
    });
    expect(spread([0.5])?.std).toBeNaN();
    expect(spread([])).toBeUndefined();
    const s = settingSummaries([
      { name: 'a', setting: 'x', final: { testAcc: 0.5, testLoss: 1 }, finished: true },
      { name: 'b', setting: 'x', final: { testAcc: 0.7, testLoss: 2 }, finished: true },
      { name: 'c', setting: 'x', finished: false },
    ]);
    expect(s).toHaveLength(1);
    expect(s[0]?.runs).toEqual(['a', 'b', 'c']);
    expect(s[0]?.testAcc?.n).toBe(2);
  });
});

describe('a sweep with diagnostics and sharpness every epoch', () => {
  test('figures and table from the runs; resumes without retraining finished runs', async () => {
    const dir = scratchDir('twinscope-training-plots-');
    const sweep = spec();
    const first = await runSweep(sweep, dir, {}, { workers: 1 });
    expect(first.failed).toEqual([]);
    expect(first.trained).toBe(4);

    const contents = readSweepDir(dir);
    const training = contents.sweep?.training ?? [];
    expect(training.map((t) => [t.run, t.setting])).toEqual(
      sweep.points.map((p) => [p.name, `lr=${p.overrides['optimizer.lr']}`]),
    );
    // The figure data are the rows read from each run, in sweep order; seeds share their setting.
    const plots = trainingPlots(training);
    const values = (name: string) =>
      (plots.find((p) => p.name === name)?.spec as unknown as { data?: { values: unknown[] } } | undefined)
        ?.data?.values;
    const expected = (metric: string, layer: string | null) =>
      sweep.points.flatMap((p) =>
        readDiagnostics(join(dir, 'runs', p.name))
          .filter((r) => r.metric === metric && r.layer === layer)
          .map((r) => ({
            run: p.name,
            setting: `lr=${p.overrides['optimizer.lr']}`,
            step: r.step,
            epoch: r.epoch,
            layer,
            value: r.value,
          })),
      );
    expect(values('training-test-accuracy')).toEqual(expected('test_acc', null));
    expect(values('training-train-loss')).toEqual(expected('train_loss', null));
    expect(values('training-grad-norm')).toEqual(expected('grad_norm', null));
    expect(values('training-saturation')).toEqual(expected('saturation', null));
    expect(values('training-saturation-layers')).toEqual(
      [...expected('saturation', 'dense0'), ...expected('saturation', 'dense1')].sort(
        (a, b) =>
          a.run.localeCompare(b.run) || a.step - b.step || String(a.layer).localeCompare(String(b.layer)),
      ),
    );
    // One measurement per epoch: epochs 0 … 3 on the x axis.
    expect(expected('test_acc', null).map((d) => d.epoch)).toEqual([
      0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3,
    ]);
    expect(diagnosticsData(training, 'test_acc')).toEqual(values('training-test-accuracy'));

    const sharp = sweep.points.flatMap((p) =>
      readSharpness(join(dir, 'runs', p.name)).map((s) => ({
        run: p.name,
        value: s.eigenvalues[0],
        threshold: s.threshold,
        step: s.step,
      })),
    );
    const lambda = values('sharpness-along-training') as {
      run: string;
      value: number;
      threshold: number;
      step: number;
      ratio: number;
      lr: number;
    }[];
    expect(lambda.map(({ run, value, threshold, step }) => ({ run, value, threshold, step }))).toEqual(sharp);
    for (const d of lambda) {
      expect(d.threshold).toBeCloseTo(2 / d.lr, 10);
      expect(d.ratio).toBe(d.value / d.threshold);
    }
    expect(sharpnessData(training, 'preconditioned')).toEqual([]);
    expect(plots.map((p) => p.name)).toEqual([
      'training-test-accuracy',
      'training-train-loss',
      'training-grad-norm',
      'training-saturation',
      'training-saturation-layers',
      'sharpness-along-training',
      'sharpness-ratio-along-training',
    ]);
    const summary = sharpnessSummaries(training);
    for (const s of summary) {
      const rows = sharp.filter((r) => r.run === s.run);
      expect(s.max).toBe(Math.max(...rows.map((r) => r.value as number)));
      const ratios = rows.map((r) => (r.value as number) / (r.threshold as number));
      const below = ratios.findIndex((x) => x < 0.9);
      const near = ratios.findIndex((x, i) => below >= 0 && i > below && x >= 0.9);
      expect(s.stepNear).toBe(near < 0 ? null : rows[near]?.step);
      expect(s.maxRatio).toBeCloseTo(
        Math.max(...rows.map((r) => (r.value as number) / (r.threshold as number))),
        12,
      );
    }

    // The table: mean and sample standard deviation over the seeds, by brute force.
    const settings = contents.sweep?.settings ?? [];
    expect(settings.map((s) => s.setting)).toEqual(['lr=0.05', 'lr=0.3']);
    for (const s of settings) {
      const accs = s.runs.map((r) => readRunJson(join(dir, 'runs', r)).final?.testAcc as number);
      let sum = 0;
      for (const a of accs) sum += a;
      const mean = sum / accs.length;
      let ss = 0;
      for (const a of accs) ss += (a - mean) * (a - mean);
      expect(s.testAcc?.n).toBe(2);
      expect(s.testAcc?.mean).toBeCloseTo(mean, 14);
      expect(s.testAcc?.std).toBeCloseTo(Math.sqrt(ss / (accs.length - 1)), 14);
      expect(s.testAcc?.min).toBe(Math.min(...accs));
      expect(s.testAcc?.max).toBe(Math.max(...accs));
    }

    // The report draws every figure (SVG and PNG) and shows the table.
    const report = await writeReport(dir);
    for (const name of plots.map((p) => p.name)) {
      const p = report.plots.find((q) => q.name === name);
      expect(p, name).toBeDefined();
      expect(statSync(join(dir, 'report', p?.files.png as string)).size).toBeGreaterThan(1000);
      expect(readFileSync(join(dir, 'report', p?.files.svg as string), 'utf8')).toContain('<svg');
    }
    const html = readFileSync(report.html, 'utf8');
    expect(html).toContain('<section id="training">');
    const first0 = settings[0]?.testAcc;
    expect(html).toContain(`${first0?.mean.toFixed(4)} ± ${first0?.std.toFixed(4)}`);
    expect(html.match(/<tr data-setting=/g)).toHaveLength(2);
    expect(html).toContain('table class="runs sharpness-summary"');

    // Resume: a lost run is trained again, alone, with the same rows; the others are not touched.
    const lost = sweep.points[1]?.name as string;
    const kept = sweep.points[2]?.name as string;
    const before = readDiagnostics(join(dir, 'runs', lost));
    const keptTime = statSync(join(dir, 'runs', kept, 'diagnostics.arrow')).mtimeMs;
    rmSync(join(dir, 'runs', lost), { recursive: true });
    const again = await runSweep(sweep, dir, {}, { workers: 1 });
    expect(again.trained).toBe(1);
    expect(readDiagnostics(join(dir, 'runs', lost))).toEqual(before);
    expect(statSync(join(dir, 'runs', kept, 'diagnostics.arrow')).mtimeMs).toBe(keptTime);
  }, 180_000);
});
