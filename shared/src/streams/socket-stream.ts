/** The parts of a Node `net.Socket` used here; structural so shared/ needs no Node types. */
export interface NodeSocketLike {
  readonly destroyed: boolean;
  readonly writable: boolean;
  write(chunk: Uint8Array): boolean;
  end(): void;
  destroy(): void;
  resetAndDestroy(): void;
  pause(): void;
  resume(): void;
  on(event: 'data', listener: (chunk: Uint8Array) => void): unknown;
  on(event: 'end' | 'drain' | 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error & { code?: string }) => void): unknown;
}

import { Emitter } from '../emitter.js';
import { StreamError, type UnderpassError } from '../errors.js';
import type { ByteStream, ByteStreamEvents } from './byte-stream.js';

/**
 * A Node TCP socket seen as a ByteStream, backpressure included: `write` returns what `socket.write` returns,
 * `drain` is the socket's, and `pause`/`resume` stop and restart reading (so TCP flow control reaches the
 * SOCKS client). The socket must have been created with `allowHalfOpen: true`, or a client's half-close
 * would close our write side before the far end has answered.
 *
 * The socket is expected to be paused when handed over; call `resume()` once the stream is piped.
 */
export class NodeSocketStream extends Emitter<ByteStreamEvents> implements ByteStream {
  private isClosed = false;
  private closeError: UnderpassError | undefined;

  constructor(private readonly socket: NodeSocketLike) {
    super();
    socket.on('data', (chunk: Uint8Array) => this.emit('data', chunk));
    socket.on('end', () => this.emit('end'));
    socket.on('drain', () => this.emit('drain'));
    socket.on('error', (error: Error & { code?: string }) => {
      // A local client that vanishes mid-stream: the far side gets a typed reset, nothing is thrown.
      this.closeError ??= new StreamError('reset', error.code ?? error.message);
    });
    socket.on('close', () => this.finish());
    if (socket.destroyed) queueMicrotask(() => this.finish());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  write(chunk: Uint8Array): boolean {
    if (this.isClosed || !this.socket.writable) return false;
    return this.socket.write(chunk);
  }

  end(): void {
    if (this.isClosed) return;
    this.socket.end();
  }

  destroy(error?: UnderpassError): void {
    if (this.isClosed) return;
    this.closeError ??= error;
    // An abort answers with RST, so the client sees a reset rather than a clean end of a truncated reply.
    if (error) this.socket.resetAndDestroy();
    else this.socket.destroy();
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    if (!this.isClosed) this.socket.resume();
  }

  private finish(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.emit('close', this.closeError);
  }
}
