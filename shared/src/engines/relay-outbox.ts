import type { Link } from '../links/link.js';
import { linkHasRoom } from '../links/backpressure.js';

export interface RelayOutboxOptions<Owner> {
  /** Bytes one owner (a circuit) may have waiting here; beyond it `onOverflow` is called instead of queueing. */
  maxQueuedPerOwner: number;
  onOverflow(owner: Owner): void;
}

/**
 * What a relay sends on one link. A relay cannot slow down the link it reads from (a DataChannel delivers
 * whatever arrives), and a DataChannel's own buffer is not a place to park data: the browser throws beyond
 * 16 MiB and @roamhq/wrtc silently drops the message. So cells for a link above its high-water mark wait here,
 * in order, until it drains.
 *
 * An honest session never has more than its window in transit (PROTOCOL.md §4), so an owner that queues more
 * than `maxQueuedPerOwner` is broken or hostile: it is reported, and its cell is not queued.
 */
export class RelayOutbox<Owner> {
  private readonly queue: { bytes: Uint8Array; owner: Owner | undefined }[] = [];
  private readonly queuedByOwner = new Map<Owner, number>();

  constructor(
    readonly link: Link,
    private readonly options: RelayOutboxOptions<Owner>,
  ) {
    link.on('drain', () => this.flush());
  }

  /** Bytes waiting here (not yet handed to the link). */
  get queuedBytes(): number {
    let total = 0;
    for (const bytes of this.queuedByOwner.values()) total += bytes;
    return total;
  }

  /** A DATA cell, charged to its circuit while it waits. */
  send(bytes: Uint8Array, owner: Owner): void {
    if (this.link.closed) return;
    if (this.canSendNow()) {
      this.link.send(bytes);
      return;
    }
    const queued = (this.queuedByOwner.get(owner) ?? 0) + bytes.length;
    if (queued > this.options.maxQueuedPerOwner) {
      this.options.onOverflow(owner);
      return;
    }
    this.queuedByOwner.set(owner, queued);
    this.queue.push({ bytes, owner });
  }

  /** An OPEN or CLOSE cell: a few bytes, never refused (a circuit cut off for overflowing still hears why). */
  sendControl(bytes: Uint8Array): void {
    if (this.link.closed) return;
    if (this.canSendNow()) this.link.send(bytes);
    else this.queue.push({ bytes, owner: undefined });
  }

  /** Nothing waits ahead of a new cell and the link has room. */
  private canSendNow(): boolean {
    return this.queue.length === 0 && linkHasRoom(this.link);
  }

  private flush(): void {
    // Reading bufferedAmount above the mark is what makes the link announce its next drain.
    while (this.queue.length > 0 && !this.link.closed && linkHasRoom(this.link)) {
      const { bytes, owner } = this.queue.shift()!;
      if (owner !== undefined) {
        const left = this.queuedByOwner.get(owner)! - bytes.length;
        if (left > 0) this.queuedByOwner.set(owner, left);
        else this.queuedByOwner.delete(owner);
      }
      this.link.send(bytes);
    }
  }
}
