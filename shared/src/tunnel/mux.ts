import { Emitter } from '../emitter.js';
import { SessionError, StreamError, type StreamErrorCode } from '../errors.js';
import type { ByteStream, ByteStreamEvents } from '../byte-stream.js';
import {
  decodeMuxFrame,
  encodeMuxFrame,
  MAX_DATA_PAYLOAD,
  validateRequest,
  type MuxFrame,
  type StreamRequest,
} from './mux-frames.js';

export interface MuxOptions {
  /** The initiator opens streams; the acceptor answers them. Only one side ever opens. */
  role: 'initiator' | 'acceptor';
  /** Hands one encoded frame to the transport. */
  send(frame: Uint8Array): void;
  /** False while the transport is congested; the mux then holds DATA until `drain()` is called. */
  canSend?(): boolean;
  /** Bytes a peer may send on a stream before it must wait for a WINDOW frame. */
  initialWindow?: number;
  /** Streams open at once; further opens fail with `limit`. */
  maxStreams?: number;
  /** Time the acceptor has to answer an OPEN before the opener gives up with `timeout`. */
  openTimeoutMs?: number;
  /**
   * Bytes of DATA that may be in transit on all streams together (WINDOW frames on stream 0). Tunnel sessions
   * set it, because relays hold what is in transit; the companion's local data port does not.
   */
  sessionWindow?: number;
}

export const DEFAULT_STREAM_WINDOW = 256 * 1024;
export const DEFAULT_MAX_STREAMS = 256;
const MAX_WINDOW = 16 * 1024 * 1024;
/**
 * A tunnel session's window. Every byte in transit may sit in a relay's send buffer, and a DataChannel holds at
 * most 16 MiB (the browser throws beyond it; @roamhq/wrtc drops the message): 256 streams × 256 KiB would be
 * 64 MiB. 4 MiB still lets one session carry 40 MB/s over a 100 ms round trip.
 */
export const DEFAULT_SESSION_WINDOW = 4 * 1024 * 1024;
/** A writer that ignores `write() === false` is cut off here rather than growing memory without bound. */
const MAX_QUEUED_BYTES = 4 * 1024 * 1024;

export type MuxEvents = {
  /** Acceptor only: a peer opened a stream; call `accept()` or `reject(code)`. */
  stream: [stream: MuxStream, request: StreamRequest];
  close: [error?: SessionError];
};

/**
 * Stream multiplexing with per-stream credit flow control (PROTOCOL.md §Streams). Memory per stream is bounded
 * by its window on the receiving side and by the writer's backpressure on the sending side.
 */
export class Mux extends Emitter<MuxEvents> {
  private readonly streams = new Map<number, MuxStream>();
  private readonly window: number;
  private readonly maxStreams: number;
  private readonly openTimeoutMs: number;
  /** Initiator: next id to allocate. Acceptor: highest id seen + 1. Ids below it and absent are retired. */
  private nextStreamId = 1;
  private flushing = false;
  private closeError: SessionError | undefined;
  private isClosed = false;
  /** Stream payload bytes (DATA frames) in each direction, for the popup's figures. */
  private sent = 0;
  private received = 0;
  /** Session flow control (when `sessionWindow` is set): what we may still send, and what the peer may. */
  private sessionSendCredit: number;
  private sessionRecvCredit: number;
  private receivedSinceSessionGrant = 0;

  constructor(private readonly options: MuxOptions) {
    super();
    this.window = options.initialWindow ?? DEFAULT_STREAM_WINDOW;
    this.maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.openTimeoutMs = options.openTimeoutMs ?? 30_000;
    this.sessionSendCredit = options.sessionWindow ?? Infinity;
    this.sessionRecvCredit = options.sessionWindow ?? Infinity;
  }

  get closed(): boolean {
    return this.isClosed;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  get bytesSent(): number {
    return this.sent;
  }

  get bytesReceived(): number {
    return this.received;
  }

  open(request: StreamRequest): Promise<MuxStream> {
    if (this.options.role !== 'initiator') throw new Error('only the initiator opens streams');
    if (this.isClosed) return Promise.reject(new StreamError('session-closed', 'the session is closed'));
    const invalid = validateRequest(request);
    if (invalid) return Promise.reject(new StreamError('protocol', invalid));
    if (this.streams.size >= this.maxStreams) {
      return Promise.reject(new StreamError('limit', `at most ${this.maxStreams} streams at once`));
    }
    const id = this.nextStreamId++;
    const stream = new MuxStream(this, id, this.window);
    this.streams.set(id, stream);
    this.sendFrame({ type: 'open', streamId: id, request });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        stream.destroy(new StreamError('timeout', 'the exit did not answer the open in time'));
      }, this.openTimeoutMs);
      stream.once('close', (error) => {
        clearTimeout(timer);
        reject(error ?? new StreamError('reset'));
      });
      stream.onOpened = () => {
        clearTimeout(timer);
        resolve(stream);
      };
    });
  }

  /** Feed one inbound frame. Violations close the whole mux with a SessionError (and are never thrown). */
  receive(bytes: Uint8Array): void {
    if (this.isClosed) return;
    const decoded = decodeMuxFrame(bytes);
    if (!decoded.ok) {
      this.close(new SessionError('malformed-frame', decoded.reason));
      return;
    }
    this.handle(decoded.value);
  }

  /** The transport can take more: resume sending held DATA. */
  drain(): void {
    this.flush();
  }

  close(error?: SessionError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeError = error;
    const streamError = new StreamError(
      'session-closed',
      error ? `session ended: ${error.code}` : 'session ended',
    );
    for (const stream of [...this.streams.values()]) stream.terminate(streamError);
    this.streams.clear();
    this.emit('close', error);
  }

  get error(): SessionError | undefined {
    return this.closeError;
  }

  private handle(frame: MuxFrame): void {
    if (frame.type === 'open') {
      this.handleOpen(frame.streamId, frame.request);
      return;
    }
    const sessionWindow = this.options.sessionWindow;
    if (sessionWindow) {
      if (frame.type === 'window' && frame.streamId === 0) {
        this.grantSession(frame.increment);
        return;
      }
      // Before the stream lookup: DATA for a stream that just closed was still charged to the session.
      if (frame.type === 'data' && !this.chargeSession(frame.data.length, sessionWindow)) return;
    }
    const stream = this.streams.get(frame.streamId);
    if (!stream) {
      if (this.isRetired(frame.streamId)) return; // in flight when we closed it: harmless
      this.close(
        new SessionError('unknown-stream', `frame for stream ${frame.streamId}, which was never opened`),
      );
      return;
    }
    switch (frame.type) {
      case 'open-ok':
        if (this.options.role !== 'initiator' || !stream.markOpened()) {
          this.close(new SessionError('malformed-frame', 'unexpected OPEN_OK'));
        }
        return;
      case 'open-failed':
        if (this.options.role !== 'initiator') {
          this.close(new SessionError('malformed-frame', 'unexpected OPEN_FAILED'));
          return;
        }
        stream.terminate(new StreamError(frame.code));
        return;
      case 'data':
        this.received += frame.data.length;
        if (!stream.receiveData(frame.data)) {
          this.close(new SessionError('window-overrun', `stream ${frame.streamId} sent past its window`));
        }
        return;
      case 'window':
        if (!stream.grantWindow(frame.increment, MAX_WINDOW)) {
          this.close(
            new SessionError('window-overrun', `stream ${frame.streamId} window grew past the maximum`),
          );
          return;
        }
        this.flush();
        return;
      case 'fin':
        stream.receiveFin();
        return;
      case 'reset':
        stream.terminate(new StreamError(frame.code, `the far side reset the stream: ${frame.code}`));
        return;
    }
  }

  private grantSession(increment: number): void {
    if (this.sessionSendCredit + increment > MAX_WINDOW) {
      this.close(new SessionError('window-overrun', 'the session window grew past the maximum'));
      return;
    }
    this.sessionSendCredit += increment;
    this.flush();
  }

  /**
   * Counts received DATA against the session window; false when the peer overran it (the mux is then closed).
   * Credit goes back on receipt, not when a reader consumes: unread data is bounded by each stream's window, so
   * a slow reader holds back only its own stream, never the others.
   */
  private chargeSession(bytes: number, sessionWindow: number): boolean {
    if (bytes > this.sessionRecvCredit) {
      this.close(new SessionError('window-overrun', 'DATA beyond the session window'));
      return false;
    }
    this.sessionRecvCredit -= bytes;
    this.receivedSinceSessionGrant += bytes;
    if (this.receivedSinceSessionGrant >= sessionWindow / 2) {
      this.sessionRecvCredit += this.receivedSinceSessionGrant;
      this.sendFrame({ type: 'window', streamId: 0, increment: this.receivedSinceSessionGrant });
      this.receivedSinceSessionGrant = 0;
    }
    return true;
  }

  private handleOpen(streamId: number, request: StreamRequest): void {
    if (this.options.role !== 'acceptor') {
      this.close(new SessionError('malformed-frame', 'the acceptor may not open streams'));
      return;
    }
    // Ids must grow: a reused or out-of-order id is either a bug or an attempt to confuse the state.
    if (streamId < this.nextStreamId || streamId === 0) {
      this.close(new SessionError('malformed-frame', `stream id ${streamId} reused`));
      return;
    }
    this.nextStreamId = streamId + 1;
    if (this.streams.size >= this.maxStreams) {
      this.sendFrame({ type: 'open-failed', streamId, code: 'limit' });
      return;
    }
    const stream = new MuxStream(this, streamId, this.window);
    this.streams.set(streamId, stream);
    this.emit('stream', stream, request);
  }

  private isRetired(streamId: number): boolean {
    return streamId > 0 && streamId < this.nextStreamId;
  }

  /** @internal */
  sendFrame(frame: MuxFrame): void {
    if (this.isClosed) return;
    if (frame.type === 'data') {
      this.sent += frame.data.length;
      this.sessionSendCredit -= frame.data.length;
    }
    this.options.send(encodeMuxFrame(frame));
  }

  /** @internal DATA bytes the session window still allows (Infinity without one). */
  get sessionCredit(): number {
    return this.sessionSendCredit;
  }

  /** @internal */
  forget(stream: MuxStream): void {
    this.streams.delete(stream.id);
  }

  /** @internal Round-robin over streams with queued data while the transport has room. */
  flush(): void {
    if (this.flushing || this.isClosed) return;
    this.flushing = true;
    try {
      let progressed = true;
      while (progressed && this.canSend()) {
        progressed = false;
        for (const stream of this.streams.values()) {
          if (!this.canSend()) break;
          if (stream.sendSome()) progressed = true;
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private canSend(): boolean {
    return !this.isClosed && (this.options.canSend?.() ?? true);
  }
}

/** 'opening': OPEN sent (initiator) or received and not yet answered (acceptor). */
type StreamPhase = 'opening' | 'open' | 'closed';

/** One multiplexed stream: a ByteStream with the mux's flow control underneath. */
export class MuxStream extends Emitter<ByteStreamEvents> implements ByteStream {
  private phase: StreamPhase;
  private sendWindow: number;
  private recvWindow: number;
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
  /** @internal set by Mux.open */
  onOpened: (() => void) | undefined;

  constructor(
    private readonly mux: Mux,
    readonly id: number,
    private readonly windowSize: number,
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
    if (this.phase !== 'open' || this.sendWindow <= 0 || this.queuedBytes === 0 || sessionCredit <= 0)
      return false;
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
    this.mux.forget(this);
    this.emit('close', error);
    this.removeAllListeners();
  }

  private deliver(data: Uint8Array): void {
    this.emit('data', data);
    this.consumedSinceUpdate += data.length;
    // Return credit in batches: one WINDOW frame per half window keeps the overhead small.
    if (this.consumedSinceUpdate >= this.windowSize / 2 && this.phase === 'open') {
      this.recvWindow += this.consumedSinceUpdate;
      this.mux.sendFrame({ type: 'window', streamId: this.id, increment: this.consumedSinceUpdate });
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
    if (!this.localEndRequested || this.localFinSent || this.sendQueue.length > 0 || this.phase !== 'open')
      return;
    this.localFinSent = true;
    this.mux.sendFrame({ type: 'fin', streamId: this.id });
    this.maybeFinish();
  }

  private maybeFinish(): void {
    if (this.localFinSent && this.remoteEndDelivered) this.terminate();
  }
}
