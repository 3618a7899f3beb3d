// One cohesive thing, hence a little over the usual length: the lifecycle of downloads and their users
// (dial → held until metadata → attached → detached → idle → dropped or evicted) and the limits on each step.
// The swarm side (SwarmTorrent), the policy, dialing, disk accounting and the types live beside it.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import WebTorrent, { type Torrent } from 'webtorrent';
import { systemClock, type Clock } from '@underpass/shared/clock';
import { errorMessage } from '@underpass/shared/errors';
import { silentLogger, type Logger } from '@underpass/shared/logger';
import type { ByteStream } from '@underpass/shared/streams';
import { DiskBudget } from './disk-budget.js';
import { policyHttpAgent } from './policy-http-agent.js';
import { byteStreamPair } from './stream-pair.js';
import { createSwarmClient } from './swarm-client.js';
import { SwarmTorrent } from './swarm-torrent.js';
import type { StreamContext } from '@underpass/shared/exit';
import type { TorrentRequest } from '@underpass/shared/tunnel';
import type { TorrentDialer } from '../stream-router.js';
import type { TorrentServiceOptions, TorrentServiceStats } from './torrent-options.js';
import {
  DEFAULT_TORRENT_LIMITS,
  DEFAULT_TORRENT_LISTEN_PORT,
  TORRENT_REFUSAL_CODES,
  TorrentRefusal,
  type TorrentLimits,
  type TorrentRefusalCode,
} from './torrent-limits.js';
import { TorrentPolicy, type PolicyLayer } from './torrent-policy.js';

interface User {
  readonly id: string;
  readonly sessionId: number;
  /** What the user selected: from OPEN, then from the selection extension. */
  files: readonly number[];
  /** The service's end of the user's stream pair. */
  readonly end: ByteStream;
  attached: boolean;
}

interface Download {
  readonly infoHash: string;
  /** Set once the trackers are judged and the torrent is added. */
  swarm: SwarmTorrent | undefined;
  readonly users: Set<User>;
  ready: boolean;
  metadataTimer: unknown;
  idleTimer: unknown;
  /** Judging and adding trackers, in order: the first user's (adding the torrent), then later users'. */
  trackerWork: Promise<void>;
}

const INFOHASH = /^[0-9a-f]{40}$/;

export class TorrentService implements TorrentDialer {
  private readonly limits: TorrentLimits;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly downloads = new Map<string, Download>();
  private readonly sessions = new Map<number, Map<string, number>>();
  private readonly disk: DiskBudget;
  /** Directory removals in progress: a torrent is not added again before its old data is gone. */
  private readonly removals = new Map<string, Promise<void>>();
  private readonly counters = {
    bytesFromSwarm: 0,
    bytesToSwarm: 0,
    bytesToUsers: 0,
    evictions: 0,
    trackersAdded: 0,
    uploadCapHits: 0,
  };
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
    this.client = createSwarmClient({
      policy,
      trackerAgent,
      bindAddress: options.bindAddress,
      listenPort: options.listenPort ?? DEFAULT_TORRENT_LISTEN_PORT,
      dht: options.dht ?? true,
      // Users' wires count against WebTorrent's own cap; the swarm's are capped by SwarmTorrent.
      maxConns: this.limits.maxSwarmConns + this.limits.maxUsersPerTorrent,
    });
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

  async dial(request: TorrentRequest, context: StreamContext): Promise<ByteStream> {
    if (this.closed) throw this.refuse('unreachable', 'the torrent service is closed');
    const { infoHash } = request;
    if (!INFOHASH.test(infoHash)) throw this.refuse('policy-denied', 'not an infohash');
    const { sessionId } = context;
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
    if (download) this.addTrackers(download, request.trackers);
    else download = this.startDownload(infoHash, request.trackers);
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
      swarmPeers += download.swarm?.swarmPeers ?? 0;
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
      download.swarm?.close();
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
      swarm: undefined,
      users: new Set(),
      ready: false,
      metadataTimer: undefined,
      idleTimer: undefined,
      trackerWork: Promise.resolve(),
    };
    this.downloads.set(infoHash, download);
    download.metadataTimer = this.clock.setTimeout(
      () => this.fail(download, 'metadata-timeout', `no metadata within ${this.limits.metadataTimeoutMs} ms`),
      this.limits.metadataTimeoutMs,
    );
    download.trackerWork = this.addToSwarm(download, trackers).catch((error: unknown) =>
      this.fail(download, 'unreachable', errorMessage(error)),
    );
    return download;
  }

  /**
   * A later user of a torrent the exit has brought trackers of its own: the new ones are judged by the same
   * policy as the first user's and announced to as well (within MAX_TRACKERS_PER_TORRENT), so that a magnet
   * with better trackers helps a download that another magnet started.
   */
  private addTrackers(download: Download, trackers: readonly string[]): void {
    if (trackers.length === 0) return;
    download.trackerWork = download.trackerWork
      .then(async () => {
        const { kept } = await this.policy.filterTrackers(trackers, {
          http: this.trackerAgent !== undefined,
          udp: this.options.udpTrackers ?? true,
        });
        if (this.downloads.get(download.infoHash) !== download || this.closed || !download.swarm) return;
        const added = download.swarm.addTrackers(kept);
        this.counters.trackersAdded += added;
        if (added > 0) {
          this.logger.info(
            { event: 'torrent-trackers-added', infoHash: download.infoHash, trackers: added },
            'trackers added',
          );
        }
      })
      .catch((error: unknown) =>
        this.logger.warn(
          { event: 'torrent-trackers-failed', infoHash: download.infoHash, error: errorMessage(error) },
          'trackers not added',
        ),
      );
  }

  private async addToSwarm(download: Download, trackers: readonly string[]): Promise<void> {
    const { infoHash } = download;
    const { kept, dropped } = await this.policy.filterTrackers(trackers, {
      http: this.trackerAgent !== undefined,
      udp: this.options.udpTrackers ?? true,
    });
    await this.removals.get(infoHash);
    if (this.downloads.get(infoHash) !== download || this.closed) return;
    this.logger.info(
      { event: 'torrent-added', infoHash, trackers: kept.length, trackersDropped: dropped.length },
      'torrent added',
    );
    download.swarm = new SwarmTorrent({
      client: this.client,
      policy: this.policy,
      infoHash,
      trackers: kept,
      trackerAgent: this.trackerAgent,
      dataDir: this.options.dataDir,
      bindAddress: this.options.bindAddress,
      limits: this.limits,
      clock: this.clock,
      counters: this.counters,
      onMetadata: () => this.onMetadata(download),
      onReady: () => this.onReady(download),
      onError: (message) => this.fail(download, 'unreachable', message),
      onUserSelection: (userId, files) => this.reselect(download, userId, files),
      onWarning: (warning) =>
        this.logger.debug({ event: 'torrent-warning', infoHash, warning }, 'torrent warning'),
    });
  }

  /** Users whose own selection is already over the size limit are refused before the pieces are checked. */
  private onMetadata(download: Download): void {
    for (const user of download.users) {
      const bytes = download.swarm?.bytesOf(selectedFiles(download.swarm.files.length, [user])) ?? 0;
      if (bytes > this.limits.maxTorrentBytes) this.refuseUser(user, 'too-large', `${bytes} bytes selected`);
    }
  }

  private onReady(download: Download): void {
    download.ready = true;
    this.clock.clearTimeout(download.metadataTimer);
    this.logger.info({ event: 'torrent-ready', infoHash: download.infoHash }, 'torrent metadata ready');
    for (const user of [...download.users]) this.attach(download, user);
  }

  /** Joins a user's stream to the torrent once the service has the metadata, within the limits. */
  private attach(download: Download, user: User): void {
    const swarm = download.swarm;
    if (user.attached || !swarm || user.end.closed) return;
    if (!this.admitSelection(download, swarm, user, user.files)) return;
    user.attached = true;
    this.select(download);
    if (!swarm.addUser(user.end, user.id)) {
      return this.refuseUser(user, 'unreachable', 'the torrent would not take the stream');
    }
    this.logger.info(
      { event: 'torrent-user-attached', infoHash: download.infoHash, users: attachedUsers(download).length },
      'user attached',
    );
  }

  /** A user changed its selection on the open stream: within the same limits as at attach. */
  private reselect(download: Download, userId: string, files: number[]): void {
    const user = [...download.users].find((candidate) => candidate.id === userId);
    const swarm = download.swarm;
    if (!user?.attached || !swarm) return;
    if (!this.admitSelection(download, swarm, user, files)) return;
    user.files = files;
    this.select(download);
  }

  /**
   * Whether `user` may have `files` of this torrent: real file indices, the union with the other attached
   * users' selections within the size limit, and room on disk (evicting idle torrents to make it, and
   * reserving it). Refuses the user, with its code, when not. The reservation never shrinks: what was fetched
   * before stays on disk.
   */
  private admitSelection(
    download: Download,
    swarm: SwarmTorrent,
    user: User,
    files: readonly number[],
  ): boolean {
    const count = swarm.files.length;
    if (files.some((index) => !Number.isInteger(index) || index < 0 || index >= count)) {
      this.refuseUser(user, 'policy-denied', `the torrent has ${count} files`);
      return false;
    }
    const others = attachedUsers(download).filter((other) => other !== user);
    const bytes = swarm.bytesOf(selectedFiles(count, [...others, { files }]));
    if (bytes > this.limits.maxTorrentBytes) {
      this.refuseUser(user, 'too-large', `${bytes} bytes selected`);
      return false;
    }
    const reserved = Math.max(bytes, this.disk.bytesOf(download.infoHash));
    const evict = this.disk.plan(download.infoHash, reserved);
    if (!evict) {
      this.refuseUser(user, 'limit', "the exit's disk budget is full");
      return false;
    }
    for (const infoHash of evict) this.evict(infoHash);
    this.disk.reserve(download.infoHash, reserved, this.clock.now());
    return true;
  }

  /** Fetch exactly the union of the attached users' files. */
  private select(download: Download): void {
    const swarm = download.swarm;
    if (!swarm) return;
    const users = [...download.users].filter((user) => user.attached);
    swarm.select(selectedFiles(swarm.files.length, users));
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
    download.swarm?.close();
    this.logger.info(
      { event: 'torrent-dropped', infoHash: download.infoHash, why },
      'torrent left the swarm',
    );
    if (!this.disk.has(download.infoHash)) this.removeData(download.infoHash, download.swarm?.torrent);
    else {
      this.disk.setInUse(download.infoHash, false, this.clock.now());
      if (download.swarm) {
        void this.client.remove(download.swarm.torrent, { destroyStore: false }).catch(() => {});
      }
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
      download.swarm?.close();
    }
    this.removeData(infoHash, download?.swarm?.torrent);
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

/** The files `users` selected together, as indices (an empty selection is the whole torrent). */
function selectedFiles(fileCount: number, users: readonly Pick<User, 'files'>[]): number[] {
  if (users.some((user) => user.files.length === 0)) return [...Array(fileCount).keys()];
  return [...new Set(users.flatMap((user) => user.files))].filter((index) => index >= 0 && index < fileCount);
}

function attachedUsers(download: Download): User[] {
  return [...download.users].filter((user) => user.attached);
}
