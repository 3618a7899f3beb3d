// @underpass/shared/torrent: what both ends of a `torrent` stream need around WebTorrent (which each host
// brings): the stream as WebTorrent's one peer.
export * from './peer-duplex.js';
