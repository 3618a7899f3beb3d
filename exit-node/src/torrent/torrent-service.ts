// The exit's torrent service: one cohesive thing (a download per infohash, its users, its limits and its
// lifecycle), hence a little over the usual file length. Policy, dialing, disk accounting and the stream pair
// live in their own files beside it.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import WebTorrent, { type Torrent, type Wire } from 'webtorrent';
import { systemClock, type Clock } from '@underpass/shared/clock';
import { errorMessage } from '@underpass/shared/errors';
import type { ExitPolicy, PortRange } from '@underpass/shared/exit';
import { silentLogger, type Logger } from '@underpass/shared/logger';
import type { ByteStream } from '@underpass/shared/streams';
import { PeerDuplex } from '@underpass/shared/torrent';
import { DiskBudget } from './disk-budget.js';
import { policyHttpAgent } from './policy-http-agent.js';
import { byteStreamPair } from './stream-pair.js';
import { SwarmDialer } from './swarm-dialer.js';
import { UdpAnnouncer } from './udp-announcer.js';
import {
  DEFAULT_TORRENT_LIMITS,
  DEFAULT_TORRENT_LISTEN_PORT,
  TORRENT_REFUSAL_CODES,
  TorrentRefusal,
  type TorrentLimits,
  type TorrentRefusalCode,
} from './torrent-limits.js';
import { TorrentPolicy, type Lookup, type PolicyLayer } from './torrent-policy.js';

/** What a user asks of the torrent service when it opens a `torrent` stream (the OPEN request's fields). */
export type TorrentOpen = {
  infoHash: string /* 40 lowercase hex */;
  trackers: string[];
  files: number[]; /* empty: all */
};

/** Who is asking: the per-session limit counts torrents by session. */
export interface TorrentDialContext {
  sessionId: string;
}

/**
 * The exit's torrent service, as the stream router calls it: resolves at once with the stream end that the
 * service joins to its WebTorrent (it holds the user's wire until it has the metadata); rejects, or later
 * destroys the stream, with a TorrentRefusal.
 */
export interface TorrentDialer {
  dial(request: TorrentOpen, context?: TorrentDialContext): Promise<ByteStream>;
  close(): Promise<void>;
}

export interface TorrentServiceOptions {
  /** The exit's address policy (`--allow-destination` included); its port list is for `tcp` streams only. */
  policy: ExitPolicy;
  /** Torrent data lives under DATA_DIR/<infohash>/ (WebTorrent's file store, not memory). */
  dataDir: string;
  /** The exit's address: the listener and every outgoing socket use it, and it is never a destination. */
  bindAddress?: string;
  ownAddresses?: readonly string[];
  /** Incoming swarm connections; 0 picks a free port. */
  listenPort?: number;
  /** The DHT (on by default, with its public bootstrap nodes), or false. */
  dht?: boolean | { bootstrap: string[] };
  /** UDP trackers (on by default; announced to from the bind address by UdpAnnouncer). */
  udpTrackers?: boolean;
  deniedPorts?: readonly PortRange[];
  limits?: Partial<TorrentLimits>;
  lookup?: Lookup;
  logger?: Logger;
  clock?: Clock;
}

export interface TorrentServiceStats {
  /** Torrents in the swarm (fetching metadata, serving users, or idle before the timeout). */
  torrents: number;
  /** Users attached to a torrent, and users waiting for its metadata. */
  users: number;
  waitingUsers: number;
  swarmPeers: number;
  bytesFromSwarm: number;
  bytesToSwarm: number;
  bytesToUsers: number;
  diskBytes: number;
  evictions: number;
  refusals: Record<TorrentRefusalCode, number>;
  /** Destinations the policy refused, by where they came from. */
  policyDenials: Record<PolicyLayer, number>;
}

interface User {
  readonly id: string;
  readonly sessionId: string;
  readonly files: readonly number[];
  /** The service's end of the user's stream pair. */
  readonly end: ByteStream;
  attached: boolean;
}

interface Download {
  readonly infoHash: string;
  torrent: Torrent | undefined;
  dialer: SwarmDialer | undefined;
  announcer: UdpAnnouncer | undefined;
  readonly users: Set<User>;
  readonly userWires: WeakSet<Wire>;
  readonly swarmWires: Set<Wire>;
  ready: boolean;
  metadataTimer: unknown;
  idleTimer: unknown;
}

const INFOHASH = /^[0-9a-f]{40}$/;

export class TorrentService implements TorrentDialer {
  private readonly limits: TorrentLimits;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly downloads = new Map<string, Download>();
  private readonly sessions = new Map<string, Map<string, number>>();
  private readonly disk: DiskBudget;
  /** Directory removals in progress: a torrent is not added again before its old data is gone. */
  private readonly removals = new Map<string, Promise<void>>();
  private readonly counters = { bytesFromSwarm: 0, bytesToSwarm: 0, bytesToUsers: 0, evictions: 0 };
  private readonly refusals = Object.fromEntries(TORRENT_REFUSAL_CODES.map((code) => [code, 0])) as Record<
    TorrentRefusalCode,
    number
  >;
  private nextUserId = 1;
  private closed = false;

  /** Starts the service: its WebTorrent listening, its DHT bound, its tracker agent ready. */
  static async start(options: TorrentServiceOptions): Promise<TorrentService> {
    const denials: Record<PolicyLayer, number> = {
      peer: 0,
      'http-tracker': 0,
      'udp-tracker': 0,
      'tracker-url': 0,
      dht: 0,
    };
    const policy = new TorrentPolicy({
      policy: options.policy,
      bindAddress: options.bindAddress,
      ownAddresses: options.ownAddresses,
      deniedPorts: options.deniedPorts,
      lookup: options.lookup,
      onDenied: (layer) => (denials[layer] += 1),
    });
    const agent = await policyHttpAgent(policy, options.bindAddress);
    const service = new TorrentService(options, policy, agent, denials);
    await service.listening;
    return service;
  }

  private readonly client: WebTorrent;
  private readonly listening: Promise<void>;

  private constructor(
    private readonly options: TorrentServiceOptions,
    private readonly policy: TorrentPolicy,
    private readonly trackerAgent: object | undefined,
    private readonly policyDenials: Record<PolicyLayer, number>,
  ) {
    this.limits = { ...DEFAULT_TORRENT_LIMITS, ...options.limits };
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.disk = new DiskBudget(this.limits.diskBudgetBytes);
    const { bindAddress } = options;
    const dht = options.dht ?? true;
    this.client = new WebTorrent({
      torrentPort: {
        port: options.listenPort ?? DEFAULT_TORRENT_LISTEN_PORT,
        ...(bindAddress ? { host: bindAddress } : {}),
      },
      // uTP stays off: utp-native's listener binds 0.0.0.0 whatever WebTorrent asks and answers from the
      // primary address, so the swarm would see another address than the bind address.
      utp: false,
      lsd: false,
      natUpnp: false,
      natPmp: false,
      webSeeds: false,
      // Users' wires count against WebTorrent's own cap; the swarm's are capped by SwarmDialer and onWire.
      maxConns: this.limits.maxSwarmConns + this.limits.maxUsersPerTorrent,
      tracker: {
        wrtc: false,
        // `socksProxy: {}` is a no-op that keeps bittorrent-tracker's UDP client from crashing on a
        // proxyOpts without it (it clones socksProxy through JSON).
        proxyOpts: trackerAgent
          ? { httpAgent: trackerAgent, httpsAgent: trackerAgent, socksProxy: {} }
          : { socksProxy: {} },
      },
      dht:
        dht === false
          ? false
          : { socket: policy.udpSocket('dht'), ...(dht === true ? {} : { bootstrap: dht.bootstrap }) },
    });
    // Backstop: WebTorrent checks this for every peer added by address (our addPeer gate comes first).
    this.client.blocked = { contains: (host) => !policy.allows('peer', host) };
    this.client.on('error', (error) =>
      this.logger.error(
        { event: 'torrent-client-error', error: errorMessage(error) },
        'torrent client error',
      ),
    );
    this.listening = new Promise((resolve) => this.client.once('listening', () => resolve()));
  }

  /** The address and port swarm peers reach this exit at. */
  address(): { address: string; port: number } | undefined {
    const address = this.client.address();
    return address ? { address: address.address, port: address.port } : undefined;
  }

  async dial(request: TorrentOpen, context?: TorrentDialContext): Promise<ByteStream> {
    if (this.closed) throw this.refuse('unreachable', 'the torrent service is closed');
    const { infoHash } = request;
    if (!INFOHASH.test(infoHash)) throw this.refuse('policy-denied', 'not an infohash');
    const sessionId = context?.sessionId ?? `anonymous-${this.nextUserId}`;
    let download = this.downloads.get(infoHash);
    if (!download && this.downloads.size >= this.limits.maxTorrents) {
      throw this.refuse('limit', `the exit holds ${this.limits.maxTorrents} torrents already`);
    }
    const held = this.sessions.get(sessionId);
    if (!held?.has(infoHash) && (held?.size ?? 0) >= this.limits.maxTorrentsPerSession) {
      throw this.refuse('limit', `${this.limits.maxTorrentsPerSession} torrents per session`);
    }
    if (download && download.users.size >= this.limits.maxUsersPerTorrent) {
      throw this.refuse('limit', `${this.limits.maxUsersPerTorrent} users per torrent`);
    }
    download ??= this.startDownload(infoHash, request.trackers);
    const [userEnd, serviceEnd] = byteStreamPair();
    const user: User = {
      id: `user-${this.nextUserId++}`,
      sessionId,
      files: [...request.files],
      end: serviceEnd,
      attached: false,
    };
    this.addUser(download, user);
    const current = download;
    serviceEnd.once('close', () => this.removeUser(current, user));
    if (download.ready) this.attach(download, user);
    return userEnd;
  }

  stats(): TorrentServiceStats {
    let users = 0;
    let waitingUsers = 0;
    let swarmPeers = 0;
    for (const download of this.downloads.values()) {
      for (const user of download.users) {
        if (user.attached) users += 1;
        else waitingUsers += 1;
      }
      swarmPeers += download.swarmWires.size;
    }
    return {
      torrents: this.downloads.size,
      users,
      waitingUsers,
      swarmPeers,
      ...this.counters,
      diskBytes: this.disk.usedBytes,
      refusals: { ...this.refusals },
      policyDenials: { ...this.policyDenials },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const download of [...this.downloads.values()]) {
      this.clearTimers(download);
      download.dialer?.close();
      download.announcer?.stop();
      for (const user of download.users)
        user.end.destroy(new TorrentRefusal('unreachable', 'the exit is closing'));
    }
    this.downloads.clear();
    await new Promise<void>((resolve) => this.client.destroy(() => resolve()));
    await Promise.all(this.removals.values());
  }

  private startDownload(infoHash: string, trackers: readonly string[]): Download {
    const download: Download = {
      infoHash,
      torrent: undefined,
      dialer: undefined,
      announcer: undefined,
      users: new Set(),
      userWires: new WeakSet(),
      swarmWires: new Set(),
      ready: false,
      metadataTimer: undefined,
      idleTimer: undefined,
    };
    this.downloads.set(infoHash, download);
    download.metadataTimer = this.clock.setTimeout(
      () => this.fail(download, 'metadata-timeout', `no metadata within ${this.limits.metadataTimeoutMs} ms`),
      this.limits.metadataTimeoutMs,
    );
    void this.addToSwarm(download, trackers).catch((error: unknown) =>
      this.fail(download, 'unreachable', errorMessage(error)),
    );
    return download;
  }

  private async addToSwarm(download: Download, trackers: readonly string[]): Promise<void> {
    const { infoHash } = download;
    const { kept, dropped } = await this.policy.filterTrackers(trackers, {
      http: this.trackerAgent !== undefined,
      udp: this.options.udpTrackers ?? true,
    });
    const udpTrackers = kept.filter((url) => url.startsWith('udp:'));
    await this.removals.get(infoHash);
    if (this.downloads.get(infoHash) !== download || this.closed) return;
    this.logger.info(
      { event: 'torrent-added', infoHash, trackers: kept.length, trackersDropped: dropped.length },
      'torrent added',
    );
    // A bare magnet: no x.pe, xs, as or ws reaches WebTorrent, whatever the user's magnet had.
    const torrent = this.client.add(`magnet:?xt=urn:btih:${infoHash}`, {
      announce: kept.filter((url) => !url.startsWith('udp:')),
      path: join(this.options.dataDir, infoHash),
      deselect: true,
    });
    download.torrent = torrent;
    const addPeer = torrent.addPeer.bind(torrent);
    const dialer = new SwarmDialer({
      policy: this.policy,
      bindAddress: this.options.bindAddress,
      maxConns: this.limits.maxSwarmConns,
      connectTimeoutMs: this.limits.peerConnectTimeoutMs,
      deliver: (socket: Socket, id: string) =>
        !torrent.destroyed && addPeer(Object.assign(socket, { id, connected: true })),
    });
    download.dialer = dialer;
    // Every peer learnt by address (tracker, DHT, PEX) goes to the policy and our dialer, never to
    // WebTorrent's own unbound dial; objects (users' streams, dialed sockets) go straight in.
    torrent.addPeer = (peer: string | object, source?: string) =>
      typeof peer === 'string' ? (dialer.offer(peer), false) : addPeer(peer, source);
    if (udpTrackers.length > 0) {
      download.announcer = new UdpAnnouncer({
        trackers: udpTrackers,
        infoHash,
        peerId: this.client.peerId,
        port: this.client.address()?.port ?? 0,
        left: () => (torrent.ready ? torrent.length - torrent.downloaded : 1),
        socket: () => this.policy.udpSocket('udp-tracker'),
        onPeers: (peers) => peers.forEach((peer) => torrent.addPeer(peer, 'tracker')),
        clock: this.clock,
      });
    }
    torrent.on('wire', (wire) => this.onWire(download, wire));
    torrent.on('metadata', () => this.onMetadata(download));
    torrent.on('ready', () => this.onReady(download));
    torrent.on('error', (error) => this.fail(download, 'unreachable', errorMessage(error)));
    torrent.on('warning', (warning) =>
      this.logger.debug(
        { event: 'torrent-warning', infoHash, warning: errorMessage(warning) },
        'torrent warning',
      ),
    );
  }

  /** Users whose own selection is already over the size limit are refused before the pieces are checked. */
  private onMetadata(download: Download): void {
    for (const user of download.users) {
      const bytes = this.selectedBytes(download, [user]);
      if (bytes > this.limits.maxTorrentBytes) this.refuseUser(user, 'too-large', `${bytes} bytes selected`);
    }
  }

  private onReady(download: Download): void {
    download.ready = true;
    this.clock.clearTimeout(download.metadataTimer);
    this.logger.info({ event: 'torrent-ready', infoHash: download.infoHash }, 'torrent metadata ready');
    for (const user of [...download.users]) this.attach(download, user);
  }

  private onWire(download: Download, wire: Wire): void {
    if (download.userWires.has(wire)) return;
    download.swarmWires.add(wire);
    wire.on('close', () => download.swarmWires.delete(wire));
    wire.on('download', (bytes) => (this.counters.bytesFromSwarm += bytes));
    wire.on('upload', (bytes) => (this.counters.bytesToSwarm += bytes));
    // Incoming connections are never refused by WebTorrent: cap them here.
    if (download.swarmWires.size > this.limits.maxSwarmConns) return wire.destroy();
    if (!this.limits.uploadToSwarm) {
      wire.choke();
      Object.assign(wire, { unchoke: () => {} });
    }
  }

  /** Joins a user's stream to the torrent once the service has the metadata, within the limits. */
  private attach(download: Download, user: User): void {
    const torrent = download.torrent;
    if (user.attached || !torrent || user.end.closed) return;
    const count = torrent.files.length;
    if (user.files.some((index) => !Number.isInteger(index) || index < 0 || index >= count)) {
      return this.refuseUser(user, 'policy-denied', `the torrent has ${count} files`);
    }
    const attached = [...download.users].filter((other) => other.attached);
    const bytes = this.selectedBytes(download, [...attached, user]);
    if (bytes > this.limits.maxTorrentBytes)
      return this.refuseUser(user, 'too-large', `${bytes} bytes selected`);
    const evict = this.disk.plan(download.infoHash, bytes);
    if (!evict) return this.refuseUser(user, 'limit', "the exit's disk budget is full");
    for (const infoHash of evict) this.evict(infoHash);
    this.disk.reserve(download.infoHash, Math.max(bytes, 0), this.clock.now());
    user.attached = true;
    this.select(download);
    const peer = new PeerDuplex(user.end, user.id);
    if (!torrent.addPeer(peer))
      return this.refuseUser(user, 'unreachable', 'the torrent would not take the stream');
    // A peer added as a connected object has its wire at once: mark it as a user's before its handshake.
    const wire = torrent._peers?.get(user.id)?.wire;
    if (wire) {
      download.userWires.add(wire);
      wire.on('upload', (sent) => (this.counters.bytesToUsers += sent));
      // Users are never choked: they are what the exit is for.
      Object.assign(wire, { choke: () => {} });
    }
    this.logger.info(
      { event: 'torrent-user-attached', infoHash: download.infoHash, users: attached.length + 1 },
      'user attached',
    );
  }

  /** Bytes of the files `users` selected together (an empty selection is the whole torrent). */
  private selectedBytes(download: Download, users: readonly User[]): number {
    const files = download.torrent?.files ?? [];
    return this.selectedFiles(download, users).reduce((sum, index) => sum + (files[index]?.length ?? 0), 0);
  }

  private selectedFiles(download: Download, users: readonly User[]): number[] {
    const count = download.torrent?.files.length ?? 0;
    if (users.some((user) => user.files.length === 0)) return [...Array(count).keys()];
    return [...new Set(users.flatMap((user) => user.files))].filter((index) => index >= 0 && index < count);
  }

  /** Fetch exactly the union of the attached users' files: deselect everything first, then select (a file's
   * deselect would drop a boundary piece a selected neighbour shares). */
  private select(download: Download): void {
    const torrent = download.torrent;
    if (!torrent || torrent.destroyed || torrent.pieces.length === 0) return;
    torrent.deselect(0, torrent.pieces.length - 1);
    const users = [...download.users].filter((user) => user.attached);
    for (const index of this.selectedFiles(download, users)) torrent.files[index]?.select();
  }

  private addUser(download: Download, user: User): void {
    download.users.add(user);
    this.clock.clearTimeout(download.idleTimer);
    download.idleTimer = undefined;
    this.disk.setInUse(download.infoHash, true, this.clock.now());
    const held = this.sessions.get(user.sessionId) ?? new Map<string, number>();
    held.set(download.infoHash, (held.get(download.infoHash) ?? 0) + 1);
    this.sessions.set(user.sessionId, held);
  }

  private removeUser(download: Download, user: User): void {
    if (!download.users.delete(user)) return;
    const held = this.sessions.get(user.sessionId);
    const left = (held?.get(download.infoHash) ?? 1) - 1;
    if (left > 0) held?.set(download.infoHash, left);
    else held?.delete(download.infoHash);
    if (held?.size === 0) this.sessions.delete(user.sessionId);
    if (this.downloads.get(download.infoHash) !== download || this.closed) return;
    this.select(download);
    if (download.users.size > 0) return;
    if (!download.ready) return this.drop(download, 'no user waits for it any more');
    this.disk.setInUse(download.infoHash, false, this.clock.now());
    download.idleTimer = this.clock.setTimeout(() => this.drop(download, 'idle'), this.limits.idleTimeoutMs);
  }

  private refuse(code: TorrentRefusalCode, message: string): TorrentRefusal {
    this.refusals[code] += 1;
    this.logger.info({ event: 'torrent-refused', code }, message);
    return new TorrentRefusal(code, message);
  }

  private refuseUser(user: User, code: TorrentRefusalCode, message: string): void {
    user.end.destroy(this.refuse(code, message));
  }

  /** Every user refused with `code`, the torrent and its data gone. */
  private fail(download: Download, code: TorrentRefusalCode, message: string): void {
    if (this.downloads.get(download.infoHash) !== download) return;
    this.logger.warn({ event: 'torrent-failed', infoHash: download.infoHash, code }, message);
    for (const user of [...download.users]) this.refuseUser(user, code, message);
    this.drop(download, code);
  }

  /** Out of the swarm. Data already counted on disk stays (for later users, until evicted); a torrent that
   * never had a user attached leaves nothing behind. */
  private drop(download: Download, why: string): void {
    if (this.downloads.get(download.infoHash) !== download) return;
    this.downloads.delete(download.infoHash);
    this.clearTimers(download);
    download.dialer?.close();
    download.announcer?.stop();
    this.logger.info(
      { event: 'torrent-dropped', infoHash: download.infoHash, why },
      'torrent left the swarm',
    );
    if (!this.disk.has(download.infoHash)) this.removeData(download.infoHash, download.torrent);
    else {
      this.disk.setInUse(download.infoHash, false, this.clock.now());
      if (download.torrent)
        void this.client.remove(download.torrent, { destroyStore: false }).catch(() => {});
    }
  }

  /** Least recently used and no user attached: its data goes to make room. */
  private evict(infoHash: string): void {
    this.counters.evictions += 1;
    this.logger.info({ event: 'torrent-evicted', infoHash }, 'torrent evicted from disk');
    const download = this.downloads.get(infoHash);
    if (download) {
      this.downloads.delete(infoHash);
      this.clearTimers(download);
      download.dialer?.close();
      download.announcer?.stop();
    }
    this.removeData(infoHash, download?.torrent);
  }

  private removeData(infoHash: string, torrent: Torrent | undefined): void {
    this.disk.release(infoHash);
    const previous = this.removals.get(infoHash) ?? Promise.resolve();
    const removal = previous
      .then(() =>
        torrent && !torrent.destroyed ? this.client.remove(torrent, { destroyStore: true }) : undefined,
      )
      .catch(() => {})
      .then(() => rm(join(this.options.dataDir, infoHash), { recursive: true, force: true }))
      .catch((error: unknown) =>
        this.logger.error(
          { event: 'torrent-remove-failed', infoHash, error: errorMessage(error) },
          'data not removed',
        ),
      )
      .finally(() => {
        if (this.removals.get(infoHash) === removal) this.removals.delete(infoHash);
      });
    this.removals.set(infoHash, removal);
  }

  private clearTimers(download: Download): void {
    this.clock.clearTimeout(download.metadataTimer);
    this.clock.clearTimeout(download.idleTimer);
  }
}
