import { afterEach, describe, expect, test, vi } from 'vitest';
import { type FromWorker, PROGRESS_INTERVAL_MS, progressSender } from '../../src/exec/worker-loop.js';

describe('progressSender', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  test('sends the first report at once, then adds up steps and sends them at the end of the interval', () => {
    vi.useFakeTimers();
    const sent: FromWorker[] = [];
    const { onSteps, flush } = progressSender('job-1', (m) => sent.push(m));
    onSteps(2);
    expect(sent).toEqual([{ type: 'steps', id: 'job-1', n: 2 }]);
    for (let i = 0; i < 5; i++) onSteps(1);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(PROGRESS_INTERVAL_MS - 1);
    expect(sent).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(sent).toEqual([
      { type: 'steps', id: 'job-1', n: 2 },
      { type: 'steps', id: 'job-1', n: 5 },
    ]);
    onSteps(3);
    flush();
    expect(sent.at(-1)).toEqual({ type: 'steps', id: 'job-1', n: 3 });
    flush(); // nothing pending: nothing sent, and no timer left to send later
    vi.advanceTimersByTime(10 * PROGRESS_INTERVAL_MS);
    expect(sent).toHaveLength(3);
    expect(sent.reduce((s, m) => s + (m.type === 'steps' ? m.n : 0), 0)).toBe(10);
  });
});
