import { describe, expect, it } from 'vitest';
import { ByteThrottle } from '../src/rate-limit.js';
import { ManualClock } from '../../test/manual-clock.js';

describe('ByteThrottle', () => {
  it('lets a burst through at once and paces what follows at the rate', () => {
    const clock = new ManualClock();
    const throttle = new ByteThrottle(64 * 1024, clock);
    const ran: string[] = [];
    throttle.take(64 * 1024, () => ran.push('burst'));
    throttle.take(32 * 1024, () => ran.push('next'));
    throttle.take(1, () => ran.push('last'));
    expect(ran).toEqual(['burst']);
    clock.advance(400);
    expect(ran).toEqual(['burst']);
    clock.advance(110);
    expect(ran).toEqual(['burst', 'next', 'last']);
  });

  it('drops what waits when cleared', () => {
    const clock = new ManualClock();
    const throttle = new ByteThrottle(1024, clock);
    const ran: number[] = [];
    throttle.take(64 * 1024, () => ran.push(1));
    throttle.take(64 * 1024, () => ran.push(2));
    throttle.clear();
    clock.advance(120_000);
    expect(ran).toEqual([1]);
    expect(clock.pending).toBe(0);
  });
});
