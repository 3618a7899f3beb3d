/** Every bound the signaling server enforces, with its default. All can be overridden per server. */
export type SignalingLimits = {
  /** Largest inbound message in bytes; larger ones get a `too-large` error frame. The codec caps at 64 KiB. */
  maxMessageBytes: number;
  /** Frames above this many bytes are not even read: the connection is closed (1009). */
  maxFrameBytes: number;
  /** A peer must say hello within this many milliseconds of connecting. */
  handshakeTimeoutMs: number;
  /** Open WebSocket connections at once, counting those still in their handshake. */
  maxPeers: number;
  /** Open WebSocket connections at once from one IP address. */
  maxConnectionsPerAddress: number;
  /** A joined peer that sends nothing for this long is dropped (`timeout`); welcome asks for a third of it. */
  idleTimeoutMs: number;
  /**
   * How long a two-hop path request waits for a relay with free capacity before `no-relay-available`;
   * 0 answers at once.
   */
  matchWaitMs: number;
  /** Path requests waiting for a relay at once (over all clients of this instance). */
  maxWaitingRequests: number;
  /** Links a client may hold at once (as the initiator). */
  maxLinksPerClient: number;
  /** Token bucket per connection: sustained messages per second… */
  messagesPerSecond: number;
  /** …and burst size. */
  messageBurst: number;
  /** Protocol errors (malformed, too large, not allowed, rate limited) before the connection is closed. */
  maxErrors: number;
  /** Interval of WebSocket pings; a peer that neither answered the last ping nor sent anything is dropped. */
  pingIntervalMs: number;
  /** A peer that lets this many bytes queue up unread towards it is dropped. */
  maxBufferedBytes: number;
  /** Inbound messages queued for processing on one connection before it is considered abusive. */
  maxQueuedMessages: number;
  /** On shutdown, how long peers get to take the `shutting-down` frame before their sockets are cut. */
  shutdownGraceMs: number;
};

export const DEFAULT_LIMITS: SignalingLimits = {
  maxMessageBytes: 64 * 1024,
  maxFrameBytes: 256 * 1024,
  handshakeTimeoutMs: 10_000,
  maxPeers: 10_000,
  maxConnectionsPerAddress: 64,
  idleTimeoutMs: 120_000,
  matchWaitMs: 5_000,
  maxWaitingRequests: 10_000,
  maxLinksPerClient: 8,
  // Four times what one PeerConnection per link needed: each of a link's lanes signals for itself (PROTOCOL.md
  // §2, Lanes), about five messages a side, and an exit answers every link that comes to it.
  messagesPerSecond: 200,
  messageBurst: 400,
  maxErrors: 20,
  pingIntervalMs: 30_000,
  maxBufferedBytes: 1024 * 1024,
  maxQueuedMessages: 200,
  shutdownGraceMs: 2_000,
};

/**
 * The smallest value of the limits that have one; the others only need to be positive. The idle timeout must leave room for a heartbeat: welcome
 * asks for one every third of it, and the protocol needs that to be at least 1 ms (and a peer some real time).
 */
export const MIN_LIMITS: Partial<Record<keyof SignalingLimits, number>> = {
  idleTimeoutMs: 1_000,
  matchWaitMs: 0,
};

export function resolveLimits(overrides: Partial<SignalingLimits> = {}): SignalingLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(overrides) as [keyof SignalingLimits, number | undefined][]) {
    if (value === undefined) continue;
    const min = MIN_LIMITS[key];
    if (!Number.isFinite(value) || (min === undefined ? value <= 0 : value < min))
      throw new RangeError(
        `limit ${key} must be ${min === undefined ? 'a positive number' : `at least ${min}`}`,
      );
    limits[key] = value;
  }
  return limits;
}
