import { afterEach, describe, expect, it, vi } from 'vitest';
import { ByteThrottle } from '../src/rate-limit.js';

describe('ByteThrottle', () => {
  afterEach(() => vi.useRealTimers());

  it('lets a burst through at once and paces what follows at the rate', () => {
    vi.useFakeTimers();
    let now = 0;
    const throttle = new ByteThrottle(64 * 1024, () => now);
    const ran: string[] = [];
    throttle.take(64 * 1024, () => ran.push('burst'));
    throttle.take(32 * 1024, () => ran.push('next'));
    throttle.take(1, () => ran.push('last'));
    expect(ran).toEqual(['burst']);
    now = 400;
    vi.advanceTimersByTime(400);
    expect(ran).toEqual(['burst']);
    now = 510;
    vi.advanceTimersByTime(110);
    expect(ran).toEqual(['burst', 'next', 'last']);
  });

  it('drops what waits when cleared', () => {
    vi.useFakeTimers();
    let now = 0;
    const throttle = new ByteThrottle(1024, () => now);
    const ran: number[] = [];
    throttle.take(64 * 1024, () => ran.push(1));
    throttle.take(64 * 1024, () => ran.push(2));
    throttle.clear();
    now = 120_000;
    vi.advanceTimersByTime(120_000);
    expect(ran).toEqual([1]);
  });
});
