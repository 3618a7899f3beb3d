import { randomBytes } from 'node:crypto';
import type dgram from 'node:dgram';
import type { Clock } from '@underpass/shared/clock';

/** BEP 15's magic first word of a connect request. */
const PROTOCOL_ID = 0x41727101980n;
const ACTION_CONNECT = 0;
const ACTION_ANNOUNCE = 1;
const EVENT_STARTED = 2;
/** One request's wait for its answer (BEP 15 says 15 s, then doubling; one try per round is enough here). */
const REQUEST_TIMEOUT_MS = 15_000;
/** Re-announce bounds, whatever the tracker asks: not more often than a minute, at least every 30 minutes. */
const MIN_INTERVAL_MS = 60_000;
const MAX_INTERVAL_MS = 30 * 60_000;
const RETRY_MS = 60_000;

export interface UdpAnnouncerOptions {
  /** `udp://IP:port` URLs already resolved and judged by the policy. */
  trackers: readonly string[];
  infoHash: string;
  /** The client's peer id (40 hex) and listening port, as the swarm should know them. */
  peerId: string;
  port: number;
  /** Bytes still wanted (0 once complete): part of every announce. */
  left: () => number;
  /** A socket whose sends the policy vets and whose source is the exit's bind address. */
  socket: () => dgram.Socket;
  onPeers: (peers: string[]) => void;
  clock: Clock;
}

/**
 * Announces one torrent to UDP trackers (BEP 15) from the exit's bind address. bittorrent-tracker's own UDP
 * client sends from an unbound socket, so the tracker would see whatever source the system picks; this one
 * uses a bound socket, and hands the peers it learns to the same gate as every other source.
 */
export class UdpAnnouncer {
  private readonly timers = new Set<unknown>();
  private readonly sockets = new Set<dgram.Socket>();
  private stopped = false;

  constructor(private readonly options: UdpAnnouncerOptions) {
    for (const tracker of options.trackers) this.announce(tracker, EVENT_STARTED);
  }

  /** Starts announcing to one more tracker (a later user's), judged by the policy like the first ones. */
  add(tracker: string): void {
    if (!this.stopped) this.announce(tracker, EVENT_STARTED);
  }

  stop(): void {
    this.stopped = true;
    for (const timer of this.timers) this.options.clock.clearTimeout(timer);
    for (const socket of this.sockets) closeQuietly(socket);
    this.timers.clear();
    this.sockets.clear();
  }

  private later(ms: number, run: () => void): void {
    const timer = this.options.clock.setTimeout(() => {
      this.timers.delete(timer);
      if (!this.stopped) run();
    }, ms);
    this.timers.add(timer);
  }

  private announce(tracker: string, event: number): void {
    const url = new URL(tracker);
    const host = url.hostname;
    const port = Number(url.port) || 80;
    const socket = this.options.socket();
    this.sockets.add(socket);
    let finished = false;
    const done = (nextMs: number) => {
      if (finished) return; // one round ends once: a late error after the answer schedules nothing more
      finished = true;
      this.options.clock.clearTimeout(timeout);
      this.sockets.delete(socket);
      closeQuietly(socket);
      if (!this.stopped) this.later(nextMs, () => this.announce(tracker, 0));
    };
    const timeout = this.options.clock.setTimeout(() => done(RETRY_MS), REQUEST_TIMEOUT_MS);
    socket.on('error', () => done(RETRY_MS));
    let transaction = randomBytes(4).readUInt32BE();
    socket.on('message', (message: Buffer) => {
      if (message.length < 8 || message.readUInt32BE(4) !== transaction) return;
      const action = message.readUInt32BE(0);
      if (action === ACTION_CONNECT && message.length >= 16) {
        transaction = randomBytes(4).readUInt32BE();
        socket.send(this.announceRequest(message.subarray(8, 16), transaction, event), port, host);
      } else if (action === ACTION_ANNOUNCE && message.length >= 20) {
        const peers: string[] = [];
        for (let offset = 20; offset + 6 <= message.length; offset += 6) {
          peers.push(`${message.subarray(offset, offset + 4).join('.')}:${message.readUInt16BE(offset + 4)}`);
        }
        if (peers.length > 0) this.options.onPeers(peers);
        const interval = message.readUInt32BE(8) * 1000;
        done(Math.min(MAX_INTERVAL_MS, Math.max(MIN_INTERVAL_MS, interval)));
      } else {
        done(RETRY_MS); // an error answer (action 3) or something else
      }
    });
    const connect = Buffer.alloc(16);
    connect.writeBigUInt64BE(PROTOCOL_ID, 0);
    connect.writeUInt32BE(ACTION_CONNECT, 8);
    connect.writeUInt32BE(transaction, 12);
    socket.bind(0, () => socket.send(connect, port, host));
  }

  private announceRequest(connectionId: Uint8Array, transaction: number, event: number): Buffer {
    const request = Buffer.alloc(98);
    request.set(connectionId, 0);
    request.writeUInt32BE(ACTION_ANNOUNCE, 8);
    request.writeUInt32BE(transaction, 12);
    request.write(this.options.infoHash, 16, 'hex');
    request.write(this.options.peerId, 36, 'hex');
    request.writeBigUInt64BE(0n, 56); // downloaded
    request.writeBigUInt64BE(BigInt(Math.max(0, this.options.left())), 64);
    request.writeBigUInt64BE(0n, 72); // uploaded
    request.writeUInt32BE(event, 80);
    request.writeUInt32BE(0, 84); // IP: the tracker takes the source address
    request.writeUInt32BE(randomBytes(4).readUInt32BE(), 88); // key
    request.writeInt32BE(-1, 92); // as many peers as the tracker gives
    request.writeUInt16BE(this.options.port, 96);
    return request;
  }
}

/** Closing a socket that failed to bind throws; there is nothing left to close then. */
function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // already closed
  }
}
