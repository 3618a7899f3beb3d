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
   * Opens a stream through the tunnel, handed over once the exit has reached the target; rejects with a
   * StreamError while no path is up (the kill switch) or when the exit refuses.
   */
  open(request: TcpRequest): Promise<ByteStream>;
  /**
   * Starts a stream through the tunnel that may be written at once (ProtectEngine.openEarly), or returns
   * undefined where the exit's answer is worth waiting for (a destination it refused lately: `open` then). Throws
   * a StreamError while no path is up. Without it, every stream waits for the exit's answer.
   */
  openEarly?(request: TcpRequest): EarlyOpen<ByteStream> | undefined;
}

export interface CompanionBridge {
  close(): void;
  readonly closed: boolean;
}

/**
 * The extension's side of the companion's data port: the companion opens one mux stream per browser
 * connection, and each is joined to a tunnel stream. The same mux (and its flow control) as inside the tunnel,
 * without encryption: it never leaves 127.0.0.1.
 *
 * A stream started early is accepted before the exit has answered, so the companion answers the browser's
 * CONNECT at once and the browser's first bytes travel with the tunnel's OPEN (PROTOCOL.md §4', "Early data");
 * the exit's refusal then resets the stream with its code. Otherwise the stream is accepted or refused with the
 * exit's answer, as the SOCKS reply then says.
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
    let early: EarlyOpen<ByteStream> | undefined;
    try {
      early = options.openEarly?.(request);
    } catch (error) {
      stream.reject(codeOf(error));
      return;
    }
    if (early) {
      stream.accept();
      void pipeBoth(stream, early.stream);
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
      (error: unknown) => stream.reject(codeOf(error)),
    );
  });
  return {
    close: () => mux.close(),
    get closed() {
      return mux.closed;
    },
  };
}

function codeOf(error: unknown): StreamError['code'] {
  return error instanceof StreamError ? error.code : 'unreachable';
}
