/**
 * Which seconds of a file a Firefox player keeps in its SourceBuffer: what is buffered around the playing
 * position, at most a bounded stretch ahead (the feed waits) and behind (played seconds are removed), so a
 * long or high-bitrate file never fills the browser's quota. Pure: times in seconds, ranges as the element's
 * `buffered` lists them.
 */

export type TimeRange = readonly [start: number, end: number];

/** Decoders round frame times: a position this close to a range's edge is inside it. */
const EDGE_S = 0.25;

export function rangesOf(buffered: TimeRanges): TimeRange[] {
  const ranges: TimeRange[] = [];
  for (let i = 0; i < buffered.length; i++) ranges.push([buffered.start(i), buffered.end(i)]);
  return ranges;
}

/** The buffered range that holds `time`, if any. */
export function rangeAt(ranges: readonly TimeRange[], time: number): TimeRange | undefined {
  return ranges.find(([start, end]) => time >= start - EDGE_S && time <= end + EDGE_S);
}

/**
 * Whether a feed that has written up to `fedTo` goes on filling the range where the element now plays:
 * then a seek into that range needs no new feed. Otherwise (a seek outside what is buffered, or into an
 * island the feed has left behind) the feed starts again at the new position.
 */
export function feedReaches(ranges: readonly TimeRange[], time: number, fedTo: number | undefined): boolean {
  const range = rangeAt(ranges, time);
  if (!range || fedTo === undefined) return false;
  return fedTo >= range[0] - EDGE_S && fedTo <= range[1] + 2;
}

/** The played stretch to remove: everything more than `keepBehind` seconds before `time`; undefined when none. */
export function playedStretch(
  ranges: readonly TimeRange[],
  time: number,
  keepBehind: number,
): TimeRange | undefined {
  const first = ranges[0];
  const until = time - keepBehind;
  // Less than a second to free is not worth a removal (each is a SourceBuffer operation of its own).
  if (!first || until - first[0] < 1) return undefined;
  return [first[0], until];
}

/**
 * Everything buffered but the range being played: what can go when the quota is reached and nothing
 * played is left to remove. Removing a later island costs only its download again.
 */
export function islandsAwayFrom(ranges: readonly TimeRange[], time: number): TimeRange[] {
  const current = rangeAt(ranges, time);
  return ranges.filter((range) => range !== current);
}
