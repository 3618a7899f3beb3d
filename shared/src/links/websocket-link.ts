import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import { LINK_HIGH_WATER, LINK_LOW_WATER, type Link, type LinkEvents } from '../link.js';

/** What both the browser's WebSocket and the `ws` package's provide. */
export interface BinaryWebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  send(data: Uint8Array | string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

const OPEN = 1;

/**
 * A Link over an open WebSocket carrying binary messages (the companion's data port). Text messages are a
 * protocol violation and close the link. WebSockets have no low-water event, so drain is polled while congested.
 */
export class WebSocketLink extends Emitter<LinkEvents> implements Link {
  private isClosed = false;
  private drainTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly socket: BinaryWebSocketLike,
    private readonly maxMessageBytes = 64 * 1024,
  ) {
    super();
    socket.binaryType = 'arraybuffer';
    socket.addEventListener('message', (event) => {
      const data = event.data;
      if (!(data instanceof ArrayBuffer) || data.byteLength > this.maxMessageBytes) {
        this.close(new SessionError('malformed-frame', 'expected binary messages within the size limit'));
        return;
      }
      if (!this.isClosed) this.emit('message', new Uint8Array(data));
    });
    socket.addEventListener('close', () =>
      this.finish(new SessionError('link-closed', 'the WebSocket closed')),
    );
    socket.addEventListener('error', () =>
      this.finish(new SessionError('link-closed', 'the WebSocket failed')),
    );
  }

  get bufferedAmount(): number {
    return this.socket.bufferedAmount;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(message: Uint8Array): void {
    if (this.isClosed || this.socket.readyState !== OPEN) return;
    this.socket.send(message);
    if (this.socket.bufferedAmount > LINK_HIGH_WATER && !this.drainTimer) {
      this.drainTimer = setInterval(() => {
        if (this.socket.bufferedAmount <= LINK_LOW_WATER) {
          this.stopDrainTimer();
          if (!this.isClosed) this.emit('drain');
        }
      }, 5);
    }
  }

  close(error?: SessionError): void {
    if (this.isClosed) return;
    this.socket.close(error ? 4000 : 1000, error?.code ?? 'closed');
    this.finish(error);
  }

  private stopDrainTimer(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = undefined;
  }

  private finish(error?: SessionError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.stopDrainTimer();
    this.emit('close', error);
    this.removeAllListeners();
  }
}

export function websocketLink(socket: BinaryWebSocketLike): WebSocketLink {
  return new WebSocketLink(socket);
}
