import { Emitter } from '../emitter.js';
import { systemClock, type Clock } from '../clock.js';
import { errorMessage, SessionError } from '../errors.js';
import type { Link, LinkEvents } from './link.js';
import { Backpressure } from './backpressure.js';
import {
  DEFAULT_LINK_KEEPALIVE_MS,
  DEFAULT_LINK_SILENCE_LIMIT_MS,
  LINK_KEEPALIVE_MESSAGE,
  LinkKeepalive,
  isLinkKeepalive,
} from './link-keepalive.js';
import { DEFAULT_LINK_GOODBYE_WAIT_MS, LINK_GOODBYE_MESSAGE, isLinkGoodbye } from './link-goodbye.js';

/**
 * The part of a simple-peer instance we use. Declared structurally so that shared/ does not import simple-peer
 * (the hosts do: @thaunknown/simple-peer in Node and the browser).
 */
export interface SimplePeerLike {
  signal(data: unknown): void;
  send(data: Uint8Array): void;
  destroy(error?: Error): void;
  on(event: 'signal', listener: (data: unknown) => void): unknown;
  on(event: 'connect', listener: () => void): unknown;
  on(event: 'data', listener: (data: Uint8Array) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  /**
   * simple-peer 10 (the browser's) emits these, and neither `close` nor `error`, when the far end closed the
   * DataChannel cleanly; its later `destroy()` is then a no-op. See `onPeerGone`.
   */
  on(event: 'disconnect' | 'end', listener: () => void): unknown;
  on(event: 'iceStateChange', listener: (iceConnectionState: string) => void): unknown;
  readonly bufferSize: number;
  /** simple-peer's DataChannel, once connected: PeerLink reads it directly (see `DataChannelLike`). */
  readonly _channel?: DataChannelLike | null;
}

/**
 * The part of an RTCDataChannel (the browser's, or @roamhq/wrtc's in Node) that PeerLink uses. simple-peer sets
 * `binaryType = 'arraybuffer'` and assigns `onmessage` itself; PeerLink takes `onmessage` over.
 */
export interface DataChannelLike {
  readonly readyState?: string;
  onmessage?: ((event: { data: unknown }) => void) | null;
  addEventListener?(type: 'bufferedamountlow', listener: () => void): void;
}

/** Far more than the handful a peer sends before its first answer; a flood beyond it closes the link. */
const MAX_UNHEARD_MESSAGES = 256;

export type PeerFactory = (options: { initiator: boolean }) => SimplePeerLike;

/**
 * How long ICE may stay `disconnected` before the link counts as gone. Chromium reports `disconnected` once it
 * has heard nothing from the far end for a few seconds (measured here: 7.5 s after the far browser froze) and
 * `failed` only ~10 s after that; a working path that blips comes back well within this grace.
 */
export const DEFAULT_ICE_DISCONNECTED_GRACE_MS = 2_000;

export interface PeerLinkOptions {
  /** See DEFAULT_ICE_DISCONNECTED_GRACE_MS. */
  iceDisconnectedGraceMs?: number;
  /** See DEFAULT_LINK_KEEPALIVE_MS; 0 sends no keepalives and never takes silence for death. */
  keepaliveMs?: number;
  /** See DEFAULT_LINK_SILENCE_LIMIT_MS. */
  silenceLimitMs?: number;
  /** See DEFAULT_LINK_GOODBYE_WAIT_MS. */
  goodbyeWaitMs?: number;
  /**
   * Called on every message from the far end, keepalives included: a striped link judges silence over all its
   * lanes (StripedLink's `heard`).
   */
  onHeard?: () => void;
  clock?: Clock;
}

/**
 * The bytes of a message that one DataChannel send lets libwebrtc's SCTP put on the wire at once: dcsctp sends at
 * most 4 packets (`max_burst`) each time it is handed a message or an acknowledgement arrives, each at most ~1.2 kB
 * (its MTU of 1,191 bytes, less the chunk headers). See PeerLink's `nudge`.
 */
export const BYTES_PER_SEND = 4 * 1_163;

/**
 * Calls `gone` once, however the peer ended. simple-peer 9 (Node) emits `close`; simple-peer 10 (the browser's)
 * emits `close` only when destroyed from our side: when the far end closes its DataChannel without an SCTP
 * abort (Chromium's `pc.close()` races its own stream reset against the abort, and the reset sometimes wins),
 * it tears itself down and emits only `finish`, `end` and `disconnect`, and a later `destroy()` does nothing.
 * Listening to `close` alone left such a link open for good: a relay kept counting its departed client.
 */
export function onPeerGone(peer: SimplePeerLike, gone: (reason: string) => void): void {
  let done = false;
  const once = (reason: string) => {
    if (done) return;
    done = true;
    gone(reason);
  };
  peer.on('close', () => once('the peer connection closed'));
  peer.on('error', (error) => once(`peer connection failed: ${error.message}`));
  peer.on('end', () => once('the far end closed the link'));
  peer.on('disconnect', () => once('the far end closed the link'));
}

/**
 * Adapts a connected simple-peer to the Link interface. Each DataChannel message is one cell; the channel is
 * ordered and reliable, which the session's implicit nonces rely on. The link keeps itself alive (LinkKeepalive):
 * its keepalive messages are consumed here, and a far end silent past the limit ends it.
 */
export class PeerLink extends Emitter<LinkEvents> implements Link {
  private isClosed = false;
  /** A reader that finds the link full must get a drain later, even if no send of ours crossed the mark. */
  private readonly backpressure = new Backpressure(() => {
    if (!this.isClosed) this.emit('drain');
  });
  /**
   * Messages that arrived before anyone listened. The far end sends its first cell the moment the channel
   * opens, while our engine attaches to the link a tick after `connect`; without this, that cell was lost.
   */
  private readonly unheard: Uint8Array[] = [];

  private iceTimer: unknown;
  /** Set while a link we closed waits for the far end to read our goodbye and end the connection. */
  private goodbyeTimer: unknown;
  private readonly goodbyeWaitMs: number;
  private readonly clock: Clock;
  private readonly keepalive: LinkKeepalive;
  private readonly onHeard: (() => void) | undefined;

  constructor(
    private readonly peer: SimplePeerLike,
    options: PeerLinkOptions = {},
  ) {
    super();
    this.clock = options.clock ?? systemClock;
    this.goodbyeWaitMs = options.goodbyeWaitMs ?? DEFAULT_LINK_GOODBYE_WAIT_MS;
    this.onHeard = options.onHeard;
    this.keepalive = new LinkKeepalive({
      intervalMs: options.keepaliveMs ?? DEFAULT_LINK_KEEPALIVE_MS,
      silenceLimitMs: options.silenceLimitMs ?? DEFAULT_LINK_SILENCE_LIMIT_MS,
      clock: this.clock,
      send: () => this.send(LINK_KEEPALIVE_MESSAGE),
      silent: (ms) =>
        this.close(new SessionError('link-closed', `nothing heard from the far end for ${ms} ms`)),
    });
    // Messages simple-peer already queued in its stream (before we took the channel over) still come this way.
    peer.on('data', (data) => this.onData(data));
    onPeerGone(peer, (reason) => {
      if (this.goodbyeTimer !== undefined) this.clock.clearTimeout(this.goodbyeTimer);
      // Already torn down in the usual case; if not (a half-closed stream), the connection goes too.
      peer.destroy();
      this.finish(new SessionError('link-closed', reason));
    });
    // A far end that vanished without a word (its network, a frozen or killed browser) answers no ICE checks:
    // a `disconnected` that lasts past the grace ends the link, rather than the ~10 s more `failed` takes.
    const graceMs = options.iceDisconnectedGraceMs ?? DEFAULT_ICE_DISCONNECTED_GRACE_MS;
    peer.on('iceStateChange', (state) => {
      if (this.isClosed) return;
      if (state === 'disconnected') {
        if (this.iceTimer !== undefined) return;
        this.iceTimer = this.clock.setTimeout(() => {
          this.iceTimer = undefined;
          this.close(new SessionError('link-closed', `ICE disconnected for ${graceMs} ms`));
        }, graceMs);
      } else {
        this.clearIceTimer();
      }
    });
    const channel = peer._channel;
    if (channel) {
      // Every later message straight from the channel: simple-peer would push each one through its stream
      // (streamx or Node's), a buffer and a microtask per message, on the path every cell takes at each hop.
      // A stream's queued data is flushed in a microtask, before the channel's next message event, so order holds.
      channel.onmessage = (event) => {
        const bytes = asBytes(event.data);
        if (bytes) this.onData(bytes);
        else this.close(new SessionError('malformed-frame', 'a text message on the link'));
      };
      // The channel's own event (a browser's, or the wrtc polyfill's) says the buffer fell below its threshold.
      channel.addEventListener?.('bufferedamountlow', () => {
        if (!this.isClosed) this.backpressure.check(this.peer.bufferSize);
      });
    }
  }

  override on<K extends keyof LinkEvents>(event: K, listener: (...args: LinkEvents[K]) => void): this {
    super.on(event, listener);
    if (event === 'message') {
      for (const message of this.unheard.splice(0)) if (!this.isClosed) this.emit('message', message);
    }
    return this;
  }

  get bufferedAmount(): number {
    if (this.isClosed) return 0;
    return this.backpressure.note(this.peer.bufferSize);
  }

  get closed(): boolean {
    return this.isClosed;
  }

  send(message: Uint8Array): void {
    if (this.write(message) && !this.backpressure.congested) this.backpressure.note(this.peer.bufferSize);
  }

  /** Hands one message to the channel; false if it could not (the link is closed, or closing). */
  private write(message: Uint8Array): boolean {
    if (this.isClosed) return false;
    try {
      this.peer.send(message);
      this.keepalive.sent();
      return true;
    } catch (error) {
      // The far end is closing the channel: its close event follows, and messages it sent before may still be
      // on their way in (a CLOSE cell is often its last word). Closing the link now would lose them; what we
      // sent could not arrive anyway. (Read only here: each read is a call into the native side.)
      const state = this.peer._channel?.readyState;
      if (state === 'closing' || state === 'closed') return false;
      // A DataChannel throws when its send buffer overflows or it is closing: the link is unusable either way.
      this.close(new SessionError('link-closed', `send failed: ${errorMessage(error)}`));
      return false;
    }
  }

  /**
   * Sends one keepalive for every BYTES_PER_SEND of `message` beyond the first (none for a small one), right
   * after it. Why: dcsctp lets out at most 4 packets per call — a message handed to it, or an acknowledgement
   * arriving — so a 60 kB message finding the association idle leaves 4 packets at once and the rest only as
   * acknowledgements return, doubling each round trip whatever its congestion window allows. On a long path each
   * burst of a stream then crawls out again at every hop. Each keepalive is one more call, so the message leaves
   * as fast as the congestion window allows; the far end consumes keepalives (§2). bench:wan, RTT 150 ms, one
   * stream over 10 s: 42–56 Mbit/s direct against 10–18 without, 46–57 through two hops against 13–14. Costly where round trips
   * are short (the far end handles a dozen more messages per 60 kB, and acknowledgements come back at once
   * anyway): StripedLink nudges only lanes with long round trips.
   */
  nudge(message: Uint8Array): void {
    for (let count = Math.floor(message.length / BYTES_PER_SEND); count > 0; count--)
      if (!this.write(LINK_KEEPALIVE_MESSAGE)) return;
  }

  /**
   * Closes the link at once for us; the connection stays until the far end has read what we sent (our goodbye,
   * the last message, tells it), or DEFAULT_LINK_GOODBYE_WAIT_MS.
   */
  close(error?: SessionError): void {
    if (this.isClosed) return;
    this.finish(error);
    try {
      this.peer.send(LINK_GOODBYE_MESSAGE);
    } catch {
      // The channel is closing or gone: nothing more can reach the far end, so there is nothing to wait for.
      this.peer.destroy();
      return;
    }
    this.goodbyeTimer = this.clock.setTimeout(() => this.peer.destroy(), this.goodbyeWaitMs);
  }

  private onData(data: Uint8Array): void {
    if (this.isClosed) return;
    this.keepalive.heard();
    this.onHeard?.();
    if (isLinkKeepalive(data)) return;
    if (isLinkGoodbye(data)) {
      // Everything the far end sent is read: the connection can go without losing any of it.
      this.peer.destroy();
      this.finish(new SessionError('link-closed', 'the far end closed the link'));
      return;
    }
    if (this.listenerCount('message') > 0) this.emit('message', data);
    else if (this.unheard.length < MAX_UNHEARD_MESSAGES) this.unheard.push(data);
    else this.close(new SessionError('link-closed', 'messages arrived with no one listening'));
  }

  private clearIceTimer(): void {
    if (this.iceTimer === undefined) return;
    this.clock.clearTimeout(this.iceTimer);
    this.iceTimer = undefined;
  }

  private finish(error?: SessionError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.clearIceTimer();
    this.keepalive.stop();
    this.emit('close', error);
    this.removeAllListeners();
  }
}

/** A binary DataChannel message as bytes (ArrayBuffer with binaryType 'arraybuffer'); undefined for text. */
function asBytes(data: unknown): Uint8Array | undefined {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
}
