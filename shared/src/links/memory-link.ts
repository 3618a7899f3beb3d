import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import { LINK_LOW_WATER, type Link, type LinkEvents } from '../link.js';

/** Two in-memory Links joined back to back, delivering asynchronously like a DataChannel. For unit tests. */
export function memoryLinkPair(): [MemoryLink, MemoryLink] {
  const a = new MemoryLink();
  const b = new MemoryLink();
  a.peer = b;
  b.peer = a;
  return [a, b];
}

export class MemoryLink extends Emitter<LinkEvents> implements Link {
  peer: MemoryLink | undefined;
  private isClosed = false;
  private buffered = 0;
  /** Every message this end sent, for tests that tamper with or replay them. */
  readonly sent: Uint8Array[] = [];
  recordSent = false;

  get closed(): boolean {
    return this.isClosed;
  }

  get bufferedAmount(): number {
    return this.buffered;
  }

  /**
   * Tests: report `bytes` as waiting to go out (messages are still delivered at once). Lowering it to the
   * low-water mark announces a drain, as a DataChannel would.
   */
  simulateBuffered(bytes: number): void {
    const wasAbove = this.buffered > LINK_LOW_WATER;
    this.buffered = bytes;
    if (wasAbove && bytes <= LINK_LOW_WATER) this.emit('drain');
  }

  send(message: Uint8Array): void {
    if (this.isClosed) return;
    const copy = message.slice();
    if (this.recordSent) this.sent.push(copy);
    const peer = this.peer;
    queueMicrotask(() => peer?.deliver(copy));
  }

  /** Deliver a message to this end as if the peer had sent it (tests inject hostile bytes this way). */
  deliver(message: Uint8Array): void {
    if (!this.isClosed) this.emit('message', message);
  }

  close(error?: SessionError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.emit('close', error);
    const peer = this.peer;
    queueMicrotask(() => peer?.close(new SessionError('link-closed', 'the far end closed')));
  }
}
