// @underpass/shared/torrent: what both ends of a `torrent` stream need around WebTorrent (which each host
// brings): the stream as WebTorrent's one peer, and the wire extension that carries the user's selection.
export * from './peer-duplex.js';
export * from './selection-extension.js';
