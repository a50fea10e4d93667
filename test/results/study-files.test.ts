import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { readStatus, writeStatus } from '../../src/results/study-files.js';

const root = mkdtempSync(join(tmpdir(), 'twinscope-study-files-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('status.json', () => {
  test('round trip', () => {
    const status = {
      complete: false,
      failed: [{ id: 'train:s0/parent', message: 'boom' }],
      blocked: ['measure:s0/t0/gaussian-0-r0'],
      controlFailures: ['s0/t0/gaussian-0-r0: L2 = 1e-7 at step 10'],
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
    });
  });
});
