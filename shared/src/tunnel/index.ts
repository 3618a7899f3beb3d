// @underpass/shared/tunnel: cells, the Noise session between client and exit, and the stream mux inside it.
export * from './cells.js';
export * from './noise.js';
export * from './session.js';
export * from './mux-frames.js';
export * from './mux.js';
export * from './mux-stream.js';
