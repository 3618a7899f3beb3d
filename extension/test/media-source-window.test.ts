import { describe, expect, it } from 'vitest';
import {
  feedReaches,
  islandsAwayFrom,
  playedStretch,
  rangeAt,
  type TimeRange,
} from '../features/downloads/media-source-window';

const RANGES: TimeRange[] = [
  [0, 12],
  [30, 45],
];

describe('what a Firefox player keeps in its SourceBuffer', () => {
  it('finds the range that holds a position, with a little slack at the edges', () => {
    expect(rangeAt(RANGES, 5)).toEqual([0, 12]);
    expect(rangeAt(RANGES, 12.1)).toEqual([0, 12]);
    expect(rangeAt(RANGES, 20)).toBeUndefined();
    expect(rangeAt([], 0)).toBeUndefined();
  });

  it('keeps the feed for a seek into the range it is filling, and starts another for any other seek', () => {
    // The feed writes at 44 s: a seek to 35 s plays from what is there, the feed goes on.
    expect(feedReaches(RANGES, 35, 44)).toBe(true);
    // An island the feed has left behind: it would run dry at 12 s.
    expect(feedReaches(RANGES, 5, 44)).toBe(false);
    // Outside anything buffered, or before the feed wrote anything.
    expect(feedReaches(RANGES, 20, 44)).toBe(false);
    expect(feedReaches(RANGES, 35, undefined)).toBe(false);
  });

  it('removes what was played more than `keepBehind` seconds ago, and nothing for less than a second', () => {
    expect(playedStretch(RANGES, 40, 10)).toEqual([0, 30]);
    expect(playedStretch([[0, 12]], 10.5, 10)).toBeUndefined();
    expect(playedStretch([], 100, 10)).toBeUndefined();
  });

  it('frees the islands away from the playing position when the quota is reached', () => {
    expect(islandsAwayFrom(RANGES, 35)).toEqual([[0, 12]]);
    expect(islandsAwayFrom(RANGES, 20)).toEqual(RANGES);
    expect(islandsAwayFrom([[0, 12]], 5)).toEqual([]);
  });
});
