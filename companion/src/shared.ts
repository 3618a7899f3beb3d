/**
 * Everything the companion takes from shared/, in one place so an auditor sees the whole surface: the error
 * values, the byte-stream contract (and its Node socket adapter), the stream multiplexer and the data port's
 * protocol, link and framing. No crypto, no WebRTC.
 */
export { Emitter } from '../../shared/src/emitter.js';
export {
  StreamError,
  SessionError,
  UnderpassError,
  errorMessage,
  toUnderpassError,
} from '../../shared/src/errors.js';
export type { StreamErrorCode } from '../../shared/src/errors.js';
export { systemClock } from '../../shared/src/clock.js';
export type { Clock } from '../../shared/src/clock.js';
export { withDeadline } from '../../shared/src/deadline.js';
export { pipeBoth } from '../../shared/src/byte-stream.js';
export { NodeSocketStream } from '../../shared/src/socket-stream.js';
export type { ByteStream, ByteStreamEvents } from '../../shared/src/byte-stream.js';
export { Mux } from '../../shared/src/tunnel/mux.js';
export type { MuxOptions } from '../../shared/src/tunnel/mux.js';
export type { MuxStream } from '../../shared/src/tunnel/mux-stream.js';
export type { StreamRequest } from '../../shared/src/tunnel/mux-frames.js';
export { WebSocketLink } from '../../shared/src/links/websocket-link.js';
export { muxOverLink, type CreateMux } from '../../shared/src/data-port/mux-link.js';
export {
  DataPortCloseCode,
  DATA_PORT_MAX_MESSAGE_BYTES,
  parseDataPortHello,
  encodePairingCode,
  decodePairingCode,
  type Pairing,
  type PairingCodeCheck,
} from '../../shared/src/data-port/protocol.js';
