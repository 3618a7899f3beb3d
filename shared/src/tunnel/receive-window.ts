import type { Clock } from '../clock.js';

/**
 * Receive windows that follow the path (PROTOCOL.md §4, flow control): one stream can carry at most its window
 * per credit round trip, so a fixed 256 KiB window caps it at 5 MB/s over 50 ms and 1.7 MB/s over 150 ms. Each
 * stream's window grows to GAIN × (the rate its reader consumed in the last round trip) × (the shortest credit
 * round trip seen on the session), within a per-session budget. Growth needs a reader that keeps up: a paused
 * or slow reader consumes little, so its window stays where it was and it holds back only itself.
 *
 * The window must not outgrow the path either: what is in flight beyond the bandwidth-delay product waits in
 * the bottleneck's queue, and when that overflows, libwebrtc's SCTP stalls for tens of seconds
 * (bench/wan/README.md). So GAIN is 1.3, not TCP's 2, and the window is GAIN × rate × round trip plus the
 * credit held back here until a WINDOW is due (without it, a 256 KiB window with 128 KiB held back had only
 * ~0.6 of itself in flight, measured, and never grew). While the window is the limit, the rate is about what is
 * in flight ÷ round trip and the window grows by about a third each round trip; once the path is the limit
 * the rate stops rising and the window settles near 1.5 × the BDP. And a window grows only while no queue
 * stands on the path: while the least of the latest four credit round trips is within a quarter of the
 * shortest (`queueFree`) — 12 ms of queue at 50 ms, 37 ms at 150 ms, against the 50 and 100 ms queues of
 * bench:wan.
 *
 * Streams share the path, so the session bounds them together too: all its windows' open parts (what is not
 * filled by data their readers have yet to read) may add up to no more than one stream alone would get at the
 * session's consumption rate. Without it, each of eight streams grew to GAIN × its eighth of the rate + its own
 * held-back credit: the credit alone is 8 × 128 KiB, and eight streams queued up to 186 ms on the simulated
 * 150 ms path of mux-path.test.ts, against the 100 ms bench:wan's bottleneck holds there (69 ms with the bound).
 * A paused stream's window is filled by its unread data, so it takes nothing from the others.
 *
 * The round trip is measured by the receiver itself, with no wire change (as Linux's receive-side estimate):
 * from sending a WINDOW to the first byte that needed it. No byte beyond the old edge can come sooner, so a
 * sample is never below the path's round trip; it is above it by what waited ahead of that byte (the
 * sender's queues, the bottleneck's). The session keeps the minimum as the path's round trip.
 */
export const WINDOW_GAIN = 1.3;
/** Growth stops while the recent credit round trips exceed the shortest by more than this share: a queue. */
export const QUEUE_TOLERANCE = 0.25;
/** How many of the latest credit round trips `queueFree` looks at. */
const RECENT_ROUND_TRIPS = 4;
/** The largest window one stream grows to: the session window bounds what is in transit anyway. */
export const DEFAULT_MAX_STREAM_WINDOW = 4 * 1024 * 1024;
/** Bytes all streams of a session together may grow beyond their initial windows (memory a reader may hold). */
export const DEFAULT_RECEIVE_BUDGET = 8 * 1024 * 1024;
/**
 * Shortest stretch a consumption rate is measured over: on a short path (loopback, a LAN) a round trip is below
 * a turn of the event loop, and one turn's burst would read as an absurd rate.
 */
const MIN_EPOCH_MS = 10;

/** A reader's consumption, measured over stretches of at least one round trip (and MIN_EPOCH_MS). */
class ConsumptionEpoch {
  private start: number | undefined;
  private bytes = 0;

  /** `bytes` consumed at `now`: the stretch's bytes and length once it has lasted a round trip. */
  note(
    bytes: number,
    now: number,
    roundTripMs: number | undefined,
  ): { bytes: number; elapsedMs: number } | undefined {
    // The rate is over what came after the stretch's first read: bytes in (start, now] over now − start.
    if (this.start === undefined) {
      this.start = now;
      return undefined;
    }
    this.bytes += bytes;
    if (roundTripMs === undefined) return undefined;
    const elapsedMs = now - this.start;
    if (elapsedMs < Math.max(roundTripMs, MIN_EPOCH_MS)) return undefined;
    const stretch = { bytes: this.bytes, elapsedMs };
    this.start = now;
    this.bytes = 0;
    return stretch;
  }
}

export interface ReceiveWindowOptions {
  clock: Pick<Clock, 'now'>;
  /** Every stream's window at its start (the wire's initial window). */
  initialWindow: number;
  /** See DEFAULT_MAX_STREAM_WINDOW. */
  maxStreamWindow?: number;
  /** See DEFAULT_RECEIVE_BUDGET; 0 keeps every window at its initial size. */
  budget?: number;
}

/** A session's side: the shortest credit round trip seen, and the budget its streams' windows grow into. */
export class ReceiveWindows {
  private minRoundTripMs: number | undefined;
  /** The latest few round trips: their minimum is the path's round trip now (see `queueFree`). */
  private readonly recentRoundTripsMs: number[] = [];
  private grown = 0;
  /** Bytes of the live streams' windows not filled by unread data: what may be in flight or held back. */
  private open = 0;
  /** The session's consumption: the current stretch, and the rate over the last whole one (bytes per ms). */
  private readonly consumption = new ConsumptionEpoch();
  private consumptionRate = 0;
  readonly clock: Pick<Clock, 'now'>;
  readonly initialWindow: number;
  readonly maxStreamWindow: number;
  readonly budget: number;

  constructor(options: ReceiveWindowOptions) {
    this.clock = options.clock;
    this.initialWindow = options.initialWindow;
    this.maxStreamWindow = Math.max(
      options.initialWindow,
      options.maxStreamWindow ?? DEFAULT_MAX_STREAM_WINDOW,
    );
    this.budget = Math.max(0, options.budget ?? DEFAULT_RECEIVE_BUDGET);
  }

  /** The shortest credit round trip seen on the session (ms), once one was measured. */
  get roundTripMs(): number | undefined {
    return this.minRoundTripMs;
  }

  /** The latest credit round trip measured (ms). */
  get latestRoundTripMs(): number | undefined {
    return this.recentRoundTripsMs.at(-1);
  }

  /** Bytes of the budget the live streams hold. */
  get grownBytes(): number {
    return this.grown;
  }

  /**
   * True while no queue of ours stands on the path: the least of the latest round trips is within
   * QUEUE_TOLERANCE of the shortest. The least, not the latest: single samples come late now and then (measured
   * on the two-hop path: a credit round trip of 150 ms took up to 470 ms while no queue held anything, as SCTP
   * waited for a delayed acknowledgement), while a standing queue delays every one of them.
   */
  get queueFree(): boolean {
    const min = this.minRoundTripMs;
    return min !== undefined && Math.min(...this.recentRoundTripsMs) <= min * (1 + QUEUE_TOLERANCE);
  }

  noteRoundTrip(ms: number): void {
    if (!(ms >= 0)) return;
    this.recentRoundTripsMs.push(ms);
    if (this.recentRoundTripsMs.length > RECENT_ROUND_TRIPS) this.recentRoundTripsMs.shift();
    this.minRoundTripMs = this.minRoundTripMs === undefined ? ms : Math.min(this.minRoundTripMs, ms);
  }

  /** Bytes of the live streams' windows not filled by unread data, together. */
  get openBytes(): number {
    return this.open;
  }

  /** One stream's window, starting at the initial size. */
  stream(): StreamReceiveWindow {
    this.open += this.initialWindow;
    return new StreamReceiveWindow(this);
  }

  /**
   * How far a stream may grow its window with the whole session in view: to GAIN × the session's consumption
   * rate × the shortest round trip + `heldBack` (the growing stream's own held-back credit), less what every
   * stream's windows already hold open.
   */
  headroom(heldBack: number): number {
    const roundTrip = this.minRoundTripMs;
    if (roundTrip === undefined) return 0;
    return Math.max(0, WINDOW_GAIN * this.consumptionRate * roundTrip + heldBack - this.open);
  }

  /** @internal A reader consumed `bytes`: they are open again, and count toward the session's rate. */
  noteConsumed(bytes: number): void {
    this.open += bytes;
    const stretch = this.consumption.note(bytes, this.clock.now(), this.minRoundTripMs);
    if (stretch) this.consumptionRate = stretch.bytes / stretch.elapsedMs;
  }

  /** @internal `bytes` of the open windows are gone: filled by data arriving, or left with a closed stream. */
  noteFilled(bytes: number): void {
    this.open -= bytes;
  }

  /** @internal Takes up to `bytes` of the budget; returns what it got. */
  reserve(bytes: number): number {
    const granted = Math.max(0, Math.min(bytes, this.budget - this.grown));
    this.grown += granted;
    this.open += granted;
    return granted;
  }

  /** @internal */
  release(bytes: number): void {
    this.grown = Math.max(0, this.grown - bytes);
  }
}

/**
 * One stream's receive window. The stream tells it what arrives (`received`), what its reader consumes
 * (`consumed`) and when it sends a WINDOW (`granted`); it says how large the window is now and when credit
 * is due.
 */
export class StreamReceiveWindow {
  private window: number;
  /** Window growth not yet handed to the peer: added to the next WINDOW's increment. */
  private ungranted = 0;
  private readonly consumption = new ConsumptionEpoch();
  /** The WINDOW whose effect is being timed: the edge before it, and when it was sent. */
  private probe: { edge: number; at: number } | undefined;
  /** DATA bytes received and consumed so far: their difference is what fills the window, unread. */
  private receivedTotal = 0;
  private consumedTotal = 0;
  private released = false;

  constructor(private readonly session: ReceiveWindows) {
    this.window = session.initialWindow;
  }

  /** Bytes the peer may have sent and we not yet consumed, at most. */
  get size(): number {
    return this.window;
  }

  /**
   * Consumed bytes that make a WINDOW due: half the initial window, as the wire has always done, or an eighth
   * of a grown one (credit held back here is missing from what is in flight; a WINDOW is one small message per
   * eighth of a window).
   */
  get updateThreshold(): number {
    return Math.max(this.session.initialWindow / 2, this.window / 8);
  }

  /** DATA arrived; `total` is every DATA byte of the stream so far. */
  received(total: number): void {
    if (this.released) return;
    this.session.noteFilled(total - this.receivedTotal);
    this.receivedTotal = total;
    const probe = this.probe;
    if (probe && total > probe.edge) {
      this.probe = undefined;
      this.session.noteRoundTrip(this.session.clock.now() - probe.at);
    }
  }

  /** The reader consumed `bytes`: measure its rate over one round trip, and grow the window if it kept up. */
  consumed(bytes: number): void {
    if (this.released) return;
    this.consumedTotal += bytes;
    this.session.noteConsumed(bytes);
    const roundTrip = this.session.roundTripMs;
    const stretch = this.consumption.note(bytes, this.session.clock.now(), roundTrip);
    if (!stretch || roundTrip === undefined) return;
    // The window must hold what is in flight over a round trip and the credit held back here until a WINDOW
    // is due (measured: with 128 KiB held back, one stream had only ~0.6 of a 256 KiB window in flight).
    const target = Math.min(
      (WINDOW_GAIN * stretch.bytes * roundTrip) / stretch.elapsedMs + this.updateThreshold,
      this.window + this.session.headroom(this.updateThreshold),
      this.session.maxStreamWindow,
    );
    if (target <= this.window || !this.session.queueFree) return;
    const growth = this.session.reserve(Math.ceil(target - this.window));
    this.window += growth;
    this.ungranted += growth;
  }

  /**
   * A WINDOW goes out now for the `consumed` bytes; `edge` is the highest stream offset the peer could send up
   * to before it. Returns the increment to send: the consumed bytes plus any growth since the last one.
   */
  grant(consumed: number, edge: number): number {
    const increment = consumed + this.ungranted;
    this.ungranted = 0;
    this.probe ??= { edge, at: this.session.clock.now() };
    return increment;
  }

  /** The stream ended: its growth goes back to the session's budget. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.session.release(this.window - this.session.initialWindow);
    this.session.noteFilled(this.window - (this.receivedTotal - this.consumedTotal));
  }
}
