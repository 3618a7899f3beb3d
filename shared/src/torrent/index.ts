// @underpass/shared/torrent: what both ends of a `torrent` stream need around WebTorrent (which each host
// brings): the stream as WebTorrent's one peer, the wire extension that carries the user's selection, and, on
// the user's side, magnet links read so that only the exit contacts the swarm and the exit's wire kept attached.
export * from './peer-duplex.js';
export * from './selection-extension.js';
export * from './magnet.js';
export * from './exit-peer.js';
export * from './isolated-client.js';
export * from './write-coalescer.js';
