import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import {
  parseStudyJson,
  readStatus,
  readStudyJsonFile,
  readSweepJson,
  writeStatus,
  writeStudyJson,
  writeSweepJson,
} from '../../src/results/study-files.js';
import { IntegrityError } from '../../src/util/errors.js';
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
    const files = { 'results.arrow': { sha256: 'ab'.repeat(32), bytes: 123 } };
    writeStatus(root, { ...status, files });
    expect(readStatus(root, 'study')).toEqual({ status: { ...status, files } });
    // Sealed: a changed number that still parses is found.
    const text = readFileSync(join(root, 'status.json'), 'utf8');
    writeFileSync(join(root, 'status.json'), text.replace('"step": 13', '"step": 14'));
    expect(() => readStatus(root, 'study')).toThrow(IntegrityError);
    expect(() => readStatus(root, 'study')).toThrow(/status\.json: content does not match its checksum/);
    // A seal removed from a sealed format is found too.
    const { checksum: _c, ...unsealed } = JSON.parse(text);
    writeFileSync(join(root, 'status.json'), JSON.stringify(unsealed));
    expect(() => readStatus(root, 'study')).toThrow(/no 'checksum' field/);
    writeStatus(root, status);
    expect(readStatus(root, 'study').status?.files).toEqual({});
  });

  test('missing: a warning; damaged: an IntegrityError; written before seals: read, missing lists empty', () => {
    const none = join(root, 'none');
    expect(readStatus(none, 'sweep').warning).toMatch(/^no status\.json: the sweep has not finished/);
    const bad = mkdtempSync(join(root, 'bad-'));
    writeFileSync(join(bad, 'status.json'), '{"complete": true,');
    expect(() => readStatus(bad, 'study')).toThrow(/status\.json: not valid JSON/);
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
    const { checksum, ...json } = JSON.parse(readFileSync(join(dir, 'study.json'), 'utf8'));
    expect(json.format).toBe(3);
    expect(checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(readStudyJsonFile(dir)).toEqual(json);
    expect(parseStudyJson(readStudyJsonFile(dir))).toEqual({ study: json });
    writeFileSync(join(dir, 'study.json'), JSON.stringify({ ...json, totalSteps: 6, checksum }));
    expect(() => readStudyJsonFile(dir)).toThrow(/study\.json: content does not match its checksum/);
    // Format 2 (before seals) is read without one.
    writeFileSync(join(dir, 'study.json'), JSON.stringify({ ...json, format: 2 }));
    expect(readStudyJsonFile(dir)).toEqual({ ...json, format: 2 });
  });

  test('sweep.json: sealed, read back; not a sweep named', () => {
    const dir = mkdtempSync(join(root, 'sweep-'));
    writeSweepJson(dir, { name: 's', runs: [{ name: '0-a', overrides: { lr: 0.1 } }] });
    const read = readSweepJson(dir);
    expect('sweep' in read && read.sweep.runs).toEqual([{ name: '0-a', overrides: { lr: 0.1 } }]);
    const text = readFileSync(join(dir, 'sweep.json'), 'utf8');
    writeFileSync(join(dir, 'sweep.json'), text.replace('0.1', '0.2'));
    expect(() => readSweepJson(dir)).toThrow(IntegrityError);
    writeFileSync(join(dir, 'sweep.json'), '{"format": 1, "name": "s"}');
    expect(readSweepJson(dir)).toEqual({ problem: "not a sweep (expected 'runs')" });
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
