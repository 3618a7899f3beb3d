import { describe, expect, it } from 'vitest';
import { Backpressure, linkHasRoom } from '../src/links/backpressure.js';
import { LINK_HIGH_WATER, LINK_LOW_WATER } from '../src/links/link.js';

/** A Backpressure on the link marks, and how many drains it has announced. */
function watched() {
  const drains = { count: 0 };
  const backpressure = new Backpressure(() => (drains.count += 1));
  return { backpressure, drains };
}

describe('Backpressure', () => {
  it('owes a drain once the buffer was seen above the high mark, and announces it at the low mark, once', () => {
    const { backpressure, drains } = watched();
    expect(backpressure.note(LINK_HIGH_WATER + 1)).toBe(LINK_HIGH_WATER + 1);
    expect(backpressure.congested).toBe(true);
    // Falling, but not yet to the low mark: nothing yet.
    expect(backpressure.check(LINK_LOW_WATER + 1)).toBe(false);
    expect(drains.count).toBe(0);
    expect(backpressure.check(LINK_LOW_WATER)).toBe(true);
    expect(drains.count).toBe(1);
    expect(backpressure.congested).toBe(false);
    // Owed once: further readings low down announce nothing more.
    expect(backpressure.check(0)).toBe(false);
    expect(drains.count).toBe(1);
  });

  it('owes nothing to a buffer seen at the high mark or below it', () => {
    const { backpressure, drains } = watched();
    backpressure.note(LINK_HIGH_WATER);
    expect(backpressure.congested).toBe(false);
    expect(backpressure.check(0)).toBe(false);
    expect(drains.count).toBe(0);
  });

  it('owes a new drain each time the buffer is seen above the high mark again', () => {
    const { backpressure, drains } = watched();
    for (let round = 1; round <= 3; round++) {
      backpressure.note(2 * LINK_HIGH_WATER);
      backpressure.check(0);
      expect(drains.count).toBe(round);
    }
  });

  it('takes other marks: a drain at the high mark itself, as ThrottledLink uses', () => {
    let drains = 0;
    const backpressure = new Backpressure(() => (drains += 1), { high: 100, low: 100 });
    backpressure.note(101);
    expect(backpressure.check(101)).toBe(false);
    expect(backpressure.check(100)).toBe(true);
    expect(drains).toBe(1);
  });
});

describe('linkHasRoom', () => {
  it('has room up to and including the high mark, where no drain would be owed', () => {
    expect(linkHasRoom({ bufferedAmount: 0 })).toBe(true);
    expect(linkHasRoom({ bufferedAmount: LINK_HIGH_WATER })).toBe(true);
    expect(linkHasRoom({ bufferedAmount: LINK_HIGH_WATER + 1 })).toBe(false);
  });
});
