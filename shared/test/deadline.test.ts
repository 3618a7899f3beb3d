import { describe, expect, it } from 'vitest';
import { withDeadline } from '../src/deadline.js';
import type { Clock } from '../src/clock.js';

/** A clock whose timers fire only when the test says so. */
function manualTimers() {
  const timers = new Map<number, () => void>();
  let next = 0;
  const clock: Pick<Clock, 'setTimeout' | 'clearTimeout'> = {
    setTimeout: (callback) => {
      timers.set(++next, callback);
      return next;
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
  };
  const fireAll = () => {
    for (const [id, callback] of [...timers]) {
      timers.delete(id);
      callback();
    }
  };
  return { clock, timers, fireAll };
}

describe('withDeadline', () => {
  it('resolves with the value and clears its timer', async () => {
    const { clock, timers } = manualTimers();
    await expect(
      withDeadline(Promise.resolve(7), { ms: 10, onTimeout: () => new Error('late'), clock }),
    ).resolves.toBe(7);
    expect(timers.size).toBe(0);
  });

  it('passes a rejection through and clears its timer', async () => {
    const { clock, timers } = manualTimers();
    const failing = withDeadline(Promise.reject(new Error('boom')), {
      ms: 10,
      onTimeout: () => new Error('late'),
      clock,
    });
    await expect(failing).rejects.toThrow('boom');
    expect(timers.size).toBe(0);
  });

  it('rejects with onTimeout() when the deadline passes first, and disposes of a late value', async () => {
    const { clock, fireAll } = manualTimers();
    let deliver!: (value: string) => void;
    const disposed: string[] = [];
    const guarded = withDeadline(new Promise<string>((resolve) => (deliver = resolve)), {
      ms: 10,
      onTimeout: () => new Error('too slow'),
      disposeLate: (value) => disposed.push(value),
      clock,
    });
    fireAll();
    await expect(guarded).rejects.toThrow('too slow');
    deliver('socket');
    await Promise.resolve();
    await Promise.resolve();
    expect(disposed).toEqual(['socket']);
  });
});
