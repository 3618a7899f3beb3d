/** Sequence numbers of a striped link's messages (and its receipts' byte counts) run mod 2³². */
export const SEQUENCE_SPACE = 2 ** 32;
/** A sequence up to half the space behind the next one expected is one already delivered. */
const HALF_SPACE = 2 ** 31;

/**
 * What a receiver holds of messages that arrived ahead of one still on its way. In flight on a link is bounded by
 * the receive windows of the circuits it carries, so an honest far end stays well below; beyond it is a peer
 * that numbers messages to make us hold them.
 */
export const MAX_REORDER_BYTES = 64 * 1024 * 1024;
export const MAX_REORDER_MESSAGES = 8192;

/**
 * What became of an arriving message: `next`, the one expected (deliver it, then what `nextHeld` gives);
 * `held` until the ones before it come; `duplicate`, a sequence already delivered or already held (dropped);
 * `over-limit`, holding it would pass MAX_REORDER_BYTES or MAX_REORDER_MESSAGES (dropped).
 */
export type Arrival = 'next' | 'held' | 'duplicate' | 'over-limit';

/** The receiving end of a striped link (StripedLink): messages numbered by the sender, put back in its order. */
export class ReorderBuffer {
  private readonly held = new Map<number, Uint8Array>();
  private bytes = 0;

  /** `nextToDeliver`: the sequence of the message expected first (a link numbers from 0). */
  constructor(private nextToDeliver = 0) {}

  /** Bytes arrived early and held until the message before them comes. */
  get heldBytes(): number {
    return this.bytes;
  }

  arrive(sequence: number, message: Uint8Array): Arrival {
    const ahead = (sequence - this.nextToDeliver + SEQUENCE_SPACE) % SEQUENCE_SPACE;
    if (ahead === 0) {
      this.nextToDeliver = (this.nextToDeliver + 1) % SEQUENCE_SPACE;
      return 'next';
    }
    if (ahead >= HALF_SPACE || this.held.has(sequence)) return 'duplicate';
    if (this.bytes + message.length > MAX_REORDER_BYTES || this.held.size >= MAX_REORDER_MESSAGES)
      return 'over-limit';
    this.bytes += message.length;
    this.held.set(sequence, message);
    return 'held';
  }

  /** The held message that comes next, if it has arrived; it counts as delivered. */
  nextHeld(): Uint8Array | undefined {
    const message = this.held.get(this.nextToDeliver);
    if (message === undefined) return undefined;
    this.held.delete(this.nextToDeliver);
    this.bytes -= message.length;
    this.nextToDeliver = (this.nextToDeliver + 1) % SEQUENCE_SPACE;
    return message;
  }

  clear(): void {
    this.held.clear();
    this.bytes = 0;
  }
}
