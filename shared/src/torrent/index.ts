// @underpass/shared/torrent: what both ends of a `torrent` stream need around WebTorrent (which each host
// brings): the stream as WebTorrent's one peer (its writes gathered into cells), the wire extensions that carry
// the user's selection and the exit's swarm peers, and, on the user's side, magnet links read so that only the
// exit contacts the swarm, and the exit's wire kept attached and readied.
export * from './peer-duplex.js';
export * from './selection-extension.js';
export * from './magnet.js';
export * from './exit-peer.js';
export * from './isolated-client.js';
export * from './write-coalescer.js';
export * from './swarm-peers-extension.js';
export * from './exit-wire.js';
