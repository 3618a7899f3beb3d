import type { ExtensionWire, WireExtension } from './selection-extension.js';

/**
 * How many swarm peers the exit's torrent service has for this torrent, told to the user on the open `torrent`
 * stream as a BEP 10 extension message from the exit: the user's own client has exactly one peer (the exit),
 * so this is the only way it learns how well the torrent is seeded. The payload is the UTF-8 JSON text of an
 * object `{"peers": N}` (N a whole number), sent raw; keys it does not know are ignored by the user's side, so
 * the exit may tell more later. The exit sends it once the user's extended handshake announced the extension,
 * then when the count changes, at most once every SWARM_PEERS_MIN_INTERVAL_MS.
 */
export const SWARM_PEERS_EXTENSION = 'underpass_peers';

/** The exit tells a change at most this often per torrent (a swarm's connections come and go in bursts). */
export const SWARM_PEERS_MIN_INTERVAL_MS = 5_000;

/** A longer message is not one the exit sends: it is ignored unread. */
export const MAX_SWARM_PEERS_MESSAGE_BYTES = 256;

/** No exit holds more connections than this for one torrent; a larger count is not believed. */
export const MAX_SWARM_PEERS = 100_000;

export function encodeSwarmPeers(peers: number): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ peers }));
}

/** The count in a message, or undefined if it is not `{"peers": N}` with 0 ≤ N ≤ MAX_SWARM_PEERS within the size. */
export function decodeSwarmPeers(message: Uint8Array): number | undefined {
  if (message.length > MAX_SWARM_PEERS_MESSAGE_BYTES) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(message));
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const peers = (value as { peers?: unknown }).peers;
  return Number.isInteger(peers) && (peers as number) >= 0 && (peers as number) <= MAX_SWARM_PEERS
    ? (peers as number)
    : undefined;
}

/** The user's side: the extension for `wire.use`, calling `onPeers` with each count the exit sends. */
export function swarmPeersExtension(onPeers: (peers: number) => void): WireExtension {
  class SwarmPeersExtension {
    onMessage(message: Uint8Array): void {
      const peers = decodeSwarmPeers(message);
      if (peers !== undefined) onPeers(peers);
    }
  }
  // bittorrent-protocol reads the name from the prototype before it constructs the extension.
  Object.defineProperty(SwarmPeersExtension.prototype, 'name', { value: SWARM_PEERS_EXTENSION });
  return SwarmPeersExtension;
}

/** The exit's side: tells the count; false if the user did not announce the extension (nothing is sent). */
export function sendSwarmPeers(wire: ExtensionWire, peers: number): boolean {
  if (!wire.peerExtendedMapping?.[SWARM_PEERS_EXTENSION]) return false;
  wire.extended(SWARM_PEERS_EXTENSION, encodeSwarmPeers(peers));
  return true;
}
