import type { Socket } from 'node:net';
import { join } from 'node:path';
import type WebTorrent from 'webtorrent';
import type { Torrent, TorrentFile, Wire } from 'webtorrent';
import type { Clock } from '@underpass/shared/clock';
import { errorMessage } from '@underpass/shared/errors';
import type { ByteStream } from '@underpass/shared/streams';
import {
  PeerDuplex,
  SWARM_PEERS_MIN_INTERVAL_MS,
  selectionExtension,
  sendSwarmPeers,
} from '@underpass/shared/torrent';
import { HttpAnnouncer } from './http-announcer.js';
import { recentPiecesStore } from './recent-pieces-store.js';
import { swarmTrackerOptions } from './swarm-client.js';
import { SwarmDialer } from './swarm-dialer.js';
import type { TorrentLimits } from './torrent-limits.js';
import type { TorrentPolicy } from './torrent-policy.js';
import { UdpAnnouncer } from './udp-announcer.js';

/** Trackers one torrent announces to, its first user's and later users' together (the OPEN carries ≤ 32). */
export const MAX_TRACKERS_PER_TORRENT = 64;

/** Byte counters the service's stats read; every torrent adds to the same ones. */
export interface SwarmCounters {
  bytesFromSwarm: number;
  bytesToSwarm: number;
  bytesToUsers: number;
  /** Times a torrent reached its upload cap (ratio) and choked the swarm. */
  uploadCapHits: number;
}

export interface SwarmTorrentOptions {
  client: WebTorrent;
  policy: TorrentPolicy;
  infoHash: string;
  /** Judged already: http(s) for WebTorrent's tracker client, udp (rewritten to addresses) for ours. */
  trackers: readonly string[];
  /** The policy's fetch dispatcher for HTTP(S) trackers (for those a later user brings). */
  trackerAgent: object | undefined;
  dataDir: string;
  bindAddress: string | undefined;
  limits: Pick<
    TorrentLimits,
    'maxSwarmConns' | 'peerConnectTimeoutMs' | 'uploadToSwarm' | 'uploadRatio' | 'uploadGraceBytes'
  >;
  clock: Clock;
  counters: SwarmCounters;
  onMetadata: () => void;
  onReady: () => void;
  onError: (message: string) => void;
  /** A user sent a new file selection on its wire (the selection extension). */
  onUserSelection: (userId: string, files: number[]) => void;
  onWarning: (message: string) => void;
}

/**
 * One infohash in the swarm: the WebTorrent torrent, with every peer it learns by address sent through the
 * policy to our dialer (bound to the exit's address), UDP trackers announced to by our bound client, swarm
 * wires kept choked unless the exit uploads to the swarm, and users' streams joined as peers.
 */
export class SwarmTorrent {
  readonly torrent: Torrent;
  private readonly dialer: SwarmDialer;
  private announcer: UdpAnnouncer | undefined;
  /** Every tracker this torrent announces to (first user's and later ones'), at most MAX_TRACKERS_PER_TORRENT. */
  private readonly trackers = new Set<string>();
  private readonly httpAnnouncers: HttpAnnouncer[] = [];
  /** Users' wires, with the user's id. */
  private readonly userWires = new WeakMap<Wire, string>();
  /** Users' wires that announced the swarm-peers extension, with the count each was last told. */
  private readonly told = new Map<Wire, number | undefined>();
  private lastTold = Number.NEGATIVE_INFINITY;
  private tellTimer: unknown;
  private readonly swarmWires = new Set<Wire>();
  /** This torrent's bytes to and from the swarm, for its upload cap. */
  private uploaded = 0;
  private downloaded = 0;
  private uploadCapped = false;
  private readonly addPeer: (peer: object, source?: string) => boolean;

  constructor(private readonly options: SwarmTorrentOptions) {
    const { client, infoHash, counters } = options;
    const udpTrackers = options.trackers.filter((url) => url.startsWith('udp:'));
    // A bare magnet: no x.pe, xs, as or ws reaches WebTorrent, whatever the user's magnet had.
    const torrent = client.add(`magnet:?xt=urn:btih:${infoHash}`, {
      announce: options.trackers.filter((url) => !url.startsWith('udp:')),
      path: join(options.dataDir, infoHash),
      store: recentPiecesStore(),
      deselect: true,
    });
    this.torrent = torrent;
    const addPeer = torrent.addPeer.bind(torrent);
    this.addPeer = addPeer;
    const dialer = new SwarmDialer({
      policy: options.policy,
      bindAddress: options.bindAddress,
      maxConns: options.limits.maxSwarmConns,
      connectTimeoutMs: options.limits.peerConnectTimeoutMs,
      deliver: (socket: Socket, id: string) =>
        !torrent.destroyed && addPeer(Object.assign(socket, { id, connected: true })),
    });
    this.dialer = dialer;
    // Every peer learnt by address (tracker, DHT, PEX) goes to the policy and our dialer, never to
    // WebTorrent's own unbound dial; objects (users' streams, dialed sockets) go straight in.
    torrent.addPeer = (peer: string | object, source?: string) =>
      typeof peer === 'string' ? (dialer.offer(peer), false) : addPeer(peer, source);
    for (const url of options.trackers.slice(0, MAX_TRACKERS_PER_TORRENT)) this.trackers.add(url);
    if (udpTrackers.length > 0) this.announcer = this.udpAnnouncer(udpTrackers);
    torrent.on('wire', (wire) => this.onWire(wire, counters));
    torrent.on('metadata', options.onMetadata);
    torrent.on('ready', options.onReady);
    torrent.on('error', (error) => options.onError(errorMessage(error)));
    torrent.on('warning', (warning) => options.onWarning(errorMessage(warning)));
  }

  get files(): readonly TorrentFile[] {
    return this.torrent.files;
  }

  get swarmPeers(): number {
    return this.swarmWires.size;
  }

  /** Bytes of these files together. */
  bytesOf(files: readonly number[]): number {
    return files.reduce((sum, index) => sum + (this.torrent.files[index]?.length ?? 0), 0);
  }

  /**
   * Fetch exactly these files: deselect everything first, then select (a file's own deselect would drop
   * a boundary piece that a selected neighbour shares).
   */
  select(files: readonly number[]): void {
    const { torrent } = this;
    if (torrent.destroyed || torrent.pieces.length === 0) return;
    torrent.deselect(0, torrent.pieces.length - 1);
    for (const index of files) torrent.files[index]?.select();
  }

  /** Joins a user's stream as a peer; false if WebTorrent would not take it. */
  addUser(stream: ByteStream, id: string): boolean {
    if (!this.addPeer(new PeerDuplex(stream, id))) return false;
    // A peer added as a connected object has its wire at once: mark it as a user's before its handshake.
    const wire = this.torrent._peers?.get(id)?.wire;
    if (wire) {
      this.userWires.set(wire, id);
      wire.on('upload', (sent) => (this.options.counters.bytesToUsers += sent));
      // Users are never choked: they are what the exit is for.
      Object.assign(wire, { choke: () => {} });
    }
    return true;
  }

  /**
   * Trackers a later user of this torrent brought (judged already, like the first user's): announced to as
   * well, new ones only, up to MAX_TRACKERS_PER_TORRENT in all. Returns how many were added.
   */
  addTrackers(urls: readonly string[]): number {
    const fresh = urls
      .filter((url) => !this.trackers.has(url))
      .slice(0, Math.max(0, MAX_TRACKERS_PER_TORRENT - this.trackers.size));
    if (fresh.length === 0 || this.torrent.destroyed) return 0;
    for (const url of fresh) this.trackers.add(url);
    const udp = fresh.filter((url) => url.startsWith('udp:'));
    const http = fresh.filter((url) => !url.startsWith('udp:'));
    if (udp.length > 0) {
      if (this.announcer) udp.forEach((url) => this.announcer!.add(url));
      else this.announcer = this.udpAnnouncer(udp);
    }
    if (http.length > 0) {
      const { torrent } = this;
      this.httpAnnouncers.push(
        new HttpAnnouncer({
          trackers: http,
          infoHash: this.options.infoHash,
          peerId: this.options.client.peerId,
          port: this.options.client.address()?.port ?? 0,
          trackerOptions: swarmTrackerOptions(this.options.trackerAgent),
          announceState: () => ({
            uploaded: torrent.uploaded,
            downloaded: torrent.downloaded,
            left: this.left(),
          }),
          onPeer: (peer) => torrent.addPeer(peer, 'tracker'),
          onWarning: this.options.onWarning,
        }),
      );
    }
    return fresh.length;
  }

  /** Stops finding and dialing peers (the torrent itself is removed by the caller, with or without data). */
  close(): void {
    this.dialer.close();
    this.announcer?.stop();
    for (const announcer of this.httpAnnouncers.splice(0)) announcer.stop();
    if (this.tellTimer !== undefined) this.options.clock.clearTimeout(this.tellTimer);
    this.tellTimer = undefined;
    this.told.clear();
  }

  private udpAnnouncer(trackers: readonly string[]): UdpAnnouncer {
    const { torrent, options } = this;
    return new UdpAnnouncer({
      trackers,
      infoHash: options.infoHash,
      peerId: options.client.peerId,
      port: options.client.address()?.port ?? 0,
      left: () => this.left(),
      socket: () => options.policy.udpSocket('udp-tracker'),
      onPeers: (peers) => peers.forEach((peer) => torrent.addPeer(peer, 'tracker')),
      clock: options.clock,
    });
  }

  /** Bytes still wanted, as announces say it (1 before the metadata: not a seeder). */
  private left(): number {
    const { torrent } = this;
    return torrent.ready ? Math.max(0, torrent.length - torrent.downloaded) : 1;
  }

  /**
   * The swarm's connections changed: users are told the new count, at most once every
   * SWARM_PEERS_MIN_INTERVAL_MS (a swarm's connections come and go in bursts).
   */
  private swarmChanged(): void {
    if (this.tellTimer !== undefined || this.told.size === 0) return;
    const { clock } = this.options;
    const wait = this.lastTold + SWARM_PEERS_MIN_INTERVAL_MS - clock.now();
    if (wait <= 0) return this.tellUsers();
    this.tellTimer = clock.setTimeout(() => {
      this.tellTimer = undefined;
      this.tellUsers();
    }, wait);
  }

  private tellUsers(): void {
    this.lastTold = this.options.clock.now();
    for (const wire of this.told.keys()) this.tell(wire);
  }

  /** Tells one user's wire the count, unless it has it already. */
  private tell(wire: Wire): void {
    if (wire.destroyed) return void this.told.delete(wire);
    const peers = this.swarmPeers;
    if (this.told.get(wire) !== peers && sendSwarmPeers(wire, peers)) this.told.set(wire, peers);
  }

  private onWire(wire: Wire, counters: SwarmCounters): void {
    const userId = this.userWires.get(wire);
    if (userId !== undefined) {
      // Registered in the 'wire' event, before the extended handshake that announces it goes out.
      wire.use(selectionExtension((files) => this.options.onUserSelection(userId, files)));
      // The user's extended handshake says whether it hears swarm peers: if so, it is told at once.
      wire.on('extended', (extension) => {
        if (extension !== 'handshake' || this.told.has(wire) || !sendSwarmPeers(wire, this.swarmPeers))
          return;
        this.told.set(wire, this.swarmPeers);
      });
      wire.on('close', () => this.told.delete(wire));
      return;
    }
    this.swarmWires.add(wire);
    this.swarmChanged();
    wire.on('close', () => {
      this.swarmWires.delete(wire);
      this.swarmChanged();
    });
    wire.on('download', (bytes) => {
      counters.bytesFromSwarm += bytes;
      this.downloaded += bytes;
      this.checkUploadCap();
    });
    wire.on('upload', (bytes) => {
      counters.bytesToSwarm += bytes;
      this.uploaded += bytes;
      this.checkUploadCap();
    });
    // Incoming connections are never refused by WebTorrent: cap them here.
    if (this.swarmWires.size > this.options.limits.maxSwarmConns) return wire.destroy();
    if (!this.options.limits.uploadToSwarm) {
      wire.choke();
      Object.assign(wire, { unchoke: () => {} });
      return;
    }
    // Uploading, within the ratio: WebTorrent unchokes as it sees fit, except while the torrent is capped.
    const unchoke = wire.unchoke.bind(wire);
    Object.assign(wire, { unchoke: () => (this.uploadCapped ? undefined : unchoke()) });
    if (this.uploadCapped) wire.choke();
  }

  /** Chokes every swarm peer once the torrent uploaded its share; lets WebTorrent unchoke them again below it. */
  private checkUploadCap(): void {
    const { uploadToSwarm, uploadRatio, uploadGraceBytes } = this.options.limits;
    if (!uploadToSwarm) return;
    const over = this.uploaded >= uploadRatio * this.downloaded + uploadGraceBytes;
    if (over === this.uploadCapped) return;
    this.uploadCapped = over;
    if (!over) return; // WebTorrent's rechoke (every 10 s) unchokes whom it chooses
    this.options.counters.uploadCapHits += 1;
    for (const wire of this.swarmWires) wire.choke();
  }
}
