/**
 * One peer's connection, without the socket itself (a `PeerSocket` moves its frames): its token bucket, its
 * error budget, the queue that runs its messages in arrival order, its handshake stage and its liveness marks.
 * It checks each frame (binary, size, schema), asks the broker what the message may do (`Broker.admit`), and
 * runs the broker's work in the queue.
 */
import type { Clock } from '@underpass/shared/clock';
import { errorMessage } from '@underpass/shared/errors';
import type { LogFields, Logger } from '@underpass/shared/logger';
import { TokenBucket } from '@underpass/shared/rate-limit';
import {
  encodeMessage,
  parsePeerMessage,
  type DecodeResult,
  type HelloMessage,
  type PeerMessage,
  type PeerRole,
  type ServerMessage,
  type SignalingErrorCode,
} from '@underpass/shared/signaling';
import { HANDSHAKE_START, type Broker, type HandshakeStage } from './broker.js';
import type { SignalingLimits } from './limits.js';
import type { LivePeer } from './liveness.js';
import type { RejectionReason, SignalingMetrics } from './metrics.js';

export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_POLICY = 1008;
export const CLOSE_TRY_LATER = 1013;

/** The part of a WebSocket a connection uses. */
export interface PeerSocket {
  /** True while frames can be sent. */
  readonly open: boolean;
  /** Bytes sent but not yet taken by the peer. */
  readonly bufferedAmount: number;
  send(text: string): void;
  close(code: number, reason: string): void;
  /** Cuts the socket without a close handshake. */
  terminate(): void;
  ping(): void;
}

/** One inbound WebSocket message; `text()` decodes it, which is only done once its size is known to be fine. */
export type InboundFrame = { binary: boolean; byteLength: number; text(): string };

export type ConnectionLimits = Pick<
  SignalingLimits,
  | 'messagesPerSecond'
  | 'messageBurst'
  | 'maxMessageBytes'
  | 'maxErrors'
  | 'maxQueuedMessages'
  | 'maxBufferedBytes'
  | 'handshakeTimeoutMs'
  | 'idleTimeoutMs'
>;

/** What every connection of one server shares. */
export type ConnectionContext = {
  broker: Pick<Broker, 'admit' | 'join' | 'handle' | 'leave'>;
  limits: ConnectionLimits;
  metrics: Pick<SignalingMetrics, 'rejected' | 'peerJoined' | 'peerLeft'>;
  logger: Logger;
  clock: Clock;
  /** Log fields naming an address: none unless the operator asked for addresses in the logs. */
  where: (address: string) => LogFields;
};

export class PeerConnection implements LivePeer {
  alive = true;
  private stage: HandshakeStage = HANDSHAKE_START;
  /** Set once a close began (ours or the peer's): nothing more is read or started. */
  private closing = false;
  /** Set once registered, for the peers-by-role gauge and the idle timeout. */
  private role: PeerRole | undefined;
  /** When the peer last sent a message, for the idle timeout. */
  private lastSeen: number;
  private errors = 0;
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();
  private readonly bucket: TokenBucket;
  private readonly handshakeTimer: unknown;

  constructor(
    readonly peerId: string,
    readonly address: string,
    private readonly socket: PeerSocket,
    private readonly context: ConnectionContext,
  ) {
    const { limits, clock } = context;
    this.lastSeen = clock.now();
    this.bucket = new TokenBucket({
      ratePerSecond: limits.messagesPerSecond,
      burst: limits.messageBurst,
      clock,
    });
    this.handshakeTimer = clock.setTimeout(() => this.handshakeExpired(), limits.handshakeTimeoutMs);
  }

  get open(): boolean {
    return this.socket.open;
  }

  /** When a registered peer last sent something; undefined while the idle timeout does not apply. */
  get idleSince(): number | undefined {
    return this.role !== undefined && !this.closing ? this.lastSeen : undefined;
  }

  /** Before the hello (and, for an exit, its proof) was accepted. */
  private get inHandshake(): boolean {
    return this.stage.step !== 'admitted';
  }

  receive(frame: InboundFrame): void {
    this.alive = true;
    if (this.closing) return;
    this.lastSeen = this.context.clock.now();
    const inHandshake = this.inHandshake;
    if (!this.bucket.tryTake()) return this.strike('rate-limited', 'too many messages; slow down');
    const decoded = this.decode(frame);
    if (!decoded.ok) {
      this.strike(decoded.code, decoded.message, decoded.requestId);
      // Before the handshake is done nothing else could be meant: any bad frame ends the connection.
      if (inHandshake || decoded.code === 'unsupported-version') this.close(CLOSE_POLICY, decoded.code);
      return;
    }
    const msg = decoded.msg;
    const { broker, where } = this.context;
    const admission = broker.admit(this.peerId, this.stage, msg, where(this.address));
    switch (admission.action) {
      case 'refuse':
        this.close(CLOSE_POLICY, admission.closeReason, admission.why);
        return;
      case 'prove':
        this.stage = admission.stage;
        return;
      case 'join':
        this.stage = admission.stage;
        this.join(admission.hello);
        return;
      case 'handle':
        // Messages pipelined behind a hello wait in the queue until the join is done.
        this.enqueue(() => this.handle(msg));
        return;
    }
  }

  /** A pong: the peer is alive even if it has nothing to say. */
  pong(): void {
    this.alive = true;
  }

  ping(): void {
    this.socket.ping();
  }

  dropUnresponsive(): void {
    this.context.logger.info({ peerId: this.peerId }, 'peer stopped answering pings; dropping it');
    this.context.metrics.rejected('ping-timeout');
    this.socket.terminate();
  }

  dropIdle(): void {
    const { idleTimeoutMs } = this.context.limits;
    this.sendError('timeout', `nothing received for ${idleTimeoutMs} ms; send heartbeats`);
    this.close(CLOSE_POLICY, 'idle', 'idle-timeout');
  }

  /** The server is shutting down: the peer is told so, and the socket closed. */
  shutDown(): void {
    this.context.clock.clearTimeout(this.handshakeTimer);
    this.sendError('shutting-down', 'the signaling server is shutting down; reconnect later');
    this.close(CLOSE_GOING_AWAY, 'shutting down');
  }

  /** The cluster took this instance for dead and removed its peers: they must reconnect. */
  registrationLost(): void {
    this.sendError('unavailable', 'this server lost its registration; reconnect');
    this.close(CLOSE_TRY_LATER, 'reconnect');
  }

  /**
   * Another connection proved this exit's key afresh and took its registration (broker.ts, `replaced`): told
   * so, with a code the exit does not retry on, and closed. Already removed from the registry.
   */
  replaced(): void {
    this.sendError('replaced', 'another exit process proved this exitKey and took over its registration');
    this.close(CLOSE_POLICY, 'replaced');
  }

  terminate(): void {
    this.socket.terminate();
  }

  /**
   * The socket is gone. The peer leaves the broker behind any join in flight, so it is never left registered
   * behind a dead socket; leaving is unconditional, since the stage says nothing about registration once the
   * server itself began a close. Resolves (never rejects) once the broker has forgotten the peer.
   */
  socketClosed(): Promise<void> {
    this.context.clock.clearTimeout(this.handshakeTimer);
    this.closing = true;
    if (this.role) this.context.metrics.peerLeft(this.role);
    this.role = undefined;
    this.chain = this.chain
      .then(() => this.context.broker.leave(this.peerId))
      .catch((error: unknown) => {
        this.context.logger.error(
          { peerId: this.peerId, err: errorMessage(error) },
          'error while removing a peer',
        );
      });
    return this.chain;
  }

  /** Every frame to the peer goes through here, errors included: each one is subject to the buffer bound. */
  write(text: string): void {
    if (!this.socket.open) return;
    // A peer that does not read its socket must not make us buffer without bound.
    if (this.socket.bufferedAmount > this.context.limits.maxBufferedBytes) {
      this.context.logger.warn({ peerId: this.peerId }, 'peer does not read its messages; dropping it');
      this.context.metrics.rejected('slow-reader');
      this.socket.terminate();
      return;
    }
    this.socket.send(text);
  }

  sendError(code: SignalingErrorCode, message: string, requestId?: string): void {
    const msg: ServerMessage = { type: 'error', code, message };
    if (requestId !== undefined) msg.requestId = requestId;
    this.write(encodeMessage(msg));
  }

  /** Closes the connection; `why` counts it in the rejections metric (an ordinary close has none). */
  close(code: number, reason: string, why?: RejectionReason): void {
    if (this.closing) return;
    if (why) this.context.metrics.rejected(why);
    this.closing = true;
    this.socket.close(code, reason);
  }

  private decode(frame: InboundFrame): DecodeResult<PeerMessage> {
    const { maxMessageBytes } = this.context.limits;
    if (frame.binary)
      return { ok: false, code: 'malformed', message: 'binary frames are not part of the protocol' };
    if (frame.byteLength > maxMessageBytes)
      return { ok: false, code: 'too-large', message: `message larger than ${maxMessageBytes} bytes` };
    return parsePeerMessage(frame.text());
  }

  private join(hello: HelloMessage): void {
    const { broker, clock, logger, metrics } = this.context;
    clock.clearTimeout(this.handshakeTimer);
    this.enqueue(async () => {
      let result;
      try {
        result = await broker.join(this.peerId, hello);
      } catch (error) {
        logger.error({ peerId: this.peerId, err: errorMessage(error) }, 'cannot register a peer');
        this.sendError('unavailable', 'the server cannot register peers now; retry later');
        this.close(CLOSE_TRY_LATER, 'unavailable');
        return;
      }
      // The socket went away while joining; its leave is queued behind us.
      if (this.closing) return;
      if (result.ok) {
        this.role = hello.role;
        metrics.peerJoined(hello.role);
        return;
      }
      this.sendError(result.code, result.message);
      this.close(CLOSE_POLICY, result.code, result.reason);
    });
  }

  private async handle(msg: PeerMessage): Promise<void> {
    if (this.closing) return;
    let outcome;
    try {
      outcome = await this.context.broker.handle(this.peerId, msg);
    } catch (error) {
      this.context.logger.error(
        { peerId: this.peerId, err: errorMessage(error) },
        'error while handling a message',
      );
      const requestId = 'requestId' in msg ? msg.requestId : undefined;
      this.sendError('unavailable', 'the server cannot serve this now; retry later', requestId);
      return;
    }
    // The broker already answered `not-allowed`; the count and the error budget are ours.
    if (outcome === 'violation') this.spendError('not-allowed');
  }

  /** Answers a protocol error, and spends one unit of the error budget on it. */
  private strike(code: SignalingErrorCode, message: string, requestId?: string): void {
    this.sendError(code, message, requestId);
    this.spendError(rejectionOf(code));
  }

  /** Counts a rejected message; too many of them and the connection is closed. */
  private spendError(reason: RejectionReason): void {
    this.context.metrics.rejected(reason);
    this.errors++;
    if (this.errors < this.context.limits.maxErrors) return;
    this.context.logger.info(
      { peerId: this.peerId, errors: this.errors },
      'closing a connection after repeated errors',
    );
    this.close(CLOSE_POLICY, 'too many errors', 'too-many-errors');
  }

  /** Runs the connection's work in arrival order, even when the registry is asynchronous. */
  private enqueue(work: () => Promise<void>): void {
    if (this.queued >= this.context.limits.maxQueuedMessages) {
      this.context.logger.warn({ peerId: this.peerId }, 'message queue full; closing the connection');
      this.close(CLOSE_POLICY, 'too many queued messages', 'queue-full');
      return;
    }
    this.queued++;
    this.chain = this.chain
      .then(work)
      .catch((error: unknown) => {
        this.context.logger.error(
          { peerId: this.peerId, err: errorMessage(error) },
          'error while handling a message',
        );
      })
      .finally(() => {
        this.queued--;
      });
  }

  private handshakeExpired(): void {
    if (!this.inHandshake || this.closing) return;
    const { handshakeTimeoutMs } = this.context.limits;
    this.sendError('timeout', `say hello (and prove an exit key) within ${handshakeTimeoutMs} ms`);
    this.close(CLOSE_POLICY, 'handshake timeout', 'handshake-timeout');
  }
}

function rejectionOf(code: SignalingErrorCode): RejectionReason {
  switch (code) {
    case 'rate-limited':
    case 'too-large':
    case 'malformed':
    case 'unsupported-version':
      return code;
    default:
      return 'not-allowed';
  }
}
