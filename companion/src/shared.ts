/**
 * Everything the companion takes from shared/, in one place so an auditor sees the whole surface: the error
 * values, the byte-stream contract (and its Node socket adapter) and the stream multiplexer. No crypto, no WebRTC.
 */
export { Emitter } from '../../shared/src/emitter.js';
export { StreamError, SessionError, UnderpassError } from '../../shared/src/errors.js';
export type { StreamErrorCode } from '../../shared/src/errors.js';
export { pipeBoth } from '../../shared/src/byte-stream.js';
export { NodeSocketStream } from '../../shared/src/socket-stream.js';
export type { ByteStream, ByteStreamEvents } from '../../shared/src/byte-stream.js';
export { Mux } from '../../shared/src/tunnel/mux.js';
export type { MuxOptions, MuxStream } from '../../shared/src/tunnel/mux.js';
export type { StreamRequest } from '../../shared/src/tunnel/mux-frames.js';
