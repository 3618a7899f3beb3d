// @underpass/shared/torrent: what both ends of a `torrent` stream need around WebTorrent (which each host
// brings): the stream as WebTorrent's one peer, and magnet links read so that only the exit contacts the swarm.
export * from './peer-duplex.js';
export * from './magnet.js';
export * from './exit-peer.js';
