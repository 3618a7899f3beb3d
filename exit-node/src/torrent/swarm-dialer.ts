import { connect, type Socket } from 'node:net';
import type { TorrentPolicy } from './torrent-policy.js';

/** Peer addresses waiting for a connection slot; more than this and new ones are dropped. */
const MAX_QUEUED_PEERS = 500;

export interface SwarmDialerOptions {
  policy: TorrentPolicy;
  bindAddress: string | undefined;
  /** Outgoing connections (pending and open) at once for this torrent. */
  maxConns: number;
  connectTimeoutMs: number;
  /** Hands a connected socket to WebTorrent; false if it would not take it. */
  deliver: (socket: Socket, id: string) => boolean;
}

/**
 * The torrent's outgoing TCP connections to swarm peers. WebTorrent would dial them itself with an unbound
 * `net.connect`, so the swarm would see whatever source address the system picks; instead every peer it
 * learns (tracker, DHT, PEX, x.pe) comes here, through the policy, and is dialed from the exit's bind
 * address, then handed to WebTorrent as an already connected peer.
 */
export class SwarmDialer {
  private readonly queue: { address: string; port: number }[] = [];
  private readonly seen = new Set<string>();
  private readonly sockets = new Set<Socket>();
  private closed = false;

  constructor(private readonly options: SwarmDialerOptions) {}

  get connections(): number {
    return this.sockets.size;
  }

  /** A peer address as WebTorrent has it ("1.2.3.4:6881", "[::1]:6881"); false if the policy refused it. */
  offer(peer: string): boolean {
    const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(peer);
    if (!match) return false;
    const address = match[1]!;
    const port = Number(match[2]);
    if (!this.options.policy.allows('peer', address, port)) return false;
    const key = `${address}:${port}`;
    if (this.closed || this.seen.has(key) || this.queue.length >= MAX_QUEUED_PEERS) return true;
    this.seen.add(key);
    this.queue.push({ address, port });
    this.pump();
    return true;
  }

  close(): void {
    this.closed = true;
    this.queue.length = 0;
    for (const socket of this.sockets) socket.destroy();
  }

  private pump(): void {
    while (!this.closed && this.sockets.size < this.options.maxConns && this.queue.length > 0) {
      const { address, port } = this.queue.shift()!;
      this.dial(address, port);
    }
  }

  private dial(address: string, port: number): void {
    const socket = connect({
      host: address,
      port,
      ...(this.options.bindAddress ? { localAddress: this.options.bindAddress } : {}),
    });
    this.sockets.add(socket);
    socket.setTimeout(this.options.connectTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      this.sockets.delete(socket);
      // Known again once gone: a later announce may offer it anew (and is not more often than trackers say).
      this.seen.delete(`${address}:${port}`);
      this.pump();
    });
    socket.once('connect', () => {
      socket.setTimeout(0);
      if (this.closed || !this.options.deliver(socket, `${address}:${port}`)) socket.destroy();
    });
  }
}
