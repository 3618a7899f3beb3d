import { describe, expect, it } from 'vitest';
import { LoadReporter } from '../src/engines/load-reporter.js';
import { ManualClock } from '../../test/manual-clock.js';

function reporter(intervalMs = 1_000) {
  const clock = new ManualClock();
  const sent: number[] = [];
  const load = new LoadReporter({ report: (value) => sent.push(value), clock, intervalMs });
  return { clock, sent, load };
}

describe('LoadReporter', () => {
  it('sends the first value at once, then at most one per interval carrying the latest', () => {
    const { clock, sent, load } = reporter();
    load.set(1);
    expect(sent).toEqual([1]);
    for (let i = 2; i <= 500; i++) load.set(i);
    expect(sent).toEqual([1]);
    clock.advance(999);
    expect(sent).toEqual([1]);
    clock.advance(1);
    expect(sent).toEqual([1, 500]);
    expect(clock.pending).toBe(0);
  });

  it('sends nothing when the value is what the broker was last told', () => {
    const { clock, sent, load } = reporter();
    load.set(3);
    load.set(4);
    load.set(3); // back where it was before the interval ended
    clock.advance(1_000);
    expect(sent).toEqual([3]);
    clock.advance(5_000);
    load.set(3);
    expect(sent).toEqual([3]);
  });

  it('after a quiet interval, a change goes out at once', () => {
    const { clock, sent, load } = reporter();
    load.set(1);
    clock.advance(2_500);
    load.set(2);
    expect(sent).toEqual([1, 2]);
  });

  it('sends nothing after close, and leaves no timer behind', () => {
    const { clock, sent, load } = reporter();
    load.set(1);
    load.set(2);
    expect(clock.pending).toBe(1);
    load.close();
    expect(clock.pending).toBe(0);
    load.set(3);
    clock.advance(10_000);
    expect(sent).toEqual([1]);
  });

  it('bounds a flood to one update per interval over a long run', () => {
    const { clock, sent, load } = reporter();
    for (let ms = 0; ms < 60_000; ms += 5) {
      load.set(ms % 2); // flapping as fast as a client can open and close
      clock.advance(5);
    }
    expect(sent.length).toBeLessThanOrEqual(61);
  });
});
