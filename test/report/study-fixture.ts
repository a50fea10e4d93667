/**
 * A hand-built study directory for report tests (no training): study.json with gaussian twins at
 * two fork steps plus a seed baseline, one run.json per run, synthetic results.arrow rows for every
 * butterfly plot, and status.json. Options make one run fail, leave one running, and put hostile
 * strings (HTML, `</script>`) into a run name, the study name and a failure message.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { METRICS, type TwinInfo } from '../../src/results/metrics.js';
import { type ResultRow, writeResults } from '../../src/results/rows.js';

/** A run name that would run a script if it were inserted into the page unescaped. */
export const XSS_RUN = '<img src=x onerror=alert(1)>';
/** A study name that would end the script element holding the plot data if not escaped. */
export const XSS_NAME = 'evil</script><script>window.__xss=1</script>';
/** The failure message of the failed run. */
export const FAIL_MESSAGE = 'engine exploded at step 7 <script>window.__xss=2</script>';

export interface FixtureOptions {
  /** Mark `s0/t10/gaussian-1e-2-r0` failed in status.json and leave its run.json 'running'. */
  readonly failed?: boolean;
  /** Leave `s0/t100/gaussian-1e-3-r1` with run.json status 'running' and no final metrics. */
  readonly running?: boolean;
  /** Add the twin {@link XSS_RUN} and name the study {@link XSS_NAME}. */
  readonly hostile?: boolean;
}

/** The failed run's name (see {@link FixtureOptions.failed}). */
export const FAILED_RUN = 's0/t10/gaussian-1e-2-r0';
/** The incomplete run's name (see {@link FixtureOptions.running}). */
export const RUNNING_RUN = 's0/t100/gaussian-1e-3-r1';

const TOTAL = 1000;
const STEPS = [0, 10, 100, 1000];

/** Write the fixture study into `dir` (created) and return its twins. */
export function writeStudyFixture(dir: string, options: FixtureOptions = {}): TwinInfo[] {
  const twins: TwinInfo[] = [];
  for (const t of [10, 100])
    for (const sigma of [1e-4, 1e-3, 1e-2])
      for (const repeat of [0, 1])
        twins.push({
          runA: `s0/t${t}/a`,
          runB: `s0/t${t}/gaussian-${sigma.toExponential(0).replace('e-', 'e-')}-r${repeat}`,
          kind: 'gaussian',
          sigma,
          forkStep: t,
          repeat,
          seed: 0,
        });
  for (const repeat of [0, 1])
    twins.push({
      runA: 's0/t0/a',
      runB: `s0/t0/seed-r${repeat}`,
      kind: 'seed',
      sigma: 0,
      forkStep: 0,
      repeat,
      seed: 0,
    });
  if (options.hostile) {
    twins.push({
      runA: 's0/t10/a',
      runB: XSS_RUN,
      kind: 'gaussian',
      sigma: 5e-3,
      forkStep: 10,
      repeat: 0,
      seed: 0,
    });
  }
  const name = options.hostile ? XSS_NAME : 'fixture-study';
  mkdirSync(dir, { recursive: true });
  const spec = {
    name,
    base: { name: 'moons-sgd', data: { name: 'moons', n: 400 } },
    note: options.hostile ? XSS_NAME : '',
  };
  writeFileSync(
    join(dir, 'study.json'),
    JSON.stringify({
      format: 1,
      toolkit: '0.1.0',
      spec,
      stepsPerEpoch: 10,
      totalSteps: TOTAL,
      checkpoints: STEPS,
      twins,
    }),
  );

  const runs = new Set(['s0/parent', ...twins.map((t) => t.runB), ...twins.map((t) => t.runA)]);
  for (const run of runs) {
    const failed = options.failed && run === FAILED_RUN;
    const running = options.running && run === RUNNING_RUN;
    const complete = !failed && !running;
    const i = [...runs].indexOf(run);
    mkdirSync(join(dir, 'runs', run), { recursive: true });
    const final = {
      step: complete ? TOTAL : 500,
      epoch: complete ? 100 : 50,
      kind: 'eval',
      trainEvalLoss: 0.2 + i / 1000,
      trainAcc: 0.9,
      testLoss: 0.25 + i / 1000,
      testAcc: 0.88,
    };
    writeFileSync(
      join(dir, 'runs', run, 'run.json'),
      JSON.stringify({
        format: 1,
        toolkit: '0.1.0',
        status: complete ? 'complete' : 'running',
        totalSteps: TOTAL,
        stepsPerEpoch: 10,
        checkpointSteps: STEPS,
        lineage: {},
        ...(!running && { final }),
      }),
    );
  }

  const rows: ResultRow[] = [];
  const row = (tw: TwinInfo, r: Partial<ResultRow> & Pick<ResultRow, 'metric' | 'step' | 'value'>) =>
    rows.push({
      study: name,
      runA: tw.runA,
      runB: tw.runB,
      layer: null,
      split: null,
      options: {},
      ...r,
    });
  for (const tw of twins) {
    if (options.failed && tw.runB === FAILED_RUN) continue; // never measured
    const scale = tw.sigma || 0.5;
    for (const step of STEPS.filter((s) => s >= tw.forkStep)) {
      row(tw, {
        metric: METRICS.l2,
        step,
        value: step === 0 ? 0 : scale * (1 + step / 10) * (1 + tw.repeat / 10),
      });
    }
    row(tw, {
      metric: METRICS.errorBarrier,
      step: TOTAL,
      split: 'test',
      value: scale * 3,
      options: { convention: 'linear' },
    });
    row(tw, {
      metric: METRICS.alignedErrorBarrier,
      step: TOTAL,
      split: 'test',
      value: scale,
      options: { method: 'weight' },
    });
    for (const alpha of [0, 0.25, 0.5, 0.75, 1]) {
      row(tw, {
        metric: METRICS.interpLoss,
        step: TOTAL,
        split: 'test',
        value: 0.3 + scale * alpha * (1 - alpha),
        options: { alpha },
      });
    }
    for (const layer of ['dense0', 'dense1']) {
      row(tw, {
        metric: METRICS.cka,
        step: TOTAL,
        split: 'test',
        layer,
        value: 1 - scale * 10,
        options: { kernel: 'linear' },
      });
    }
  }
  writeResults(join(dir, 'results.arrow'), rows);

  const failed = options.failed ? [{ id: `fork:${FAILED_RUN}`, message: FAIL_MESSAGE }] : [];
  writeFileSync(
    join(dir, 'status.json'),
    JSON.stringify({
      complete: !options.failed,
      failed,
      blocked: options.failed ? [`measure:${FAILED_RUN}`] : [],
      controlFailures: [],
    }),
  );
  return twins;
}
