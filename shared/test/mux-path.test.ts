import { describe, expect, it } from 'vitest';
import { Mux } from '../src/tunnel/mux.js';
import type { MuxStream } from '../src/tunnel/mux-stream.js';
import { DEFAULT_SESSION_WINDOW } from '../src/tunnel/mux.js';
import { decodeMuxFrame, encodeMuxFrame, type MuxFrame } from '../src/tunnel/mux-frames.js';
import type { SessionError } from '../src/errors.js';

/**
 * Two muxes on a simulated path with simulated time: downstream (acceptor → initiator) a bottleneck of `rate`
 * bytes per ms behind an unbounded queue, `rttMs / 2` each way. Records the bytes each stream's reader got per
 * second and the longest any frame waited in the bottleneck's queue.
 */
class SimulatedPath {
  now = 0;
  private readonly events: { at: number; seq: number; run: () => void }[] = [];
  private seq = 0;
  private busyUntil = 0;
  maxQueueMs = 0;
  readonly clock = { now: () => this.now };
  readonly client: Mux;
  readonly exit: Mux;
  error: SessionError | undefined;

  constructor(
    private readonly rate: number,
    private readonly rttMs: number,
    receiveBudget?: number,
  ) {
    const common = { sessionWindow: DEFAULT_SESSION_WINDOW, clock: this.clock, receiveBudget };
    this.client = new Mux({
      ...common,
      role: 'initiator',
      send: (frame) => this.at(this.now + rttMs / 2, () => this.exit.receive(frame)),
    });
    this.exit = new Mux({
      ...common,
      role: 'acceptor',
      send: (frame) => {
        const start = Math.max(this.now, this.busyUntil);
        this.maxQueueMs = Math.max(this.maxQueueMs, start - this.now);
        this.busyUntil = start + frame.length / this.rate;
        this.at(this.busyUntil + rttMs / 2, () => this.client.receive(frame));
      },
    });
    for (const mux of [this.client, this.exit]) mux.on('close', (error) => (this.error ??= error));
  }

  at(at: number, run: () => void): void {
    this.events.push({ at, seq: this.seq++, run });
    this.events.sort((a, b) => a.at - b.at || a.seq - b.seq);
  }

  /** Runs events until `untilMs`; `await` between them lets the streams' microtasks (drain) run. */
  async run(untilMs: number): Promise<void> {
    while (this.events.length > 0 && this.events[0]!.at <= untilMs) {
      const event = this.events.shift()!;
      this.now = event.at;
      event.run();
      await Promise.resolve();
    }
    this.now = untilMs;
  }

  /** Opens a stream whose far end writes without end, and counts what its reader gets per second. */
  async download(options: { paused?: boolean } = {}): Promise<{ stream: MuxStream; perSecond: number[] }> {
    const perSecond: number[] = [];
    this.exit.once('stream', (far) => {
      far.accept();
      const chunk = new Uint8Array(64 * 1024);
      const fill = () => {
        while (!far.closed && far.write(chunk));
      };
      far.on('drain', fill);
      fill();
    });
    let opened: MuxStream | undefined;
    void this.client.open({ kind: 'tcp', host: 'example.test', port: 80 }).then((s) => (opened = s));
    while (!opened) await this.run(this.now + 1);
    const stream = opened;
    stream.on('data', (chunk) => {
      const second = Math.floor(this.now / 1000);
      perSecond[second] = (perSecond[second] ?? 0) + chunk.length;
    });
    if (!options.paused) stream.resume();
    return { stream, perSecond };
  }
}

const MBIT_100 = 12_500; // bytes per ms

describe('receive windows on a simulated path', () => {
  for (const rttMs of [50, 150]) {
    it(`lets one stream fill a 100 Mbit/s path at ${rttMs} ms, with under two thirds of a round trip queued`, async () => {
      const path = new SimulatedPath(MBIT_100, rttMs);
      const { perSecond } = await path.download();
      await path.run(5_000);
      expect(path.error).toBeUndefined();
      expect(perSecond[4]! / 1000).toBeGreaterThan(0.95 * MBIT_100);
      expect(path.maxQueueMs).toBeLessThanOrEqual((2 / 3) * rttMs);
      expect(path.client.receiveWindowState.roundTripMs).toBeGreaterThanOrEqual(rttMs);
      expect(path.client.receiveWindowState.roundTripMs).toBeLessThan(rttMs + 10);
    });
  }

  it('lets eight streams together fill the path at 150 ms, with under two thirds of a round trip queued', async () => {
    // Grown stream by stream, eight windows held 8 × 128 KiB of credit back besides what was in flight: a queue
    // of 186 ms here, against the 100 ms bench:wan's bottleneck holds at this round trip. The session's bound
    // keeps their sum to what one stream would get.
    const path = new SimulatedPath(MBIT_100, 150);
    const downloads = [];
    for (let i = 0; i < 8; i++) downloads.push(await path.download());
    await path.run(4_000);
    expect(path.error).toBeUndefined();
    const third = downloads.reduce((sum, download) => sum + (download.perSecond[3] ?? 0), 0);
    expect(third / 1000).toBeGreaterThan(0.95 * MBIT_100);
    expect(path.maxQueueMs).toBeLessThanOrEqual((2 / 3) * 150);
  });

  it('with fixed windows (a budget of 0) carries one window per round trip, as before', async () => {
    const path = new SimulatedPath(MBIT_100, 150, 0);
    const { perSecond } = await path.download();
    await path.run(3_000);
    expect(perSecond[2]! / 1000).toBeLessThan(0.2 * MBIT_100);
    expect(path.client.receiveWindowState.grownBytes).toBe(0);
  });

  it('holds back only a reader that does not read: its window stays initial, the other stream fills the path', async () => {
    const path = new SimulatedPath(MBIT_100, 50);
    const slow = await path.download({ paused: true });
    const fast = await path.download();
    await path.run(4_000);
    expect(path.error).toBeUndefined();
    expect(slow.perSecond).toEqual([]);
    expect(fast.perSecond[3]! / 1000).toBeGreaterThan(0.95 * MBIT_100);
    const slowQueued: Uint8Array[] = [];
    slow.stream.on('data', (chunk) => slowQueued.push(chunk));
    slow.stream.resume();
    // What it holds unread is its initial window, whatever the other stream's window grew to.
    expect(slowQueued.reduce((sum, chunk) => sum + chunk.length, 0)).toBe(256 * 1024);
  });
});

describe('receive windows against a hostile peer', () => {
  /** An initiator mux with one open, reading stream, fed by hand on a hand-driven clock. */
  async function reading() {
    const clock = { t: 0, now: () => clock.t };
    const sent: MuxFrame[] = [];
    let closed: SessionError | undefined;
    const mux = new Mux({
      role: 'initiator',
      sessionWindow: DEFAULT_SESSION_WINDOW,
      clock,
      send: (bytes) => {
        const decoded = decodeMuxFrame(bytes);
        if (decoded.ok) sent.push(decoded.value);
      },
    });
    mux.on('close', (error) => (closed = error));
    const opened = mux.open({ kind: 'tcp', host: 'example.test', port: 80 });
    const feed = (frame: MuxFrame) => mux.receive(encodeMuxFrame(frame));
    feed({ type: 'open-ok', streamId: 1 });
    const stream = await opened;
    stream.resume();
    const granted = () =>
      sent.reduce((sum, f) => sum + (f.type === 'window' && f.streamId === 1 ? f.increment : 0), 256 * 1024);
    return { clock, sent, feed, stream, mux, granted, closed: () => closed };
  }

  it('ends the session when a peer sends past a grown window, by a single byte', async () => {
    const { clock, feed, granted, closed, mux, stream } = await reading();
    let total = 0;
    const send = (bytes: number) => {
      feed({ type: 'data', streamId: 1, data: new Uint8Array(bytes) });
      total += bytes;
    };
    // A sender that keeps to its credit, 12.5 kB/ms at most, and hears of each WINDOW 50 ms after it was sent.
    const history: number[] = [];
    for (let ms = 0; ms < 3_000; ms++) {
      clock.t = ms;
      history.push(granted());
      const bytes = Math.min(12_500, history[Math.max(0, ms - 50)]! - total);
      if (bytes > 0) send(bytes);
    }
    expect(closed()).toBeUndefined();
    expect(mux.receiveWindowState.grownBytes).toBeGreaterThan(0);
    expect(granted() - total).toBeGreaterThan(256 * 1024); // more credit outstanding than the initial window
    stream.pause(); // no more credit: the peer has what it was granted, and not a byte more
    while (granted() - total > 0) send(Math.min(60_000, granted() - total));
    expect(closed()).toBeUndefined();
    send(1);
    expect(closed()?.code).toBe('window-overrun');
    expect(mux.closed).toBe(true);
  });

  it('sends a peer that never grants no more than the initial window, however long it waits', async () => {
    const path = new SimulatedPath(MBIT_100, 50);
    // The far side never reads: it grants nothing, and a window that is not read does not grow.
    const { stream } = await path.download({ paused: true });
    await path.run(10_000);
    let held = 0;
    stream.on('data', (chunk) => (held += chunk.length));
    stream.resume();
    expect(held).toBe(256 * 1024);
    expect(path.client.receiveWindowState.grownBytes).toBe(0);
  });
});
