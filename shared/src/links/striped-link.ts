import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import { systemClock, type Clock } from '../clock.js';
import { LINK_HIGH_WATER, type Link, type LinkEvents } from './link.js';
import { Backpressure } from './backpressure.js';
import { Pacer } from './pacer.js';
import { DEFAULT_LINK_GOODBYE_WAIT_MS } from './link-goodbye.js';
import { DEFAULT_LINK_KEEPALIVE_MS, LinkKeepalive } from './link-keepalive.js';
import { LaneCopies, resendTarget, STALL_CHECK_MS, type LaneProgress } from './lane-resends.js';
import { MAX_REORDER_BYTES, ReorderBuffer, SEQUENCE_SPACE } from './reorder-buffer.js';

/** Bytes of the sequence number in front of every message on a striped link. */
export const STRIPE_HEADER = 4;

/** Far more than the handful a peer sends before an engine listens; see PeerLink's `unheard`. */
const MAX_UNHEARD_MESSAGES = 256;

/**
 * A receipt (agreed lanes only) is a message of exactly the header's size: what this end has received on that
 * lane so far, in bytes of framed messages, mod 2³². At most one per lane per RECEIPT_INTERVAL_MS, so the
 * sender's view of a lane is at most this much staler than the path, and a fast link costs ≤ 200 a second a
 * lane whatever its rate.
 */
export const RECEIPT_INTERVAL_MS = 5;

/**
 * While the lane last used has less than this unreceipted, the next message goes there too: light traffic (a
 * page's requests and their answers) stays on one lane whose congestion window is warm and never waits for
 * order behind another lane; bulk spreads over all.
 */
export const STICKY_LANE_BYTES = 64 * 1024;

/**
 * With receipts, a lane whose shortest round trip (a message's send to the receipt that covers it) is at least
 * this long is nudged after each large message (Link's `nudge`): on a long path the nudges let SCTP send a
 * burst at once; on a short one they only cost, since acknowledgements come back at once anyway. A receipt
 * follows data by up to RECEIPT_INTERVAL_MS, so the shortest sample on a local link stays below this.
 */
export const NUDGE_MIN_ROUND_TRIP_MS = 10;

export interface StripedLinkOptions {
  /**
   * Both ends agreed to receipts (lane-signals.ts): each end tells the other, per lane, what arrived, so a sender
   * sees what each lane really has in flight — `bufferedAmount` does not count what SCTP has taken but not yet
   * delivered (bench:wan measured up to ~1 MB there) — and puts each message on the lane with the least.
   */
  receipts?: boolean;
  /** With receipts: see STICKY_LANE_BYTES. */
  stickyLaneBytes?: number;
  /** With receipts: nudge lanes with long round trips (NUDGE_MIN_ROUND_TRIP_MS); on by default. */
  nudges?: boolean;
  /**
   * With receipts, both ends agreed to resends (lane-signals.ts): a sender puts what a stalled lane carries on
   * another lane too (lane-resends.ts), and a receiver drops the copy that comes second instead of taking it
   * for a peer's violation.
   */
  resends?: boolean;
  /**
   * With receipts: on a link whose lanes all have long round trips (NUDGE_MIN_ROUND_TRIP_MS), messages go out no
   * faster than twice what the far end receipted over a round trip (pacer.ts); on by default. A sender only
   * sees them wait in `bufferedAmount`.
   */
  pacing?: boolean;
  /** How long the link waits for its other lanes once one has ended (see `onLaneEnded`). */
  laneEndWaitMs?: number;
  /**
   * How many lanes the link is to have, counting those still coming up (`laneGaveUp` takes back one that never
   * does): an ending link waits for those too, since the far end may already have sent on them.
   */
  lanes?: number;
  /**
   * Ends the link once no lane has heard anything from the far end for this long (its lanes call `heard`, and
   * carry the keepalives themselves); 0, the default, leaves silence to each lane. See
   * DEFAULT_LANE_SILENCE_LIMIT_MS for why a link over lanes judges it as a whole.
   */
  silenceLimitMs?: number;
  clock?: Clock;
}

/** One lane and what each end knows of it. */
interface Lane extends LaneProgress {
  readonly link: Link;
  /** Framed bytes sent on it, and of those, what the far end's latest receipt says arrived (receipts only). */
  sent: number;
  receipted: number;
  /** Framed bytes received on it, and when this end last sent a receipt for them, or one is due. */
  received: number;
  receiptSentAt: number;
  receiptDue: unknown;
  ended: boolean;
  /** With receipts: the one message timed at a time (the lane's `sent` once it is out, and when). */
  timed: { sentMark: number; at: number } | undefined;
  /** With receipts: the shortest round trip timed on it, ms; undefined until one is. */
  shortestRoundTripMs: number | undefined;
  /** With resends (LaneProgress). */
  progressAt: number;
  suspended: boolean;
}

/**
 * One link carried over several lanes (each a Link of its own: in practice a WebRTC PeerConnection, each with
 * its own SCTP association). Why: one association cannot fill a long path — its congestion control recovers
 * from a loss a packet per round trip, and bench:wan measured four associations carrying ~4 × what one does at
 * RTT 50 and 150 ms. A link must still deliver in order (the sessions' nonces are implicit), so each message
 * goes out on one lane with a 32-bit sequence number in front, and the receiver puts them back in order.
 *
 * Where both ends agreed to receipts, each tells the other what arrived on each lane, and a sender keeps light
 * traffic on one lane and spreads the rest by what each lane has in flight, so a lane slowed by a loss gets less
 * while it recovers. Without them (a peer from before receipts) it can only go by each lane's send buffer, which
 * in libwebrtc does not count what SCTP has taken, so it takes idle lanes in turn. Lanes may join after the link
 * is up (the first one carries the first messages); once a lane ends the link sends nothing more and closes
 * when the others have ended too (or after a wait), since a lane cannot carry on what another one lost.
 */
export class StripedLink extends Emitter<LinkEvents> implements Link {
  private readonly lanes: Lane[] = [];
  /** Whether both ends agreed to receipts (StripedLinkOptions). */
  readonly receipts: boolean;
  private readonly clock: Clock;
  private readonly stickyLaneBytes: number;
  private readonly nudges: boolean;
  /** Whether both ends agreed to resends (StripedLinkOptions); only with receipts. */
  readonly resends: boolean;
  private stallCheck: unknown;
  /** With receipts and pacing: the pacer, what waits for it (framed, in order) and when it is next due. */
  private readonly pacer: Pacer | undefined;
  private readonly paced: Uint8Array[] = [];
  private pacedBytes = 0;
  private pacedDue: unknown;
  /** Framed bytes the far end has receipted, over all lanes (the pacer's measure of delivery). */
  private receiptedTotal = 0;
  private readonly laneEndWaitMs: number;
  private expectedLanes: number;
  private isClosed = false;
  /** Set once a lane has ended: why the link will close, and when it closes at the latest. */
  private ending: { error: SessionError; timer: unknown } | undefined;
  private nextToSend = 0;
  private readonly reorder = new ReorderBuffer();
  private lastLane = 0;
  private resent = 0;
  private readonly silence: LinkKeepalive;
  private readonly unheard: Uint8Array[] = [];
  private readonly backpressure = new Backpressure(() => {
    if (!this.isClosed) this.emit('drain');
  });

  constructor(firstLane: Link, options: StripedLinkOptions = {}) {
    super();
    this.receipts = options.receipts ?? false;
    this.nudges = options.nudges ?? true;
    this.resends = this.receipts && (options.resends ?? false);
    this.pacer =
      this.receipts && (options.pacing ?? true)
        ? new Pacer({ clock: options.clock ?? systemClock })
        : undefined;
    this.clock = options.clock ?? systemClock;
    this.stickyLaneBytes = options.stickyLaneBytes ?? STICKY_LANE_BYTES;
    this.laneEndWaitMs = options.laneEndWaitMs ?? DEFAULT_LINK_GOODBYE_WAIT_MS;
    this.expectedLanes = options.lanes ?? 1;
    const silenceLimitMs = options.silenceLimitMs ?? 0;
    this.silence = new LinkKeepalive({
      intervalMs: silenceLimitMs > 0 ? DEFAULT_LINK_KEEPALIVE_MS : 0,
      silenceLimitMs,
      clock: this.clock,
      // The lanes keep the far end hearing from us; this one only listens.
      send: () => {},
      silent: (ms) =>
        this.close(
          new SessionError('link-closed', `nothing heard from the far end on any lane for ${ms} ms`),
        ),
    });
    this.addLane(firstLane);
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  /** Bytes arrived early and held until the message before them comes (bench:wan --trace). */
  get heldBytes(): number {
    return this.reorder.heldBytes;
  }

  /** With receipts: each lane's shortest round trip so far (ms; undefined until timed), for traces and tests. */
  get lanesRoundTripMs(): (number | undefined)[] {
    return this.lanes.map((lane) => lane.shortestRoundTripMs);
  }

  /** With pacing: bytes waiting for the pacer (bench:wan --trace). */
  get pacedBytesWaiting(): number {
    return this.pacedBytes;
  }

  /** With resends: messages sent again on another lane, since the link began (bench:wan --trace). */
  get resentMessages(): number {
    return this.resent;
  }

  /** With receipts: bytes sent on each lane that its far end has not yet receipted (bench:wan --trace). */
  get lanesInFlight(): number[] {
    return this.lanes.map((lane) => lane.sent - lane.receipted);
  }

  /** Another lane, already connected, from the same far end. */
  addLane(lane: Link): void {
    if (this.isClosed) {
      lane.close();
      return;
    }
    const state: Lane = {
      link: lane,
      sent: 0,
      receipted: 0,
      received: 0,
      receiptSentAt: -Infinity,
      receiptDue: undefined,
      ended: false,
      timed: undefined,
      shortestRoundTripMs: undefined,
      progressAt: this.clock.now(),
      copies: new LaneCopies(),
      suspended: false,
    };
    this.lanes.push(state);
    lane.on('message', (message) => this.onLaneMessage(state, message));
    lane.on('drain', () => this.checkDrain());
    lane.on('close', (error) => this.onLaneEnded(state, error));
  }

  /** A lane heard something from the far end (a keepalive too): the link is not silent. */
  heard(): void {
    this.silence.heard();
  }

  /** A lane counted in `lanes` that will not come up. */
  laneGaveUp(): void {
    this.expectedLanes -= 1;
    if (this.ending && this.allLanesEnded()) this.close(this.ending.error);
  }

  override on<K extends keyof LinkEvents>(event: K, listener: (...args: LinkEvents[K]) => void): this {
    super.on(event, listener);
    if (event === 'message') {
      for (const message of this.unheard.splice(0)) if (!this.isClosed) this.emit('message', message);
    }
    return this;
  }

  /**
   * What the emptiest lane holds: a sender may go on while any lane has room (its messages go there), and is
   * owed a drain, through that lane's own, once every lane was above the mark.
   */
  get bufferedAmount(): number {
    if (this.isClosed) return 0;
    return this.backpressure.note(this.buffered());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(message: Uint8Array): void {
    // A link with an ended lane is closing: what it sent now could be lost with that lane, leaving a gap.
    if (this.isClosed || this.ending) return;
    const framed = new Uint8Array(STRIPE_HEADER + message.length);
    writeHeader(framed, this.nextToSend);
    framed.set(message, STRIPE_HEADER);
    this.nextToSend = (this.nextToSend + 1) % SEQUENCE_SPACE;
    if (this.paced.length > 0 || this.paceWait(framed.length) > 0) {
      this.paced.push(framed);
      this.pacedBytes += framed.length;
      this.releasePaced();
    } else {
      this.pacer?.take(framed.length);
      this.put(this.receipts ? this.leastInFlight() : this.pickLane(), framed);
    }
    if (!this.backpressure.congested) this.backpressure.note(this.buffered());
  }

  /** Milliseconds a message of `bytes` must wait for the pacer: 0 where the link is not paced (see `pacing`). */
  private paceWait(bytes: number): number {
    const long = (lane: Lane) => (lane.shortestRoundTripMs ?? 0) >= NUDGE_MIN_ROUND_TRIP_MS;
    return this.pacer && this.lanes.every(long) ? this.pacer.waitFor(bytes) : 0;
  }

  /** Sends what waits for the pacer as far as it allows, and sets a timer for the rest. */
  private releasePaced(): void {
    if (this.pacedDue !== undefined || this.isClosed) return;
    while (this.paced.length > 0) {
      const framed = this.paced[0]!;
      const wait = this.paceWait(framed.length);
      if (wait > 0) {
        this.pacedDue = this.clock.setTimeout(() => {
          this.pacedDue = undefined;
          if (this.isClosed || this.ending) return;
          this.releasePaced();
          this.checkDrain();
        }, wait);
        return;
      }
      this.paced.shift();
      this.pacedBytes -= framed.length;
      this.pacer?.take(framed.length);
      this.put(this.leastInFlight(), framed);
    }
  }

  /** One framed message out on `lane`: counted, timed, kept for a resend, nudged (each as agreed). */
  private put(lane: Lane, framed: Uint8Array): void {
    if (this.resends) {
      if (lane.sent === lane.receipted) {
        lane.progressAt = this.clock.now();
        lane.copies.restart();
      }
      lane.copies.keep(framed, lane.sent + framed.length, lane.sent - lane.receipted + framed.length);
      this.stallCheck ??= this.clock.setTimeout(() => this.checkStalls(), STALL_CHECK_MS);
    }
    lane.sent += framed.length;
    lane.link.send(framed);
    if (this.receipts) {
      lane.timed ??= { sentMark: lane.sent, at: this.clock.now() };
      const roundTrip = lane.shortestRoundTripMs;
      if (this.nudges && roundTrip !== undefined && roundTrip >= NUDGE_MIN_ROUND_TRIP_MS)
        lane.link.nudge?.(framed);
    }
  }

  /**
   * With resends: what a stalled lane carries goes out again on another lane (resendTarget), in order, and the
   * stalled lane gets nothing new until all it carried is receipted.
   */
  private checkStalls(): void {
    this.stallCheck = undefined;
    if (this.isClosed || this.ending) return;
    const now = this.clock.now();
    for (const lane of this.lanes) {
      const target = resendTarget(lane, this.lanes, now);
      if (!target) continue;
      const copies = lane.copies.takeAll();
      lane.suspended = true;
      this.resent += copies.length;
      for (const framed of copies) this.put(target, framed);
    }
    if (this.lanes.some((lane) => lane.sent !== lane.receipted))
      this.stallCheck ??= this.clock.setTimeout(() => this.checkStalls(), STALL_CHECK_MS);
  }

  close(error?: SessionError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.silence.stop();
    if (this.ending) this.clock.clearTimeout(this.ending.timer);
    if (this.stallCheck !== undefined) this.clock.clearTimeout(this.stallCheck);
    if (this.pacedDue !== undefined) this.clock.clearTimeout(this.pacedDue);
    this.paced.length = 0;
    this.reorder.clear();
    for (const lane of this.lanes) {
      if (lane.receiptDue !== undefined) this.clock.clearTimeout(lane.receiptDue);
      lane.link.close(error);
    }
    this.emit('close', error);
    this.removeAllListeners();
  }

  /**
   * A far end that closes its link ends every lane, each after the last messages it carried (PeerLink's goodbye),
   * so lanes end one by one and the others may still bring messages the link must deliver (often a CLOSE cell),
   * as may a lane still coming up here that the far end already sent on. The link closes once every lane has
   * joined and ended, or `laneEndWaitMs` after the first ended (a lane that failed alone);
   * what it held for a message that never came is lost.
   */
  private onLaneEnded(lane: Lane, error: SessionError | undefined): void {
    if (this.isClosed) return;
    lane.ended = true;
    const why =
      this.ending?.error ??
      new SessionError(
        'link-closed',
        `a lane of the link closed: ${error?.message ?? 'closed by the far end'}`,
      );
    if (this.allLanesEnded()) {
      this.close(why);
      return;
    }
    this.ending ??= { error: why, timer: this.clock.setTimeout(() => this.close(why), this.laneEndWaitMs) };
  }

  /** Every lane has ended, and none is still coming up (one may bring what the far end sent on it first). */
  private allLanesEnded(): boolean {
    return this.lanes.length >= this.expectedLanes && this.lanes.every((lane) => lane.ended);
  }

  /** The lane with the least waiting; among equals, the next after the last one used, so idle lanes share. */
  private pickLane(): Lane {
    const count = this.lanes.length;
    let best = (this.lastLane + 1) % count;
    let bestBuffered = this.lanes[best]!.link.bufferedAmount;
    for (let step = 2; step <= count && bestBuffered > 0; step++) {
      const index = (this.lastLane + step) % count;
      const buffered = this.lanes[index]!.link.bufferedAmount;
      if (buffered < bestBuffered) {
        best = index;
        bestBuffered = buffered;
      }
    }
    this.lastLane = best;
    return this.lanes[best]!;
  }

  /**
   * With receipts: the lane last used while it has little in flight (STICKY_LANE_BYTES), else the one with the
   * least in flight, so a lane that drains slowly (a loss, a smaller congestion window) gets less — among lanes
   * whose send buffer is below the high-water mark. The link's `bufferedAmount` is its emptiest lane's, so a
   * sender goes on while any lane has room: a lane above the mark must get nothing more, or its buffer grows
   * past what the DataChannel holds (which fails the send) while the others drain. With every lane above it,
   * the emptiest, as without receipts (the sender is told to stop then).
   */
  private leastInFlight(): Lane {
    const inFlight = (lane: Lane) => lane.sent - lane.receipted;
    const hasRoom = (lane: Lane) => !lane.suspended && lane.link.bufferedAmount <= LINK_HIGH_WATER;
    const last = this.lanes[this.lastLane]!;
    if (inFlight(last) < this.stickyLaneBytes && hasRoom(last)) return last;
    let best = hasRoom(last) ? this.lastLane : undefined;
    for (let index = 0; index < this.lanes.length; index++) {
      const lane = this.lanes[index]!;
      if (hasRoom(lane) && (best === undefined || inFlight(lane) < inFlight(this.lanes[best]!))) best = index;
    }
    if (best === undefined) return this.pickLane();
    this.lastLane = best;
    return this.lanes[best]!;
  }

  /**
   * Announces a drain owed once the link has room. Lanes announce their own drains, but only those that were
   * themselves above the high-water mark; bytes waiting for the pacer can make the link congested while no lane
   * is, and once the pacer has let them out, no lane owes anyone a drain. So with nothing paced, a link whose
   * emptiest lane is at or below the mark (room, as `linkHasRoom` reads it) announces it at once. Without this, a
   * 20 MB transfer over three lanes on a loaded machine (lane round trips read ≥ 10 ms, so pacing began) waited
   * for that drain forever, with everything sent delivered: lanes-webrtc.test.ts, about one run in ten.
   */
  private checkDrain(): void {
    if (this.isClosed || this.backpressure.check(this.buffered())) return;
    if (this.backpressure.congested && this.pacedBytes === 0 && this.leastBuffered() <= LINK_HIGH_WATER)
      this.backpressure.release();
  }

  /** What the link holds unsent: what waits for the pacer, and what the emptiest lane holds. */
  private buffered(): number {
    return this.pacedBytes + this.leastBuffered();
  }

  private leastBuffered(): number {
    let least = Infinity;
    for (const lane of this.lanes) least = Math.min(least, lane.link.bufferedAmount);
    return least === Infinity ? 0 : least;
  }

  private onLaneMessage(lane: Lane, framed: Uint8Array): void {
    if (this.isClosed) return;
    if (framed.length === STRIPE_HEADER && this.receipts) {
      this.onReceipt(lane, readHeader(framed));
      return;
    }
    if (framed.length <= STRIPE_HEADER) {
      this.close(new SessionError('malformed-frame', 'a message on a striped link without a payload'));
      return;
    }
    this.take(framed);
    // Only now: sending the receipt may find the lane closing and close the link, which must not lose the
    // message that came (a CLOSE cell is often a far end's last word).
    if (this.receipts && !this.isClosed) this.noteReceived(lane, framed.length);
  }

  /** A striped message: delivered, or held until the ones before it came. */
  private take(framed: Uint8Array): void {
    const sequence = readHeader(framed);
    const message = framed.subarray(STRIPE_HEADER);
    switch (this.reorder.arrive(sequence, message)) {
      case 'next':
        this.deliver(message);
        while (!this.isClosed) {
          const held = this.reorder.nextHeld();
          if (held === undefined) return;
          this.deliver(held);
        }
        return;
      case 'held':
        return;
      case 'duplicate':
        // With resends, the far end sends a stalled lane's messages again on another: the copy second in drops.
        if (!this.resends)
          this.close(new SessionError('malformed-frame', `message ${sequence} on a striped link came twice`));
        return;
      case 'over-limit':
        this.close(
          new SessionError(
            'limit',
            `more than ${MAX_REORDER_BYTES} bytes held waiting for one message on a lane`,
          ),
        );
        return;
    }
  }

  /** A receipt may only say more arrived than before, and never more than was sent. */
  private onReceipt(lane: Lane, receipt: number): void {
    const newlyArrived = (receipt - lane.receipted + SEQUENCE_SPACE) % SEQUENCE_SPACE;
    if (newlyArrived > lane.sent - lane.receipted) {
      this.close(new SessionError('malformed-frame', 'a receipt on a striped link for more than was sent'));
      return;
    }
    lane.receipted += newlyArrived;
    if (this.resends && newlyArrived > 0) this.noteProgress(lane);
    const timed = lane.timed;
    if (timed && lane.receipted >= timed.sentMark) {
      const sample = this.clock.now() - timed.at;
      lane.shortestRoundTripMs = Math.min(lane.shortestRoundTripMs ?? sample, sample);
      lane.timed = undefined;
    }
    this.receiptedTotal += newlyArrived;
    if (this.pacer && lane.shortestRoundTripMs !== undefined) {
      let shortest = lane.shortestRoundTripMs;
      for (const other of this.lanes) shortest = Math.min(shortest, other.shortestRoundTripMs ?? Infinity);
      this.pacer.noteDelivered(this.receiptedTotal, shortest);
    }
  }

  /** With resends: the lane's receipts moved; the copies they cover are no longer needed. */
  private noteProgress(lane: Lane): void {
    lane.progressAt = this.clock.now();
    lane.copies.release(lane.receipted);
    if (lane.sent === lane.receipted) {
      lane.suspended = false;
      lane.copies.restart();
    }
  }

  private noteReceived(lane: Lane, bytes: number): void {
    lane.received += bytes;
    if (lane.receiptDue !== undefined) return;
    const wait = lane.receiptSentAt + RECEIPT_INTERVAL_MS - this.clock.now();
    if (wait <= 0) {
      this.sendReceipt(lane);
      return;
    }
    lane.receiptDue = this.clock.setTimeout(() => this.sendReceipt(lane), wait);
  }

  private sendReceipt(lane: Lane): void {
    lane.receiptDue = undefined;
    if (this.isClosed) return;
    lane.receiptSentAt = this.clock.now();
    const receipt = new Uint8Array(STRIPE_HEADER);
    writeHeader(receipt, lane.received % SEQUENCE_SPACE);
    lane.link.send(receipt);
  }

  private deliver(message: Uint8Array): void {
    if (this.listenerCount('message') > 0) this.emit('message', message);
    else if (this.unheard.length < MAX_UNHEARD_MESSAGES) this.unheard.push(message);
    else this.close(new SessionError('link-closed', 'messages arrived with no one listening'));
  }
}

/** The 32-bit big-endian number every striped message starts with: a data message's sequence, or a receipt. */
function readHeader(message: Uint8Array): number {
  return new DataView(message.buffer, message.byteOffset, STRIPE_HEADER).getUint32(0);
}

function writeHeader(message: Uint8Array, value: number): void {
  new DataView(message.buffer, message.byteOffset, STRIPE_HEADER).setUint32(0, value);
}
