import { StreamError } from '../errors.js';
import { pipeBoth, type ByteStream } from '../streams/byte-stream.js';
import type { Link } from '../links/link.js';
import { muxOverLink } from './mux-link.js';
import type { TcpRequest } from '../tunnel/mux-frames.js';

export interface CompanionBridgeOptions {
  /** The authenticated data-port WebSocket to the companion, as a Link. */
  link: Link;
  /** Opens a stream through the tunnel; rejects with a StreamError while no path is up (the kill switch). */
  open(request: TcpRequest): Promise<ByteStream>;
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
    options.open(request).then(
      (tunnelStream) => {
        if (stream.closed) {
          tunnelStream.destroy();
          return;
        }
        stream.accept();
        void pipeBoth(stream, tunnelStream);
      },
      (error: unknown) => stream.reject(error instanceof StreamError ? error.code : 'unreachable'),
    );
  });
  return {
    close: () => mux.close(),
    get closed() {
      return mux.closed;
    },
  };
}
