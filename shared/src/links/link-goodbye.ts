import { isLinkControlMessage } from './link-keepalive.js';

/**
 * The goodbye message of a WebRTC link (PROTOCOL.md §2): cell type 5 on the reserved circuit id 0, no payload —
 * "nothing more comes from me". It is sent after a link's last message, and a far end that reads it has read
 * everything before it, so it tears the connection down; the end that said goodbye then sees the connection go.
 * Why not just close: tearing the connection down aborts it, and closing the DataChannel alone first is no
 * better in @roamhq/wrtc, which then drops what its SCTP still holds (over real WebRTC, 2 to 39 of 40 messages
 * sent just before either never arrived).
 */
export const LINK_GOODBYE_MESSAGE: Uint8Array = Uint8Array.of(5, 0, 0, 0, 0);

export function isLinkGoodbye(message: Uint8Array): boolean {
  return isLinkControlMessage(message, LINK_GOODBYE_MESSAGE[0]!);
}

/**
 * How long a link that said goodbye waits for the far end to tear the connection down before it does so
 * itself: a far end that stopped reading, or one from before the goodbye, holds a connection no longer. Not
 * less: what the link sent last may need SCTP's retransmission timer to arrive, which backs off (0.4, 0.8,
 * 1.6 s …); on loopback a burst overflows the receiving socket, and over real WebRTC a close after 800 kB took
 * up to 2 s to be read.
 */
export const DEFAULT_LINK_GOODBYE_WAIT_MS = 5_000;
