import type { ExtensionWire, WireExtension } from './selection-extension.js';
import { swarmPeersExtension } from './swarm-peers-extension.js';

/** The user's end of the exit's BitTorrent wire (a bittorrent-protocol Wire): the part the user's side uses. */
export interface ExitWire extends ExtensionWire {
  /** Registers a BEP 10 extension; before the wire's extended handshake goes out, or the far end never hears of it. */
  use(extension: WireExtension): void;
  /** The wire's download speed meter: records `bytes` when given, and returns bytes per second. */
  downloadSpeed(bytes?: number): number;
  /** Tells the far end a piece was verified (BitTorrent's `have`). */
  have(index: number): void;
  /** 'extended' is emitted for every extension message; its first argument is 'handshake' for the handshake. */
  on(event: 'extended', listener: (extension: string | number) => void): unknown;
  readonly destroyed: boolean;
}

/** WebTorrent's peers of a torrent by id (`torrent._peers`, internal): a peer added as a connected object has its wire at once. */
export interface PeersById {
  get(id: string): { wire?: unknown } | undefined;
}

/**
 * The floor under the exit wire's measured download speed, in bytes per second. WebTorrent keeps
 * 2 + ⌈0.5 s × speed ÷ 16 KiB⌉ requests outstanding on a wire, and its meter averages over 5 s: a new wire
 * starts with 2 requests (32 KiB) in flight, which on a path of a few tens of milliseconds (two relays, an
 * exit busy fetching from the swarm) is a trickle that takes seconds to grow. With this floor at least
 * 2 + 32 requests (512 KiB, two stream windows) are outstanding: the path never idles for lack of requests,
 * and the stream's flow control, not the request count, bounds what is in flight. Only this one wire is
 * affected; the torrent's own speed (what the user sees) is measured apart.
 */
export const EXIT_WIRE_MIN_SPEED = 1024 * 1024;

/** The wire WebTorrent made for the peer added with id `peerId`, if it has one of the expected shape. */
export function exitWireOf(peers: PeersById | null | undefined, peerId: string): ExitWire | undefined {
  const wire = peers?.get(peerId)?.wire;
  return isExitWire(wire) ? wire : undefined;
}

/**
 * Readies the user's end of a new exit wire, right after `torrent.addPeer` (before the exit's handshake can
 * arrive): announces the swarm-peers extension, whose counts go to `onSwarmPeers`; puts the floor under the
 * wire's request pipeline; and sends the exit no `have` messages. WebTorrent sends one for each piece it
 * verifies, each on its own turn of the event loop, so each became a cell of its own (a third of the user's
 * DataChannel messages during a download, as many as all its flow-control messages) and cost the exit's
 * WebTorrent an update of the whole torrent; and the exit uses nothing they say: it fetches from the swarm,
 * never from its users. The exit still learns the pieces the user had when the wire started (its bitfield).
 */
export function prepareExitWire(wire: ExitWire, options: { onSwarmPeers(peers: number): void }): void {
  wire.use(swarmPeersExtension(options.onSwarmPeers));
  const measure = wire.downloadSpeed;
  wire.downloadSpeed = (bytes?: number) => Math.max(measure(bytes), EXIT_WIRE_MIN_SPEED);
  wire.have = () => {};
}

function isExitWire(value: unknown): value is ExitWire {
  if (typeof value !== 'object' || value === null) return false;
  const wire = value as Record<string, unknown>;
  return ['use', 'extended', 'downloadSpeed', 'have', 'on'].every((name) => typeof wire[name] === 'function');
}
