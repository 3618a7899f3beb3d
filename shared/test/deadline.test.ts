import { describe, expect, it } from 'vitest';
import { withDeadline } from '../src/deadline.js';
import { ManualClock } from '../../test/manual-clock.js';

describe('withDeadline', () => {
  it('resolves with the value and clears its timer', async () => {
    const clock = new ManualClock();
    await expect(
      withDeadline(Promise.resolve(7), { ms: 10, onTimeout: () => new Error('late'), clock }),
    ).resolves.toBe(7);
    expect(clock.pending).toBe(0);
  });

  it('passes a rejection through and clears its timer', async () => {
    const clock = new ManualClock();
    const failing = withDeadline(Promise.reject(new Error('boom')), {
      ms: 10,
      onTimeout: () => new Error('late'),
      clock,
    });
    await expect(failing).rejects.toThrow('boom');
    expect(clock.pending).toBe(0);
  });

  it('rejects with onTimeout() when the deadline passes first, and disposes of a late value', async () => {
    const clock = new ManualClock();
    let deliver!: (value: string) => void;
    const disposed: string[] = [];
    const guarded = withDeadline(new Promise<string>((resolve) => (deliver = resolve)), {
      ms: 10,
      onTimeout: () => new Error('too slow'),
      disposeLate: (value) => disposed.push(value),
      clock,
    });
    clock.advance(10);
    await expect(guarded).rejects.toThrow('too slow');
    deliver('socket');
    await Promise.resolve();
    await Promise.resolve();
    expect(disposed).toEqual(['socket']);
  });
});
