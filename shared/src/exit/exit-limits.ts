import { SessionError, StreamError, type SessionErrorCode } from '../errors.js';
import type { Clock } from '../clock.js';
import { TokenBucket } from '../rate-limit.js';
import type { ByteStream } from '../streams/byte-stream.js';
import type { SecureSession } from '../tunnel/session.js';
import type { MuxStream } from '../tunnel/mux-stream.js';

/** What one client session may do at the exit. Breaking a hard limit ends that session only, with a typed error. */
export interface SessionLimits {
  /** Payload bytes per second through the session, both directions together; 0 = unlimited. Throttles. */
  bytesPerSecond: number;
  /** Burst allowed above the rate; defaults to one second's worth (at least 256 KiB). */
  bytesBurst: number;
  /**
   * Stream opens per second, sustained, and the burst above it. Opens beyond it fail with `limit`; as many
   * again refused (at the same rate) end the session (SESSION_LIMIT_CODE).
   */
  streamOpensPerSecond: number;
  streamOpensBurst: number;
  /** Session messages from the client per second (any frame). Exceeding the burst ends the session. */
  messagesPerSecond: number;
  messagesBurst: number;
  /** The whole dial (DNS and connect) must finish in this time, or the stream fails with `timeout`. */
  dialTimeoutMs: number;
  /** A stream with no byte either way for this long is reset with `timeout`. */
  streamIdleTimeoutMs: number;
}

export const DEFAULT_SESSION_LIMITS: SessionLimits = {
  bytesPerSecond: 0,
  bytesBurst: 0,
  // A page load opens tens of connections at once; a few hundred in a burst is no browser.
  streamOpensPerSecond: 32,
  streamOpensBurst: 512,
  // Uploads in small writes (16 KiB, as browsers send) make ~1,900 frames a second at 30 MB/s; downloads send
  // a window update per 128 KiB.
  messagesPerSecond: 4_000,
  messagesBurst: 8_000,
  dialTimeoutMs: 15_000,
  streamIdleTimeoutMs: 5 * 60_000,
};

/** The least byte burst of a rate-limited session, so that one full cell always fits. */
const MIN_BYTES_BURST = 256 * 1024;

/** The session code for a broken rate limit; tests compare with this constant. */
export const SESSION_LIMIT_CODE: SessionErrorCode = 'limit';

/** Session endings that mean the client broke the protocol or a limit (counted as cut off). */
export const CLIENT_FAULTS: ReadonlySet<string> = new Set<SessionErrorCode>([
  'malformed-frame',
  'frame-too-large',
  'unknown-stream',
  'window-overrun',
  'too-many-streams',
  'tampered',
  SESSION_LIMIT_CODE,
]);

/**
 * The rate limits of one session at the exit: it charges the client's messages and stream opens, ends the
 * session when the client keeps going past them, and holds the byte budget its streams are paced by.
 */
export class SessionGuard {
  private readonly messages: TokenBucket;
  private readonly opens: TokenBucket;
  private readonly refusals: TokenBucket;
  /** Shared by every stream of the session; undefined when bytes are unlimited. */
  readonly bytes: TokenBucket | undefined;

  constructor(
    private readonly session: SecureSession,
    limits: SessionLimits,
    clock: Pick<Clock, 'now'>,
  ) {
    this.messages = new TokenBucket({
      ratePerSecond: limits.messagesPerSecond,
      burst: limits.messagesBurst,
      clock,
    });
    this.opens = new TokenBucket({
      ratePerSecond: limits.streamOpensPerSecond,
      burst: limits.streamOpensBurst,
      clock,
    });
    this.refusals = new TokenBucket({
      ratePerSecond: limits.streamOpensPerSecond,
      burst: limits.streamOpensBurst,
      clock,
    });
    this.bytes =
      limits.bytesPerSecond > 0
        ? new TokenBucket({
            ratePerSecond: limits.bytesPerSecond,
            burst: limits.bytesBurst || Math.max(limits.bytesPerSecond, MIN_BYTES_BURST),
            clock,
          })
        : undefined;
  }

  /** One inbound message: false (and the session closed) when the client sends faster than allowed. */
  admitMessage(): boolean {
    if (this.session.closed) return false;
    if (this.messages.tryTake()) return true;
    this.session.close(new SessionError(SESSION_LIMIT_CODE, 'messages faster than the exit allows'));
    return false;
  }

  /**
   * One stream open: false when it is refused (the stream is rejected with `limit`). A burst past the rate
   * costs only the streams refused; a client that keeps opening while refused is flooding, and loses the session.
   */
  admitOpen(stream: MuxStream): boolean {
    if (this.opens.tryTake()) return true;
    stream.reject('limit');
    if (!this.refusals.tryTake()) {
      this.session.close(new SessionError(SESSION_LIMIT_CODE, 'stream opens faster than the exit allows'));
    }
    return false;
  }
}

/**
 * Resets `stream` once it carried nothing either way (it, or `outside`) for `idleMs`. One timer per stream,
 * re-armed lazily rather than on every byte.
 */
export function resetWhenIdle(stream: ByteStream, outside: ByteStream, idleMs: number, clock: Clock): void {
  if (!(idleMs > 0)) return;
  let last = clock.now();
  const touch = () => {
    last = clock.now();
  };
  stream.on('data', touch);
  outside.on('data', touch);
  let timer: unknown;
  const arm = (ms: number) => {
    timer = clock.setTimeout(() => {
      const quiet = clock.now() - last;
      if (quiet >= idleMs) stream.destroy(new StreamError('timeout', 'the stream was idle too long'));
      else arm(idleMs - quiet);
    }, ms);
  };
  arm(idleMs);
  const stop = () => clock.clearTimeout(timer);
  stream.once('close', stop);
  outside.once('close', stop);
}
