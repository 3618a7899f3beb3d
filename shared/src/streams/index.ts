// @underpass/shared/streams: the byte-stream contract every dialer and stream follows, and its adapter for a
// Node socket (structural: shared/ itself needs no Node types).
export * from './byte-stream.js';
export * from './socket-stream.js';
