import { describe, expect, it } from 'vitest';
import type { Clock } from '../src/clock.js';
import { RoundTripMeter, type Echoer } from '../src/engines/round-trip.js';

/** Time moves only when the test says so. */
function manualClock() {
  let now = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  let nextId = 1;
  const clock: Clock & { advance(ms: number): void } = {
    now: () => now,
    setTimeout: (callback, ms) => {
      const id = nextId++;
      timers.set(id, { at: now + ms, callback });
      return id;
    },
    clearTimeout: (handle) => void timers.delete(handle as number),
    advance(ms) {
      now += ms;
      for (const [id, timer] of [...timers]) {
        if (timer.at > now) continue;
        timers.delete(id);
        timer.callback();
      }
    },
  };
  return clock;
}

/** An echoer whose far end answers only when the test says so. */
function farEnd() {
  const pings: Uint8Array[] = [];
  let listener: ((payload: Uint8Array) => void) | undefined;
  const echoer: Echoer = {
    ping: (payload) => void pings.push(payload),
    onPong: (l) => {
      listener = l;
      return () => (listener = undefined);
    },
  };
  return { echoer, pings, answer: (payload: Uint8Array) => listener?.(payload) };
}

describe('RoundTripMeter', () => {
  it('times a PING to its PONG on the clock, ignoring PONGs that match nothing', async () => {
    const clock = manualClock();
    const end = farEnd();
    const meter = new RoundTripMeter({ echoer: end.echoer, clock });
    const measured = meter.measure(5_000);
    expect(end.pings).toHaveLength(1);
    clock.advance(30);
    end.answer(new Uint8Array(8).fill(0xff));
    expect(meter.measuring).toBe(true);
    clock.advance(12);
    end.answer(end.pings[0]!);
    await expect(measured).resolves.toBe(42);
    expect(meter.measuring).toBe(false);

    const second = meter.measure(5_000);
    expect(end.pings[1]).not.toEqual(end.pings[0]);
    end.answer(end.pings[0]!); // a late echo of the first one
    clock.advance(7);
    end.answer(end.pings[1]!);
    await expect(second).resolves.toBe(7);
  });

  it('fails a measurement with no answer in time, and one under way when closed', async () => {
    const clock = manualClock();
    const end = farEnd();
    const meter = new RoundTripMeter({ echoer: end.echoer, clock });
    const unanswered = meter.measure(1_000);
    await expect(meter.measure(1_000)).rejects.toMatchObject({ code: 'busy' });
    clock.advance(1_000);
    await expect(unanswered).rejects.toMatchObject({ code: 'timeout' });
    const cut = meter.measure(1_000);
    meter.close();
    await expect(cut).rejects.toMatchObject({ code: 'closed' });
    end.answer(end.pings[1]!);
  });
});
