import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import type { Link, LinkEvents } from './link.js';
import { Backpressure } from './backpressure.js';

/** Bytes of the sequence number in front of every message on a striped link. */
export const STRIPE_HEADER = 4;

/**
 * What a receiver holds of messages that arrived ahead of one still on its way. In flight on a link is bounded by
 * the receive windows of the circuits it carries, so an honest far end stays well below; beyond it is a peer
 * that numbers messages to make us hold them.
 */
export const MAX_REORDER_BYTES = 64 * 1024 * 1024;
export const MAX_REORDER_MESSAGES = 8192;

const SEQUENCE_SPACE = 2 ** 32;
const HALF_SPACE = 2 ** 31;

/** Far more than the handful a peer sends before an engine listens; see PeerLink's `unheard`. */
const MAX_UNHEARD_MESSAGES = 256;

/**
 * One link carried over several lanes (each a Link of its own: in practice a WebRTC PeerConnection, each with
 * its own SCTP association). Why: one association cannot fill a long path — its congestion control recovers
 * from a loss a packet per round trip, and bench:wan measured four associations carrying ~4 × what one does at
 * RTT 50 and 150 ms. A link must still deliver in order (the sessions' nonces are implicit), so each message
 * goes out on one lane with a 32-bit sequence number in front, and the receiver puts them back in order.
 *
 * A sender picks the lane with the least waiting in its send buffer, so a lane slowed by a loss gets less while
 * it recovers. Lanes may join after the link is up (the first one carries the first messages); a lane that
 * closes closes the link, because what it held is lost.
 */
export class StripedLink extends Emitter<LinkEvents> implements Link {
  private readonly lanes: Link[] = [];
  private isClosed = false;
  private nextToSend = 0;
  private nextToDeliver = 0;
  private readonly waiting = new Map<number, Uint8Array>();
  private waitingBytes = 0;
  private lastLane = 0;
  private readonly unheard: Uint8Array[] = [];
  private readonly backpressure = new Backpressure(() => {
    if (!this.isClosed) this.emit('drain');
  });

  constructor(firstLane: Link) {
    super();
    this.addLane(firstLane);
  }

  get laneCount(): number {
    return this.lanes.length;
  }

  /** Bytes arrived early and held until the message before them comes (bench:wan --trace). */
  get heldBytes(): number {
    return this.waitingBytes;
  }

  /** Another lane, already connected, from the same far end. */
  addLane(lane: Link): void {
    if (this.isClosed) {
      lane.close();
      return;
    }
    this.lanes.push(lane);
    lane.on('message', (message) => this.onLaneMessage(message));
    lane.on('drain', () => {
      if (!this.isClosed) this.backpressure.check(this.leastBuffered());
    });
    lane.on('close', (error) =>
      this.close(
        new SessionError(
          'link-closed',
          `a lane of the link closed: ${error?.message ?? 'closed by the far end'}`,
        ),
      ),
    );
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
    return this.backpressure.note(this.leastBuffered());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(message: Uint8Array): void {
    if (this.isClosed) return;
    const framed = new Uint8Array(STRIPE_HEADER + message.length);
    new DataView(framed.buffer).setUint32(0, this.nextToSend);
    framed.set(message, STRIPE_HEADER);
    this.nextToSend = (this.nextToSend + 1) % SEQUENCE_SPACE;
    this.pickLane().send(framed);
    if (!this.backpressure.congested) this.backpressure.note(this.leastBuffered());
  }

  close(error?: SessionError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.waiting.clear();
    for (const lane of this.lanes) lane.close(error);
    this.emit('close', error);
    this.removeAllListeners();
  }

  /** The lane with the least waiting; among equals, the next after the last one used, so idle lanes share. */
  private pickLane(): Link {
    const count = this.lanes.length;
    let best = (this.lastLane + 1) % count;
    let bestBuffered = this.lanes[best]!.bufferedAmount;
    for (let step = 2; step <= count && bestBuffered > 0; step++) {
      const index = (this.lastLane + step) % count;
      const buffered = this.lanes[index]!.bufferedAmount;
      if (buffered < bestBuffered) {
        best = index;
        bestBuffered = buffered;
      }
    }
    this.lastLane = best;
    return this.lanes[best]!;
  }

  private leastBuffered(): number {
    let least = Infinity;
    for (const lane of this.lanes) least = Math.min(least, lane.bufferedAmount);
    return least === Infinity ? 0 : least;
  }

  private onLaneMessage(framed: Uint8Array): void {
    if (this.isClosed) return;
    if (framed.length <= STRIPE_HEADER) {
      this.close(new SessionError('malformed-frame', 'a message on a striped link without a payload'));
      return;
    }
    const sequence = new DataView(framed.buffer, framed.byteOffset, STRIPE_HEADER).getUint32(0);
    const message = framed.subarray(STRIPE_HEADER);
    const ahead = (sequence - this.nextToDeliver + SEQUENCE_SPACE) % SEQUENCE_SPACE;
    if (ahead === 0) {
      this.deliver(message);
      this.deliverWaiting();
      return;
    }
    if (ahead >= HALF_SPACE || this.waiting.has(sequence)) {
      this.close(new SessionError('malformed-frame', `message ${sequence} on a striped link came twice`));
      return;
    }
    this.waitingBytes += message.length;
    if (this.waitingBytes > MAX_REORDER_BYTES || this.waiting.size >= MAX_REORDER_MESSAGES) {
      this.close(
        new SessionError(
          'limit',
          `more than ${MAX_REORDER_BYTES} bytes held waiting for one message on a lane`,
        ),
      );
      return;
    }
    this.waiting.set(sequence, message);
  }

  private deliverWaiting(): void {
    for (;;) {
      const message = this.waiting.get(this.nextToDeliver);
      if (message === undefined || this.isClosed) return;
      this.waiting.delete(this.nextToDeliver);
      this.waitingBytes -= message.length;
      this.deliver(message);
    }
  }

  private deliver(message: Uint8Array): void {
    this.nextToDeliver = (this.nextToDeliver + 1) % SEQUENCE_SPACE;
    if (this.listenerCount('message') > 0) this.emit('message', message);
    else if (this.unheard.length < MAX_UNHEARD_MESSAGES) this.unheard.push(message);
    else this.close(new SessionError('link-closed', 'messages arrived with no one listening'));
  }
}
