import { Emitter } from '../emitter.js';
import { SessionError, StreamError } from '../errors.js';
import { withDeadline } from '../deadline.js';
import { MuxStream } from './mux-stream.js';
import { ReceiveWindows } from './receive-window.js';
import { systemClock, type Clock } from '../clock.js';
import {
  decodeMuxFrame,
  encodeMuxFrame,
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
  /**
   * Bytes this side's receive windows may grow, all streams together, beyond the initial window as they follow
   * the path (receive-window.ts; DEFAULT_RECEIVE_BUDGET). 0: fixed windows.
   */
  receiveBudget?: number;
  /** Times the credit round trips that size the receive windows. */
  clock?: Pick<Clock, 'now'>;
}

export const DEFAULT_STREAM_WINDOW = 256 * 1024;

export interface ReceiveWindowState {
  /** The shortest credit round trip measured (ms): the path's own. */
  roundTripMs: number | undefined;
  latestRoundTripMs: number | undefined;
  /** False while a queue stands on the path, by the latest round trips: windows do not grow then. */
  queueFree: boolean;
  /** Bytes the streams' windows have grown beyond their initial size, together. */
  grownBytes: number;
  /** Bytes of the streams' windows not filled by unread data, together: bounded by the session's rate. */
  openBytes: number;
}
/** A stream opened with `openEarly`: writable at once; `opened` settles with the acceptor's answer. */
export interface EarlyOpen<S = MuxStream> {
  stream: S;
  /** Resolves on OPEN_OK; rejects with the StreamError of OPEN_FAILED, a time-out or the session's end. */
  opened: Promise<void>;
}

export const DEFAULT_MAX_STREAMS = 256;
/** Time the acceptor has to answer an OPEN: the exit's dial (DNS and connect) must fit in it. */
export const DEFAULT_OPEN_TIMEOUT_MS = 30_000;
const MAX_WINDOW = 16 * 1024 * 1024;
/**
 * A tunnel session's window. Every byte in transit may sit in a relay's send buffer, and a DataChannel holds at
 * most 16 MiB (the browser throws beyond it; @roamhq/wrtc drops the message): 256 streams × 256 KiB would be
 * 64 MiB. 4 MiB still lets one session carry 40 MB/s over a 100 ms round trip.
 */
export const DEFAULT_SESSION_WINDOW = 4 * 1024 * 1024;

export type MuxEvents = {
  /** Acceptor only: a peer opened a stream; call `accept()` or `reject(code)`. */
  stream: [stream: MuxStream, request: StreamRequest];
  /** The far end echoed a PING: its payload, for whoever sent it to match. */
  pong: [payload: Uint8Array];
  close: [error?: SessionError];
};

/**
 * Stream multiplexing with per-stream credit flow control (PROTOCOL.md §Streams): the session side (stream ids,
 * frames in and out, the session window, round-robin sending); each stream's own state is in mux-stream.ts.
 * Memory per stream is bounded by its window on the receiving side and by the writer's backpressure on the
 * sending side.
 */
export class Mux extends Emitter<MuxEvents> {
  private readonly streams = new Map<number, MuxStream>();
  private readonly window: number;
  private readonly receiveWindows: ReceiveWindows;
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
    this.receiveWindows = new ReceiveWindows({
      clock: options.clock ?? systemClock,
      initialWindow: this.window,
      budget: options.receiveBudget,
    });
    this.maxStreams = options.maxStreams ?? DEFAULT_MAX_STREAMS;
    this.openTimeoutMs = options.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS;
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

  /** Opens a stream and waits for the acceptor's answer: the stream is handed over once the target is reached. */
  open(request: StreamRequest): Promise<MuxStream> {
    try {
      const { stream, opened } = this.start(request, false);
      return opened.then(() => stream);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Opens a stream that may carry DATA (and FIN) at once, before the acceptor answers (PROTOCOL.md §4, "Early
   * data"): what is written follows the OPEN within the stream's window, and the acceptor holds it until the
   * target is reached. Saves the open's round trip before the first request. A refusal closes the stream with
   * the acceptor's code, as `opened` rejects. Throws a StreamError (`session-closed`, `protocol`, `limit`) when
   * the stream cannot even be started.
   */
  openEarly(request: StreamRequest): EarlyOpen {
    return this.start(request, true);
  }

  private start(request: StreamRequest, earlyData: boolean): EarlyOpen {
    if (this.options.role !== 'initiator') throw new Error('only the initiator opens streams');
    if (this.isClosed) throw new StreamError('session-closed', 'the session is closed');
    const invalid = validateRequest(request);
    if (invalid) throw new StreamError('protocol', invalid);
    if (this.streams.size >= this.maxStreams) {
      throw new StreamError('limit', `at most ${this.maxStreams} streams at once`);
    }
    const id = this.nextStreamId++;
    const stream = new MuxStream(this, id, this.window, this.receiveWindows.stream(), earlyData);
    this.streams.set(id, stream);
    this.sendFrame({ type: 'open', streamId: id, request });
    const answered = new Promise<void>((resolve, reject) => {
      stream.once('close', (error) => reject(error ?? new StreamError('reset')));
      stream.onOpened = resolve;
    });
    const opened = withDeadline(answered, {
      ms: this.openTimeoutMs,
      onTimeout: () => new StreamError('timeout', 'the exit did not answer the open in time'),
    }).catch((error: unknown) => {
      // Timed out: the far side is told (RESET) and the stream forgotten. Already closed otherwise: a no-op.
      stream.reset(error instanceof Error ? error : undefined);
      throw error;
    });
    // An early stream's refusal also closes the stream, which is where its user hears of it.
    opened.catch(() => undefined);
    return { stream, opened };
  }

  /**
   * Asks the far end to echo `payload` (PING_PAYLOAD_BYTES bytes) in a PONG, which comes back as a `pong`
   * event. Only for a peer known to answer: one that predates PING ends the session on it (PROTOCOL.md §4).
   */
  ping(payload: Uint8Array): void {
    this.sendFrame({ type: 'ping', streamId: 0, payload });
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
    // Echoed at once, ahead of held DATA: the round trip measures the path, not our own queue.
    if (frame.type === 'ping') {
      this.sendFrame({ type: 'pong', streamId: 0, payload: frame.payload });
      return;
    }
    if (frame.type === 'pong') {
      this.emit('pong', frame.payload);
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
    const stream = new MuxStream(this, streamId, this.window, this.receiveWindows.stream(), false);
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

  /** How the receive windows see the path (receive-window.ts), for traces and tests. */
  get receiveWindowState(): ReceiveWindowState {
    const windows = this.receiveWindows;
    return {
      roundTripMs: windows.roundTripMs,
      latestRoundTripMs: windows.latestRoundTripMs,
      queueFree: windows.queueFree,
      grownBytes: windows.grownBytes,
      openBytes: windows.openBytes,
    };
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
