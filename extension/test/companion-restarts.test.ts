import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../test/manual-clock';
import { CompanionRestarts } from '../lib/companion-restarts';

describe('CompanionRestarts', () => {
  it('waits longer at each attempt of one outage, the last wait repeating', () => {
    const clock = new ManualClock();
    const restarts = new CompanionRestarts({ clock, delaysMs: [0, 100, 300], maxPerWindow: 10 });
    const delays = [1, 2, 3, 4].map(() => {
      const next = restarts.next();
      return next.ok ? next.delayMs : -1;
    });
    expect(delays).toEqual([0, 100, 300, 300]);
  });

  it('allows at most maxPerWindow attempts in a sliding window', () => {
    const clock = new ManualClock();
    const restarts = new CompanionRestarts({ clock, maxPerWindow: 2, windowMs: 1_000 });
    expect(restarts.next()).toMatchObject({ ok: true, attempt: 1, left: 1 });
    clock.advance(500);
    expect(restarts.next()).toMatchObject({ ok: true, attempt: 2, left: 0 });
    expect(restarts.next()).toEqual({ ok: false, startsInWindow: 2, windowMs: 1_000 });
    clock.advance(500);
    // The first attempt left the window.
    expect(restarts.next()).toMatchObject({ ok: true, attempt: 3, left: 0 });
  });

  it('starts a new outage from the shortest wait but keeps counting the window', () => {
    const clock = new ManualClock();
    const restarts = new CompanionRestarts({ clock, delaysMs: [0, 100], maxPerWindow: 3 });
    restarts.next();
    restarts.next();
    restarts.succeeded();
    expect(restarts.next()).toMatchObject({ ok: true, attempt: 1, delayMs: 0, left: 0 });
    expect(restarts.next()).toMatchObject({ ok: false });
  });

  it('refuses nonsense limits', () => {
    const clock = new ManualClock();
    expect(() => new CompanionRestarts({ clock, delaysMs: [] })).toThrow(RangeError);
    expect(() => new CompanionRestarts({ clock, delaysMs: [-1] })).toThrow(RangeError);
  });
});
