import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import type { Link, LinkEvents } from './link.js';
import { Backpressure } from './backpressure.js';

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
  private readonly backpressure = new Backpressure(() => {
    if (!this.isClosed) this.emit('drain');
  });
  /** Every message this end sent, for tests that tamper with or replay them. */
  readonly sent: Uint8Array[] = [];
  recordSent = false;

  get closed(): boolean {
    return this.isClosed;
  }

  get bufferedAmount(): number {
    return this.backpressure.note(this.buffered);
  }

  /**
   * Tests: report `bytes` as waiting to go out (messages are still delivered at once). Raising it above the
   * high-water mark and lowering it to the low-water mark announces a drain, as a PeerLink would.
   */
  simulateBuffered(bytes: number): void {
    this.buffered = bytes;
    this.backpressure.note(bytes);
    this.backpressure.check(bytes);
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
