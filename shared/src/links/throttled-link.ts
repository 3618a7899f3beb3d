import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import { LINK_HIGH_WATER, type Link, type LinkEvents } from './link.js';
import { Backpressure } from './backpressure.js';
import type { ByteThrottle } from '../rate-limit.js';

/** Per direction, bytes a throttled link may hold back before it decides the peer is not playing fair. */
const MAX_THROTTLED_BYTES = 16 * 1024 * 1024;

/** A client link whose messages, both ways, pass through the volunteer's bandwidth budget. */
export class ThrottledLink extends Emitter<LinkEvents> implements Link {
  private heldIn = 0;
  private heldOut = 0;
  /**
   * A reader found us above the high-water mark: it is owed a drain once what we hold is low again. Drains at
   * the high-water mark, not the low one: once nothing is held here, only the inner link can announce a later
   * drain, and it does so only if it was itself above the high-water mark.
   */
  private readonly backpressure = new Backpressure(() => this.emit('drain'), {
    high: LINK_HIGH_WATER,
    low: LINK_HIGH_WATER,
  });

  constructor(
    private readonly inner: Link,
    private readonly throttle: ByteThrottle,
  ) {
    super();
    inner.on('message', (bytes) => {
      this.heldIn += bytes.length;
      if (this.heldIn > MAX_THROTTLED_BYTES) {
        inner.close(new SessionError('closed', 'the client ignored flow control'));
        return;
      }
      throttle.take(bytes.length, () => {
        this.heldIn -= bytes.length;
        if (!inner.closed) this.emit('message', bytes);
      });
    });
    inner.on('drain', () => this.maybeDrain());
    inner.on('close', (error) => this.emit('close', error));
  }

  get bufferedAmount(): number {
    return this.backpressure.note(this.inner.bufferedAmount + this.heldOut);
  }

  get closed(): boolean {
    return this.inner.closed;
  }

  send(message: Uint8Array): void {
    this.heldOut += message.length;
    if (this.heldOut > MAX_THROTTLED_BYTES) {
      this.inner.close(new SessionError('closed', 'too much held back for a slow client'));
      return;
    }
    this.throttle.take(message.length, () => {
      this.heldOut -= message.length;
      if (this.inner.closed) return;
      this.inner.send(message);
      this.maybeDrain();
    });
  }

  close(error?: SessionError): void {
    this.inner.close(error);
  }

  private maybeDrain(): void {
    // Reads the inner link only while a drain is owed: this runs after every throttled send.
    if (!this.backpressure.congested || this.inner.closed) return;
    this.backpressure.check(this.inner.bufferedAmount + this.heldOut);
  }
}
