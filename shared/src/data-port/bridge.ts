import { StreamError } from '../errors.js';
import { pipeBoth, type ByteStream } from '../streams/byte-stream.js';
import type { Link } from '../links/link.js';
import { muxOverLink } from './mux-link.js';
import type { TcpRequest } from '../tunnel/mux-frames.js';
import type { EarlyOpen } from '../tunnel/mux.js';

export interface CompanionBridgeOptions {
  /** The authenticated data-port WebSocket to the companion, as a Link. */
  link: Link;
  /**
   * Starts a stream through the tunnel that may be written at once (ProtectEngine.openEarly); throws a
   * StreamError while no path is up (the kill switch). A refusal by the exit closes the stream with its code.
   */
  open(request: TcpRequest): EarlyOpen<ByteStream>;
}

export interface CompanionBridge {
  close(): void;
  readonly closed: boolean;
}

/**
 * The extension's side of the companion's data port: the companion opens one mux stream per browser
 * connection, and each is joined to a tunnel stream. The same mux (and its flow control) as inside the tunnel,
 * without encryption: it never leaves 127.0.0.1.
 */
export function bridgeCompanion(options: CompanionBridgeOptions): CompanionBridge {
  const mux = muxOverLink(options.link, 'acceptor');
  mux.on('stream', (stream, request) => {
    // The companion carries the browser's SOCKS connections: TCP only. Downloads open their own torrent
    // streams in the extension; a companion may not.
    if (request.kind !== 'tcp') {
      stream.reject('protocol');
      return;
    }
    let tunnelStream: ByteStream;
    try {
      tunnelStream = options.open(request).stream;
    } catch (error) {
      stream.reject(error instanceof StreamError ? error.code : 'unreachable');
      return;
    }
    // Accepted before the exit has answered, so the companion answers the browser's CONNECT at once and the
    // browser's first bytes travel with the OPEN (PROTOCOL.md §4', "Early data"). The exit's refusal then
    // resets the stream with its code instead of refusing the CONNECT.
    stream.accept();
    void pipeBoth(stream, tunnelStream);
  });
  return {
    close: () => mux.close(),
    get closed() {
      return mux.closed;
    },
  };
}
