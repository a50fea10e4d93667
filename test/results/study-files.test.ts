import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { parseStudyJson, readStatus, writeStatus, writeStudyJson } from '../../src/results/study-files.js';
import { scratchDir } from '../helpers/scratch.js';

const root = scratchDir('twinscope-study-files-');
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('status.json', () => {
  test('round trip', () => {
    const status = {
      complete: false,
      failed: [{ id: 'train:s0/parent', message: 'boom' }],
      blocked: ['measure:s0/t0/gaussian-0-r0'],
      controlFailures: ['s0/t0/gaussian-0-r0: L2 = 1e-7 at step 10'],
      diverged: [{ run: 's0/t0/gaussian-1e2-r0', step: 13, reason: 'loss' as const }],
    };
    writeStatus(root, status);
    expect(readStatus(root, 'study')).toEqual({ status });
  });

  test('missing or unreadable: a warning naming why; missing lists read as empty', () => {
    const none = join(root, 'none');
    expect(readStatus(none, 'sweep').warning).toMatch(/^no status\.json: the sweep has not finished/);
    const bad = mkdtempSync(join(root, 'bad-'));
    writeFileSync(join(bad, 'status.json'), '{"complete": true,');
    expect(readStatus(bad, 'study').warning).toMatch(/^status\.json: not valid JSON/);
    writeFileSync(join(bad, 'status.json'), '{"complete": true}');
    expect(readStatus(bad, 'study').status).toEqual({
      complete: true,
      failed: [],
      blocked: [],
      controlFailures: [],
      diverged: [],
    });
  });
});

describe('study.json', () => {
  const twin = { kind: 'gaussian', sigma: 0.1, forkStep: 10, repeat: 0, seed: 0 } as const;

  test('written with the current format, parsed back as written', () => {
    const dir = mkdtempSync(join(root, 'study-'));
    const contents = { spec: { name: 'x' }, totalSteps: 5, twins: [{ runA: 'a', runB: 'b', ...twin }] };
    writeStudyJson(dir, contents);
    const json = JSON.parse(readFileSync(join(dir, 'study.json'), 'utf8'));
    expect(json.format).toBe(2);
    expect(parseStudyJson(json)).toEqual({ study: json });
  });

  test('format 1 pairs (reference, name) are read as runA, runB', () => {
    const old = { format: 1, spec: {}, twins: [{ name: 'b', reference: 'a', ...twin }] };
    const parsed = parseStudyJson(old);
    expect('study' in parsed && parsed.study.twins).toStrictEqual([{ runA: 'a', runB: 'b', ...twin }]);
  });

  test('not a study', () => {
    expect(parseStudyJson({ spec: {} })).toEqual({ problem: "not a study (expected 'spec' and 'twins')" });
    expect(parseStudyJson([])).toEqual({ problem: "not a study (expected 'spec' and 'twins')" });
  });
});
