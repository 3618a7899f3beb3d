import { StreamError } from '@underpass/shared/errors';

/**
 * Why the torrent service refused or dropped a user's torrent stream: the stream error codes (PROTOCOL.md's
 * wire table) that the user sees in OPEN_FAILED or RESET.
 */
export const TORRENT_REFUSAL_CODES = [
  'metadata-timeout',
  'too-large',
  'limit',
  'policy-denied',
  'unreachable',
] as const;
export type TorrentRefusalCode = (typeof TORRENT_REFUSAL_CODES)[number];

export class TorrentRefusal extends StreamError {
  constructor(
    override readonly code: TorrentRefusalCode,
    message: string = code,
  ) {
    super(code, message);
    this.name = 'TorrentRefusal';
  }
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** Bytes a torrent may fetch for its users (the union of their selections): a 4 GiB file fits, a season does not. */
export const DEFAULT_MAX_TORRENT_BYTES = 8 * GiB;
/** Bytes on disk across all torrents; user-less torrents are evicted least recently used first to make room. */
export const DEFAULT_DISK_BUDGET_BYTES = 32 * GiB;
/** Torrents in the swarm at once (each costs connections, timers and memory). */
export const DEFAULT_MAX_TORRENTS = 50;
/** Torrents one session (one user's end-to-end session) may hold at once. */
export const DEFAULT_MAX_TORRENTS_PER_SESSION = 5;
/** Users (torrent streams) on one torrent at once. */
export const DEFAULT_MAX_USERS_PER_TORRENT = 64;
/** Time from the first request for an infohash to having its metadata; users wait that long at most. */
export const DEFAULT_METADATA_TIMEOUT_MS = 60_000;
/** A torrent no user is attached to leaves the swarm after this long (its data stays until evicted). */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;
/** Swarm connections per torrent, outgoing and incoming together (users' streams do not count). */
export const DEFAULT_MAX_SWARM_CONNS = 40;
/** TCP port the exit listens on for incoming swarm peers. */
export const DEFAULT_TORRENT_LISTEN_PORT = 6881;
/** Outgoing connect to one swarm peer. */
export const DEFAULT_PEER_CONNECT_TIMEOUT_MS = 5_000;
/**
 * Upload and seeding policy: by default the exit uploads only to its own users and never to the swarm — it
 * takes only what its users ask for, its bandwidth goes to them, and it does not distribute content to
 * strangers (the part of BitTorrent that brings operators copyright complaints). It does not seed: a torrent
 * no user is attached to leaves the swarm after the idle timeout. An operator may opt into uploading to the
 * swarm peers while a torrent is in the swarm (WebTorrent's own choking then applies).
 */
export const DEFAULT_UPLOAD_TO_SWARM = false;
/**
 * With uploading to the swarm on: per torrent, the bytes the exit uploads to swarm peers stay within this many
 * times the bytes it downloaded from them (plus DEFAULT_UPLOAD_GRACE_BYTES). 1: it gives the swarm back what it
 * took, as a fair client does, and an exit's uplink never becomes a free seedbox for a popular torrent. While
 * over, every swarm peer of that torrent is choked; they are unchoked again (at WebTorrent's next rechoke)
 * once the exit has downloaded enough.
 */
export const DEFAULT_UPLOAD_RATIO = 1;
/** Uploaded before any download counts against the ratio: BitTorrent's tit-for-tat needs a start. */
export const DEFAULT_UPLOAD_GRACE_BYTES = 4 * MiB;

export interface TorrentLimits {
  maxTorrentBytes: number;
  diskBudgetBytes: number;
  maxTorrents: number;
  maxTorrentsPerSession: number;
  maxUsersPerTorrent: number;
  metadataTimeoutMs: number;
  idleTimeoutMs: number;
  maxSwarmConns: number;
  peerConnectTimeoutMs: number;
  uploadToSwarm: boolean;
  uploadRatio: number;
  uploadGraceBytes: number;
}

export const DEFAULT_TORRENT_LIMITS: TorrentLimits = {
  maxTorrentBytes: DEFAULT_MAX_TORRENT_BYTES,
  diskBudgetBytes: DEFAULT_DISK_BUDGET_BYTES,
  maxTorrents: DEFAULT_MAX_TORRENTS,
  maxTorrentsPerSession: DEFAULT_MAX_TORRENTS_PER_SESSION,
  maxUsersPerTorrent: DEFAULT_MAX_USERS_PER_TORRENT,
  metadataTimeoutMs: DEFAULT_METADATA_TIMEOUT_MS,
  idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_MS,
  maxSwarmConns: DEFAULT_MAX_SWARM_CONNS,
  peerConnectTimeoutMs: DEFAULT_PEER_CONNECT_TIMEOUT_MS,
  uploadToSwarm: DEFAULT_UPLOAD_TO_SWARM,
  uploadRatio: DEFAULT_UPLOAD_RATIO,
  uploadGraceBytes: DEFAULT_UPLOAD_GRACE_BYTES,
};
