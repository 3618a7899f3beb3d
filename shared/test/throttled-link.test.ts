import { afterEach, describe, expect, it, vi } from 'vitest';
import { memoryLinkPair } from '../src/links/memory-link.js';
import { ThrottledLink } from '../src/links/throttled-link.js';
import { ByteThrottle } from '../src/rate-limit.js';
import { LINK_HIGH_WATER } from '../src/links/link.js';

describe('ThrottledLink', () => {
  afterEach(() => vi.useRealTimers());

  it('announces a drain once what it holds back for the budget has gone out', () => {
    vi.useFakeTimers();
    const [inner] = memoryLinkPair();
    // 1 MiB/s, so a burst of 256 KiB: the first message passes at once, each next one a quarter second later.
    const link = new ThrottledLink(inner, new ByteThrottle(1024 * 1024));
    let drains = 0;
    link.on('drain', () => (drains += 1));
    for (let i = 0; i < 3; i++) link.send(new Uint8Array(1024 * 1024));
    expect(link.bufferedAmount).toBe(2 * 1024 * 1024); // a reader finds it full: it is owed a drain
    vi.advanceTimersByTime(100);
    expect(drains).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(link.bufferedAmount).toBe(0);
    expect(drains).toBe(1);
  });

  it('passes on the inner link’s drain only when it holds nothing much itself', () => {
    const [inner] = memoryLinkPair();
    const link = new ThrottledLink(inner, new ByteThrottle(1024 * 1024 * 1024));
    let drains = 0;
    link.on('drain', () => (drains += 1));
    inner.simulateBuffered(2 * LINK_HIGH_WATER);
    expect(link.bufferedAmount).toBe(2 * LINK_HIGH_WATER);
    inner.simulateBuffered(0);
    expect(drains).toBe(1);
    // Nobody found it full since: no drain is owed.
    inner.simulateBuffered(2 * LINK_HIGH_WATER);
    inner.simulateBuffered(0);
    expect(drains).toBe(1);
  });
});
