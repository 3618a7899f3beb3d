import { Duplex } from 'streamx';
import type { ByteStream } from '../streams/byte-stream.js';
import { StreamError, type UnderpassError } from '../errors.js';
import { MessageCutter } from './message-cutter.js';
import { WriteCoalescer, type Defer } from './write-coalescer.js';

export interface PeerDuplexOptions {
  /** When gathered writes go out (default: the end of the event-loop turn; tests may drive it). */
  defer?: Defer;
}

/**
 * A byte stream (a `torrent` stream of the tunnel, on either end) as the one peer WebTorrent gets:
 * `torrent.addPeer(duplex)` takes any streamx duplex that has a unique `id` and says it is `connected` (else
 * it waits 25 s for a `connect` event). Backpressure holds both ways: WebTorrent's writes wait for the
 * stream's drain, and the stream is paused while WebTorrent reads no more. WebTorrent's writes are gathered into
 * cell-sized ones (WriteCoalescer): one message per write would cost a DataChannel message each. What the stream
 * delivers is handed to WebTorrent cut at BitTorrent message boundaries (MessageCutter), so that its wire does not
 * copy each whole cell onto the unparsed end of the one before.
 */
export class PeerDuplex extends Duplex {
  readonly connected = true;
  /** Why the stream ended, when it did not end cleanly: the user's side shows it, the exit logs it. */
  failure: UnderpassError | undefined;

  constructor(
    private readonly stream: ByteStream,
    readonly id: string,
    options: PeerDuplexOptions = {},
  ) {
    const writes = new WriteCoalescer({ stream, ...(options.defer ? { defer: options.defer } : {}) });
    super({
      write: (data: Uint8Array, callback: (error: Error | null) => void) => {
        if (stream.closed) return callback(new StreamError('session-closed', 'the stream is closed'));
        writes.write(data, () => callback(null));
      },
      final: (callback: (error: Error | null) => void) => writes.end(() => callback(null)),
      read: (callback: (error: Error | null) => void) => {
        stream.resume();
        callback(null);
      },
      destroy: (callback: (error: Error | null) => void) => {
        writes.discard();
        if (!stream.closed) stream.destroy(this.failure);
        callback(null);
      },
    });
    const cutter = new MessageCutter();
    stream.on('data', (chunk) => {
      let more = true;
      for (const part of cutter.cut(chunk)) more = this.push(part);
      if (!more) stream.pause();
    });
    stream.on('end', () => this.push(null));
    if (stream.closed) {
      // It ended before WebTorrent got it (e.g. reset right after OPEN_OK): the peer is gone at once.
      this.failure = new StreamError('reset', 'the stream closed before it was used');
      this.destroy();
      return;
    }
    // Destroyed without an error event: WebTorrent may not listen yet, and an unheard 'error' would throw in
    // the exit's process. Why it ended stays in `failure`.
    stream.once('close', (error) => {
      this.failure ??= error;
      if (error) this.destroy();
      else this.push(null);
    });
  }
}
