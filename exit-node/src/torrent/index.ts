// The exit's torrent service (issue 10): WebTorrent joined to the swarm under the exit's policy, shared by
// every user of a torrent, each reaching it through one `torrent` stream.
export * from './torrent-options.js';
export * from './torrent-service.js';
export * from './torrent-limits.js';
export * from './torrent-policy.js';
export * from './stream-pair.js';
