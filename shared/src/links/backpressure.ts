import { LINK_HIGH_WATER, LINK_LOW_WATER, type Link } from './link.js';

export interface WaterMarks {
  /** Above this many buffered bytes, a sender must wait: a drain is owed to whoever saw it. */
  high: number;
  /** The drain owed is announced once the buffer is down to this many bytes. */
  low: number;
}

export const LINK_WATER_MARKS: WaterMarks = { high: LINK_HIGH_WATER, low: LINK_LOW_WATER };

/**
 * The one high/low water-mark rule of every link: whoever finds the send buffer above the high mark (the link
 * after its own send, or a reader asking for `bufferedAmount`) is owed one `drain`, announced the first time the
 * buffer is seen at or below the low mark. Fed readings of the buffered amount; knows nothing of where they come
 * from (a DataChannel, a WebSocket, a throttle's queue), so each link only says when it reads and when to look
 * for the fall.
 */
export class Backpressure {
  private owed = false;

  constructor(
    private readonly onDrain: () => void,
    private readonly marks: WaterMarks = LINK_WATER_MARKS,
  ) {}

  /** A drain is owed: the buffer was seen above the high mark and has not yet been seen down at the low one. */
  get congested(): boolean {
    return this.owed;
  }

  /** A reading of the buffered amount (after a send, or for a reader). Returns it, so a getter can pass it on. */
  note(buffered: number): number {
    if (buffered > this.marks.high) this.owed = true;
    return buffered;
  }

  /**
   * A reading while the buffer empties (an event, a poll, a send that made room): announces the drain owed, once,
   * when the reading is at or below the low mark. True when it did.
   */
  check(buffered: number): boolean {
    if (!this.owed || buffered > this.marks.low) return false;
    return this.release();
  }

  /**
   * Announces the drain owed now, whatever the reading: for a holder that knows its sender has room again
   * although no reading it will get falls to the low mark (StripedLink's pacer). True when one was owed.
   */
  release(): boolean {
    if (!this.owed) return false;
    this.owed = false;
    this.onDrain();
    return true;
  }
}

/**
 * A sender's side of the same rule: the link takes more now. At exactly the high mark there is room, because no
 * drain is owed until the buffer is above it; a sender that stopped there would wait for a drain that never comes.
 */
export function linkHasRoom(link: Pick<Link, 'bufferedAmount'>): boolean {
  return link.bufferedAmount <= LINK_HIGH_WATER;
}
