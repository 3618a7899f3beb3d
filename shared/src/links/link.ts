import type { Emitter } from '../emitter.js';
import type { SessionError } from '../errors.js';

export type LinkEvents = {
  message: [message: Uint8Array];
  /** bufferedAmount fell below the low-water mark after having been above it. */
  drain: [];
  close: [error?: SessionError];
};

/**
 * One reliable, ordered, message-oriented pipe between two peers: in practice a WebRTC DataChannel, in unit
 * tests an in-memory pair. Engines see only this interface; hosts adapt simple-peer (or a WebSocket) to it.
 */
export interface Link extends Pick<Emitter<LinkEvents>, 'on' | 'once' | 'off'> {
  send(message: Uint8Array): void;
  /** Bytes queued locally and not yet handed to the network. */
  readonly bufferedAmount: number;
  readonly closed: boolean;
  close(error?: SessionError): void;
  /**
   * Lets the transport send more of what it holds now, after a large message: see PeerLink's `nudge`. Only links
   * whose transport releases data in bursts per call (WebRTC) have it.
   */
  nudge?(message: Uint8Array): void;
}

/** Above this many buffered bytes a sender should wait for `drain`. */
export const LINK_HIGH_WATER = 1024 * 1024;
export const LINK_LOW_WATER = 256 * 1024;
