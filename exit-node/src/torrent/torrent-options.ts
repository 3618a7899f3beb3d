import type { Clock } from '@underpass/shared/clock';
import type { ExitPolicy, PortRange } from '@underpass/shared/exit';
import type { Logger } from '@underpass/shared/logger';
import type { TorrentLimits, TorrentRefusalCode } from './torrent-limits.js';
import type { Lookup } from '../tcp-dialer.js';
import type { PolicyLayer } from './torrent-policy.js';

// The torrent service's options (what the operator configures) and its stats (what the metrics endpoint
// reads). What the stream router calls is TorrentDialer, in ../stream-router.ts.

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
  /** Bytes uploaded to swarm peers (0 unless --torrent-upload), within the upload ratio per torrent. */
  bytesToSwarm: number;
  bytesToUsers: number;
  diskBytes: number;
  evictions: number;
  /** Trackers later users of a torrent brought, announced to beside its first user's. */
  trackersAdded: number;
  /** Times a torrent reached its upload cap (uploadRatio × downloaded + grace) and choked its swarm peers. */
  uploadCapHits: number;
  refusals: Record<TorrentRefusalCode, number>;
  /** Destinations the policy refused, by where they came from. */
  policyDenials: Record<PolicyLayer, number>;
}
