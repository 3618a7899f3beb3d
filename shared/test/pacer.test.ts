import { describe, expect, it } from 'vitest';
import { PACING_BURST_BYTES, PACING_GAIN, Pacer } from '../src/links/pacer.js';

function pacer() {
  const clock = { t: 0, now: () => clock.t };
  return { clock, pacer: new Pacer({ clock }) };
}

describe('Pacer', () => {
  it('lets everything out at once until a delivery rate was measured over a round trip', () => {
    const { clock, pacer: p } = pacer();
    expect(p.waitFor(10 * PACING_BURST_BYTES)).toBe(0);
    p.noteDelivered(0, 100);
    clock.t += 50;
    p.noteDelivered(1_000_000, 100); // half a round trip: no sample yet
    expect(p.deliveryRate).toBeUndefined();
    p.take(10 * PACING_BURST_BYTES);
    expect(p.waitFor(60_000)).toBe(0);
  });

  it('fills its bucket at gain × the highest delivery rate of the latest round trips, up to one burst', () => {
    const { clock, pacer: p } = pacer();
    p.noteDelivered(0, 100);
    clock.t += 100;
    p.noteDelivered(1_250_000, 100); // 12,500 B/ms: 100 Mbit/s
    expect(p.deliveryRate).toBe(12_500);
    expect(p.pacingRate).toBe(PACING_GAIN * 12_500);
    // A full bucket lets one burst out; the next 60 kB wait for their tokens.
    expect(p.waitFor(PACING_BURST_BYTES)).toBe(0);
    p.take(PACING_BURST_BYTES);
    expect(p.waitFor(60_000)).toBe(Math.ceil(60_000 / (PACING_GAIN * 12_500)));
    clock.t += Math.ceil(60_000 / (PACING_GAIN * 12_500));
    expect(p.waitFor(60_000)).toBe(0);
    // A slower round trip after that does not lower the rate: the highest of the latest samples counts.
    clock.t += 100;
    p.noteDelivered(1_300_000, 100);
    expect(p.deliveryRate).toBe(12_500);
  });

  it('forgets a rate after eight slower round trips, but never paces below one burst per round trip', () => {
    const { clock, pacer: p } = pacer();
    p.noteDelivered(0, 100);
    clock.t += 100;
    p.noteDelivered(1_250_000, 100);
    for (let i = 0; i < 8; i++) {
      clock.t += 100;
      p.noteDelivered(1_250_000, 100); // idle
    }
    expect(p.deliveryRate).toBe(0);
    expect(p.pacingRate).toBe(PACING_BURST_BYTES / 100);
  });
});
