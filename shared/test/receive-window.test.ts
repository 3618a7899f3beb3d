import { describe, expect, it } from 'vitest';
import { ReceiveWindows, WINDOW_GAIN, type StreamReceiveWindow } from '../src/tunnel/receive-window.js';

const KIB = 1024;
const MIB = 1024 * 1024;

function windows(options: { budget?: number; maxStreamWindow?: number } = {}) {
  const clock = { t: 0, now: () => clock.t };
  const session = new ReceiveWindows({ clock, initialWindow: 256 * KIB, ...options });
  return { clock, session };
}

/** DATA bytes each stream has received so far, as its mux counts them. */
const receivedTotals = new WeakMap<StreamReceiveWindow, number>();

/** `bytes` of DATA arrive for `stream`. */
function receive(stream: StreamReceiveWindow, bytes: number): void {
  const total = (receivedTotals.get(stream) ?? 0) + bytes;
  receivedTotals.set(stream, total);
  stream.received(total);
}

/** A round trip of `ms` measured the way a stream does: a WINDOW, then the first byte beyond the old edge. */
function measure(clock: { t: number }, stream: StreamReceiveWindow, ms: number): void {
  stream.grant(0, receivedTotals.get(stream) ?? 0);
  clock.t += ms;
  receive(stream, 1);
  stream.consumed(1);
}

/**
 * The reader consumes `bytesPerMs` for `ms` after a first read, in 1 ms steps, each arriving just before it is
 * read: `ms` is one measured stretch.
 */
function consume(clock: { t: number }, stream: StreamReceiveWindow, bytesPerMs: number, ms: number): void {
  for (let i = 0; i <= ms; i++) {
    clock.t += 1;
    receive(stream, bytesPerMs);
    stream.consumed(bytesPerMs);
  }
}

describe('receive windows', () => {
  it('measures the credit round trip from a WINDOW to the first byte beyond the old edge, keeping the minimum', () => {
    const { clock, session } = windows();
    const stream = session.stream();
    expect(session.roundTripMs).toBeUndefined();
    stream.grant(128 * KIB, 256 * KIB);
    clock.t += 30;
    stream.received(256 * KIB); // up to the old edge: could have been sent without the WINDOW
    expect(session.roundTripMs).toBeUndefined();
    clock.t += 20;
    stream.received(256 * KIB + 100);
    expect(session.roundTripMs).toBe(50);
    measure(clock, stream, 80);
    expect(session.roundTripMs).toBe(50);
    measure(clock, session.stream(), 45);
    expect(session.roundTripMs).toBe(45);
  });

  it('does not grow before a round trip is known, nor where rate × round trip fits the initial window', () => {
    const { clock, session } = windows();
    const stream = session.stream();
    consume(clock, stream, 50 * KIB, 100); // 50 MiB/s, but no round trip yet
    expect(stream.size).toBe(256 * KIB);
    measure(clock, stream, 1); // a LAN: 50 KiB per round trip, and 128 KiB held back until a WINDOW is due
    consume(clock, stream, 50 * KIB, 100);
    expect(stream.size).toBe(256 * KIB);
  });

  it('grows to GAIN × consumed rate × round trip + the credit held back, and hands the growth out with the next WINDOW', () => {
    const { clock, session } = windows();
    const stream = session.stream();
    measure(clock, stream, 50);
    // 12.5 kB/ms (100 Mbit/s) for one round trip: 625 kB per round trip.
    consume(clock, stream, 12_500, 50);
    // And the 128 KiB of credit held back until a WINDOW is due.
    const grown = Math.ceil(WINDOW_GAIN * 625_000 + 128 * KIB);
    expect(stream.size).toBe(grown);
    expect(stream.grant(64 * KIB, 0)).toBe(64 * KIB + stream.size - 256 * KIB);
    expect(stream.grant(64 * KIB, 0)).toBe(64 * KIB);
    expect(session.grownBytes).toBe(stream.size - 256 * KIB);
    // A slower round trip after that does not shrink it; only a higher rate grows it.
    consume(clock, stream, 5_000, 100);
    expect(stream.size).toBe(grown);
  });

  it('returns credit per half initial window, or per eighth of a grown window', () => {
    const { clock, session } = windows();
    const stream = session.stream();
    expect(stream.updateThreshold).toBe(128 * KIB);
    measure(clock, stream, 100);
    consume(clock, stream, 20_000, 100); // 2 MB per round trip → a 2.6 MB window
    expect(stream.updateThreshold).toBe(stream.size / 8);
  });

  it('never grows a stream past its maximum, nor all streams past the session budget; a closed stream gives it back', () => {
    const { clock, session } = windows({ maxStreamWindow: 2 * MIB, budget: 3 * MIB });
    const [a, b, c] = [session.stream(), session.stream(), session.stream()];
    measure(clock, a, 200);
    for (const stream of [a, b, c]) consume(clock, stream, 100 * KIB, 200); // 20 MB per round trip each
    expect(a.size).toBe(2 * MIB);
    expect(b.size).toBe(256 * KIB + (3 * MIB - (2 * MIB - 256 * KIB)));
    expect(c.size).toBe(256 * KIB);
    expect(session.grownBytes).toBe(3 * MIB);
    a.release();
    a.release(); // once only
    expect(session.grownBytes).toBe(3 * MIB - (2 * MIB - 256 * KIB));
    consume(clock, c, 100 * KIB, 200);
    expect(c.size).toBe(2 * MIB);
    expect(session.grownBytes).toBe(3 * MIB);
  });

  it('keeps a reader that does not read at its initial window, however long the session lasts', () => {
    const { clock, session } = windows();
    const paused = session.stream();
    measure(clock, paused, 50);
    clock.t += 60_000;
    paused.consumed(256 * KIB); // one window, read at last after a minute: a crawl
    clock.t += 60_000;
    paused.consumed(1);
    expect(paused.size).toBe(256 * KIB);
  });

  it("bounds all streams' open windows together by what one stream would get at the session's rate", () => {
    const { clock, session } = windows();
    const streams = Array.from({ length: 8 }, () => session.stream());
    expect(session.openBytes).toBe(8 * 256 * KIB);
    measure(clock, streams[0]!, 150);
    // Read one after the other, each at 1,562.5 B/ms for a round trip: alone, each would grow to GAIN × 234 kB
    // + 128 KiB ≈ 436 kB. Together they read at the same 1,562.5 B/ms, which one 256 KiB window already carries.
    for (let round = 0; round < 5; round++)
      for (const stream of streams) consume(clock, stream, 1_562.5, 150);
    expect(WINDOW_GAIN * 1_562.5 * 150 + 128 * KIB).toBeGreaterThan(256 * KIB);
    expect(streams.map((stream) => stream.size)).toEqual(streams.map(() => 256 * KIB));
    expect(session.grownBytes).toBe(0);
    expect(session.openBytes).toBe(8 * 256 * KIB);
  });

  it("leaves a paused stream's unread window out of the others' bound, and takes a closed stream's out", () => {
    const { clock, session } = windows();
    const paused = session.stream();
    receive(paused, 256 * KIB); // its whole window arrived, unread
    const reader = session.stream();
    expect(session.openBytes).toBe(256 * KIB);
    measure(clock, reader, 50);
    consume(clock, reader, 12_500, 50);
    consume(clock, reader, 12_500, 50);
    expect(reader.size).toBe(Math.ceil(WINDOW_GAIN * 12_500 * 50 + 128 * KIB));
    paused.release();
    reader.release();
    expect(session.openBytes).toBe(0);
    expect(session.grownBytes).toBe(0);
  });

  it('keeps every window fixed with a budget of 0', () => {
    const { clock, session } = windows({ budget: 0 });
    const stream = session.stream();
    measure(clock, stream, 100);
    consume(clock, stream, 100 * KIB, 300);
    expect(stream.size).toBe(256 * KIB);
  });
});
