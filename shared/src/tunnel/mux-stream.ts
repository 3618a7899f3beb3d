import { Emitter } from '../emitter.js';
import { SessionError, StreamError, type StreamErrorCode } from '../errors.js';
import type { ByteStream, ByteStreamEvents } from '../streams/byte-stream.js';
import { MAX_DATA_PAYLOAD } from './mux-frames.js';
import type { Mux } from './mux.js';
import type { StreamReceiveWindow } from './receive-window.js';

/** A writer that ignores `write() === false` is cut off here rather than growing memory without bound. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

/** 'opening': OPEN sent (initiator) or received and not yet answered (acceptor). */
type StreamPhase = 'opening' | 'open' | 'closed';

/** One multiplexed stream: a ByteStream with the mux's flow control underneath. */
export class MuxStream extends Emitter<ByteStreamEvents> implements ByteStream {
  private phase: StreamPhase;
  private sendWindow: number;
  /** Credit the peer still has: what it may send before our next WINDOW. */
  private recvWindow: number;
  /** DATA bytes received on this stream so far. */
  private receivedTotal = 0;
  private consumedSinceUpdate = 0;
  private readonly sendQueue: Uint8Array[] = [];
  private queuedBytes = 0;
  private readonly recvBuffer: Uint8Array[] = [];
  /** Streams start paused so no data is emitted before a consumer is attached; pipeBoth resumes them. */
  private paused = true;
  private localEndRequested = false;
  private localFinSent = false;
  private remoteEnded = false;
  private remoteEndDelivered = false;
  private needsDrain = false;
  private destroyedByUser = false;
  /** @internal set by Mux.open */
  onOpened: (() => void) | undefined;

  constructor(
    private readonly mux: Mux,
    readonly id: number,
    private readonly windowSize: number,
    private readonly receiveWindow: StreamReceiveWindow,
    /** Initiator: DATA and FIN may go out before the acceptor's OPEN_OK (Mux.openEarly). */
    private readonly earlyData: boolean,
  ) {
    super();
    this.phase = 'opening';
    this.sendWindow = windowSize;
    this.recvWindow = windowSize;
  }

  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** Acceptor: the request is allowed and its target reached. */
  accept(): void {
    if (this.phase !== 'opening') return;
    this.phase = 'open';
    this.mux.sendFrame({ type: 'open-ok', streamId: this.id });
    this.mux.flush();
    this.maybeSendFin();
  }

  /** Acceptor: refuse the request with a typed reason. */
  reject(code: StreamErrorCode): void {
    if (this.phase !== 'opening') return;
    this.mux.sendFrame({ type: 'open-failed', streamId: this.id, code });
    this.terminate(new StreamError(code));
  }

  write(chunk: Uint8Array): boolean {
    if (this.phase === 'closed' || this.localEndRequested) return false;
    if (chunk.length === 0) return this.queuedBytes < this.windowSize;
    if (this.queuedBytes + chunk.length > MAX_QUEUED_BYTES) {
      this.destroy(new StreamError('limit', 'writer ignored backpressure'));
      return false;
    }
    this.sendQueue.push(chunk);
    this.queuedBytes += chunk.length;
    this.mux.flush();
    const ok = this.queuedBytes < this.windowSize;
    if (!ok) this.needsDrain = true;
    return ok;
  }

  end(): void {
    if (this.phase === 'closed' || this.localEndRequested) return;
    this.localEndRequested = true;
    this.maybeSendFin();
  }

  destroy(error?: StreamError | SessionError | Error): void {
    if (this.phase === 'closed') return;
    this.destroyedByUser = true;
    this.reset(error);
  }

  /** True when this side's user destroyed the stream (not the peer, the session or an open that timed out). */
  get cancelled(): boolean {
    return this.destroyedByUser;
  }

  /** @internal Ends the stream and tells the peer, on the mux's behalf (an open that was not answered in time). */
  reset(error?: StreamError | SessionError | Error): void {
    if (this.phase === 'closed') return;
    const code: StreamErrorCode = error instanceof StreamError ? error.code : 'reset';
    this.mux.sendFrame({ type: 'reset', streamId: this.id, code });
    this.terminate(
      error instanceof StreamError ? error : error ? new StreamError(code, error.message) : undefined,
    );
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    while (!this.paused && this.recvBuffer.length > 0 && this.phase !== 'closed') {
      this.deliver(this.recvBuffer.shift()!);
    }
    if (!this.paused) this.maybeDeliverEnd();
  }

  /** Whether DATA and FIN may go out now: once open, or at once for an early stream. */
  private get maySend(): boolean {
    return this.phase === 'open' || (this.phase === 'opening' && this.earlyData);
  }

  /** @internal */
  markOpened(): boolean {
    if (this.phase !== 'opening') return false;
    this.phase = 'open';
    this.onOpened?.();
    this.mux.flush();
    this.maybeSendFin();
    return true;
  }

  /** @internal False when the peer overran the window it was granted. */
  receiveData(data: Uint8Array): boolean {
    if (data.length > this.recvWindow) return false;
    if (this.remoteEnded) return false;
    this.recvWindow -= data.length;
    this.receivedTotal += data.length;
    this.receiveWindow.received(this.receivedTotal);
    if (this.paused || this.recvBuffer.length > 0) this.recvBuffer.push(data);
    else this.deliver(data);
    return true;
  }

  /** @internal False when the window would grow past `max` (a peer trying to make us buffer unboundedly). */
  grantWindow(increment: number, max: number): boolean {
    if (this.sendWindow + increment > max) return false;
    this.sendWindow += increment;
    return true;
  }

  /** @internal */
  receiveFin(): void {
    this.remoteEnded = true;
    if (!this.paused && this.recvBuffer.length === 0) this.maybeDeliverEnd();
  }

  /** @internal Sends at most one DATA frame; true if it sent something. */
  sendSome(): boolean {
    const sessionCredit = this.mux.sessionCredit;
    if (!this.maySend || this.sendWindow <= 0 || this.queuedBytes === 0 || sessionCredit <= 0) return false;
    const size = Math.min(this.queuedBytes, this.sendWindow, sessionCredit, MAX_DATA_PAYLOAD);
    const piece = this.takeQueued(size);
    this.queuedBytes -= size;
    this.sendWindow -= size;
    this.mux.sendFrame({ type: 'data', streamId: this.id, data: piece });
    if (this.needsDrain && this.queuedBytes < this.windowSize / 2) {
      this.needsDrain = false;
      queueMicrotask(() => {
        if (this.phase !== 'closed') this.emit('drain');
      });
    }
    if (this.sendQueue.length === 0) this.maybeSendFin();
    return true;
  }

  /**
   * The next `size` queued bytes. A view of the first chunk when it holds them all; otherwise one copy that
   * joins several chunks, so that a frame is as full as allowed. What queues up while the link is congested
   * is then sent in full-size frames (a 64 KiB socket read is not split into 60 KiB and 4 KiB messages): the
   * cost of a DataChannel is per message, at every hop.
   */
  private takeQueued(size: number): Uint8Array {
    const head = this.sendQueue[0]!;
    if (head.length >= size) {
      if (head.length === size) this.sendQueue.shift();
      else this.sendQueue[0] = head.subarray(size);
      return head.subarray(0, size);
    }
    const piece = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const chunk = this.sendQueue[0]!;
      const taken = Math.min(chunk.length, size - filled);
      piece.set(chunk.subarray(0, taken), filled);
      filled += taken;
      if (taken === chunk.length) this.sendQueue.shift();
      else this.sendQueue[0] = chunk.subarray(taken);
    }
    return piece;
  }

  /** @internal Close locally without telling the peer (it told us, or the session is gone). */
  terminate(error?: StreamError): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.sendQueue.length = 0;
    this.recvBuffer.length = 0;
    this.queuedBytes = 0;
    this.receiveWindow.release();
    this.mux.forget(this);
    this.emit('close', error);
    this.removeAllListeners();
  }

  private deliver(data: Uint8Array): void {
    this.emit('data', data);
    this.consumedSinceUpdate += data.length;
    this.receiveWindow.consumed(data.length);
    // Return credit in batches (receive-window.ts says how large), with whatever the window grew by since.
    if (this.consumedSinceUpdate >= this.receiveWindow.updateThreshold && this.phase === 'open') {
      const edge = this.receivedTotal + this.recvWindow;
      const increment = this.receiveWindow.grant(this.consumedSinceUpdate, edge);
      this.recvWindow += increment;
      this.mux.sendFrame({ type: 'window', streamId: this.id, increment });
      this.consumedSinceUpdate = 0;
    }
  }

  private maybeDeliverEnd(): void {
    if (!this.remoteEnded || this.remoteEndDelivered || this.phase === 'closed') return;
    this.remoteEndDelivered = true;
    this.emit('end');
    this.maybeFinish();
  }

  private maybeSendFin(): void {
    if (!this.localEndRequested || this.localFinSent || this.sendQueue.length > 0 || !this.maySend) return;
    this.localFinSent = true;
    this.mux.sendFrame({ type: 'fin', streamId: this.id });
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.localFinSent && this.remoteEndDelivered) this.terminate();
  }
}
