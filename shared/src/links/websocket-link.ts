import { systemClock, type Clock } from '../clock.js';
import { DATA_PORT_MAX_MESSAGE_BYTES, DataPortCloseCode } from '../data-port/protocol.js';
import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import type { Link, LinkEvents } from './link.js';
import { Backpressure } from './backpressure.js';

/** What both the browser's WebSocket and the `ws` package's provide. */
export interface BinaryWebSocketLike {
  binaryType: string;
  readonly bufferedAmount: number;
  readonly readyState: number;
  /** `ws` also calls back once the message is written out (the browser's WebSocket takes no callback). */
  send(data: Uint8Array | string, written?: (error?: Error) => void): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: drops the connection without a close frame. */
  terminate?(): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
  addEventListener(type: 'close', listener: (event: { code: number; reason: string }) => void): void;
  addEventListener(type: 'error', listener: (event: unknown) => void): void;
}

export interface WebSocketLinkOptions {
  /** Larger messages close the link with `malformed-frame`. */
  maxMessageBytes?: number;
  /** The close code when the link closes with an error; the reason is the error's code. */
  errorCloseCode?: number;
  /**
   * Past this many buffered bytes after a send the connection is cut (terminated where the socket can, since a
   * close frame would wait behind the backlog it is about). Absent: no cap.
   */
  maxBufferedBytes?: number;
  /** How often bufferedAmount is read while congested. */
  drainPollMs?: number;
  clock?: Pick<Clock, 'setTimeout' | 'clearTimeout'>;
}

/** Often enough that a drained socket waits at most this long for more; cheap, as it runs only while congested. */
export const DEFAULT_WEBSOCKET_DRAIN_POLL_MS = 5;

const OPEN = 1;

/**
 * A Link over an open WebSocket carrying binary messages (the companion's data port, on both of its ends).
 * Text messages are a protocol violation and close the link. Once the socket is seen above the high-water
 * mark (after a send, or by a reader), a drain is owed: `ws` tells when each message is written, and the
 * Backpressure rule is checked then; the browser's WebSocket has no such event, so its bufferedAmount is
 * polled until the drain, and an uncongested link runs no timer at all.
 */
export class WebSocketLink extends Emitter<LinkEvents> implements Link {
  private isClosed = false;
  private drainTimer: unknown;
  private readonly backpressure = new Backpressure(() => {
    if (!this.isClosed) this.emit('drain');
  });
  private readonly maxMessageBytes: number;
  private readonly errorCloseCode: number;
  private readonly maxBufferedBytes: number;
  private readonly drainPollMs: number;
  private readonly clock: Pick<Clock, 'setTimeout' | 'clearTimeout'>;

  constructor(
    private readonly socket: BinaryWebSocketLike,
    options: WebSocketLinkOptions = {},
  ) {
    super();
    this.maxMessageBytes = options.maxMessageBytes ?? DATA_PORT_MAX_MESSAGE_BYTES;
    this.errorCloseCode = options.errorCloseCode ?? DataPortCloseCode.extensionError;
    this.maxBufferedBytes = options.maxBufferedBytes ?? Infinity;
    this.drainPollMs = options.drainPollMs ?? DEFAULT_WEBSOCKET_DRAIN_POLL_MS;
    this.clock = options.clock ?? systemClock;
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
    const buffered = this.backpressure.note(this.socket.bufferedAmount);
    if (this.backpressure.congested) this.pollForDrain();
    return buffered;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(message: Uint8Array): void {
    if (this.isClosed || this.socket.readyState !== OPEN) return;
    if (this.tellsWhenWritten) this.socket.send(message, this.onWritten);
    else this.socket.send(message);
    const buffered = this.socket.bufferedAmount;
    if (buffered > this.maxBufferedBytes) {
      if (this.socket.terminate) this.socket.terminate();
      else this.socket.close(this.errorCloseCode, 'limit');
      this.finish(new SessionError('limit', `the peer stopped reading (${buffered} bytes buffered)`));
      return;
    }
    this.backpressure.note(buffered);
    if (this.backpressure.congested) this.pollForDrain();
  }

  /** `ws` (Node, the companion's end) says when each message is written: the drain needs no polling there. */
  private get tellsWhenWritten(): boolean {
    return this.socket.terminate !== undefined;
  }

  private readonly onWritten = (): void => {
    if (!this.isClosed) this.backpressure.check(this.socket.bufferedAmount);
  };

  /** Closes with code 1000, or with `errorCloseCode` and the error's code as the reason. */
  close(error?: SessionError): void {
    this.closeWith(error ? this.errorCloseCode : DataPortCloseCode.normal, error?.code ?? 'closed', error);
  }

  /** Closes with a code of the protocol above (the data port's `replaced`, `goingAway`). */
  closeWith(code: number, reason: string, error?: SessionError): void {
    if (this.isClosed) return;
    // A close reason is at most 123 bytes; ours are short ASCII, cut in case one is not.
    this.socket.close(code, reason.slice(0, 120));
    this.finish(error);
  }

  /** The browser's WebSocket has no event for a falling buffer: read it while a drain is owed. */
  private pollForDrain(): void {
    if (this.drainTimer !== undefined || this.tellsWhenWritten) return;
    this.drainTimer = this.clock.setTimeout(() => {
      this.drainTimer = undefined;
      if (this.isClosed) return;
      if (!this.backpressure.check(this.socket.bufferedAmount)) this.pollForDrain();
    }, this.drainPollMs);
  }

  private finish(error?: SessionError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (this.drainTimer !== undefined) this.clock.clearTimeout(this.drainTimer);
    this.drainTimer = undefined;
    this.emit('close', error);
    this.removeAllListeners();
  }
}

export function websocketLink(socket: BinaryWebSocketLike, options?: WebSocketLinkOptions): WebSocketLink {
  return new WebSocketLink(socket, options);
}
