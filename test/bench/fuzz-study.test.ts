/**
 * The CI-sized run of bench/fuzz-study.mjs (issue 12, item 7): a small study and sweep, 32 cases
 * that damage one file each (every file kind comes up: cases visit the kinds round robin), one
 * reading command per case, at most 2 processes at a time. No case may end in exit 0 with a wrong
 * result, an unclear error or a hang. `node bench/fuzz-study.mjs` is the longer run (every reading
 * command per case, 300 cases, determinism checks).
 *
 * The subset can fail: against a394941 (before the integrity checks of 5075df7) case 21 of seed 12,
 * a flipped bit in a measurement file that turns one value 0.08 into 0.04, ends WRONG: the
 * study's re-run copies it into results.arrow and exits 0.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, test } from 'vitest';
import { scratchDir } from '../helpers/scratch.js';
import { buildDist, ROOT } from '../helpers/study.js';

type Outcome = 'refused' | 'correct' | 'warned' | 'WRONG' | 'UNCLEAR' | 'HANG';

/** The part of fuzzStudy's summary this test reads. */
interface FuzzSummary {
  ok: boolean;
  cases: number;
  commands: number;
  kinds: Record<string, number>;
  outcomes: Record<Outcome, number>;
  byCommand: Record<string, Partial<Record<Outcome, number>>>;
  failures: Record<string, unknown>[];
  seconds: Record<string, number>;
}

type FuzzStudy = (options: {
  cases: number;
  seed: number;
  timeoutS: number;
  out: string;
  commandsPerCase: number;
  concurrency: number;
  determinism: boolean;
}) => Promise<FuzzSummary>;

/** Every kind of file a study or a sweep holds (run files of a parent, a twin and a sweep run). */
const KINDS = [
  'run.json (parent)',
  'run.json (twin)',
  'run.json (sweep run)',
  'checkpoints.arrow',
  'metrics.arrow',
  'results.arrow',
  'measurements/*.arrow',
  'embedding.arrow',
  'embedding.json',
  'key.json',
  'status.json',
  'study.json',
  'sweep.json',
  'groups.json',
  'groups.arrow',
];

let summary: FuzzSummary;

beforeAll(async () => {
  await buildDist(); // the harness runs bin/twinscope.js, which runs dist/
  // A plain-JavaScript bench script: imported by URL, typed here.
  const { fuzzStudy } = (await import(pathToFileURL(join(ROOT, 'bench', 'fuzz-study.mjs')).href)) as {
    fuzzStudy: FuzzStudy;
  };
  summary = await fuzzStudy({
    cases: 32,
    seed: 12,
    timeoutS: 60,
    out: scratchDir('twinscope-fuzz-'),
    commandsPerCase: 1,
    concurrency: 2,
    determinism: false,
  });
}, 900_000);

describe('fuzz-study (CI subset: 32 cases, one reading command each)', () => {
  test('damages every kind of file', () => {
    expect(summary.cases).toBe(32);
    expect(summary.commands).toBe(32);
    for (const kind of KINDS) expect(summary.kinds[kind], kind).toBeGreaterThan(0);
  });

  test('no damaged file ends in exit 0 with a wrong result, an unclear error or a hang', () => {
    expect(summary.failures).toEqual([]);
    expect([summary.outcomes.WRONG, summary.outcomes.UNCLEAR, summary.outcomes.HANG]).toEqual([0, 0, 0]);
    expect(summary.ok).toBe(true);
  });

  test('the cases include refusals and correct results (the classification can tell them apart)', () => {
    expect(summary.outcomes.refused).toBeGreaterThan(0);
    expect(summary.outcomes.correct).toBeGreaterThan(0);
  });
});
