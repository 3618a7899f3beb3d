import { StreamError } from '@underpass/shared/errors';
import type { Dialer, StreamContext } from '@underpass/shared/exit';
import type { ByteStream } from '@underpass/shared/streams';
import type { StreamRequest, TcpRequest, TorrentRequest } from '@underpass/shared/tunnel';

/** Opens `tcp` streams: the exit's TcpDialer (DNS, address and port policy, TCP). */
export interface TcpStreamDialer {
  dial(request: TcpRequest): Promise<ByteStream>;
}

/**
 * The exit's torrent service, as the stream router sees it (built in exit-node/src/torrent/). The wire
 * contract is PROTOCOL.md §4 "Torrent streams".
 */
export interface TorrentDialer {
  /**
   * The exit's end of one user's BitTorrent wire for `request.infoHash`. Resolves at once, without waiting for
   * the metadata: the exit answers OPEN_OK, and the returned stream sends nothing until the service has the
   * torrent's metadata (what the user's client sends meanwhile may wait in it, or be held by returning false
   * from `write`), because the user's client learns the metadata size only from the exit's extended handshake
   * (BEP 10, ut_metadata) at the start of the wire.
   * A later failure closes the stream with a StreamError (its `close` event carries it, as
   * `destroy(new StreamError(code))` does for the shared streams), and the user sees RESET(code):
   * `metadata-timeout`, `too-large`, `limit`.
   *
   * Rejects (the user sees OPEN_FAILED) only for what is known at once, with a StreamError: `limit` (torrents
   * per session or in all), `too-large` (a torrent already known to be over the budget). The exit engine's dial
   * timeout bounds the dial; the engine's idle timeout and session rate apply to the stream as to any other.
   */
  dial(request: TorrentRequest, context: StreamContext): Promise<ByteStream>;
  /** Stops the service: every torrent wire ends, the swarm connections close. Called once, by the exit's close. */
  close(): Promise<void>;
}

export interface StreamRouterOptions {
  tcp: TcpStreamDialer;
  /** Absent: the exit does not serve torrents, and torrent streams fail with `torrents-off`. */
  torrents?: TorrentDialer | undefined;
}

/**
 * The exit engine's one Dialer: sends each stream to the service for its kind. The `tcp` port policy is the
 * TcpDialer's and applies to `tcp` streams only; torrent streams never reach it (their connections are the
 * torrent service's, under the exit's address policy).
 */
export class StreamRouter implements Dialer {
  constructor(private readonly options: StreamRouterOptions) {}

  get servesTorrents(): boolean {
    return this.options.torrents !== undefined;
  }

  /** Stops what the router owns beyond single streams: the torrent service. */
  async close(): Promise<void> {
    await this.options.torrents?.close();
  }

  dial(request: StreamRequest, context: StreamContext): Promise<ByteStream> {
    switch (request.kind) {
      case 'tcp':
        return this.options.tcp.dial(request);
      case 'torrent': {
        const torrents = this.options.torrents;
        if (!torrents) {
          return Promise.reject(new StreamError('torrents-off', 'this exit does not serve torrents'));
        }
        return torrents.dial(request, context);
      }
    }
  }
}
