import { MEDIA_REQUEST_TYPE, type MediaRefusal, type MediaRequest } from './media-messages';
import {
  bodyFrom,
  headFrom,
  MEDIA_HEAD_TIMEOUT_MS,
  MediaBodyError,
  type MediaBodyFailure,
} from './media-port';

/**
 * Byte ranges of one file in the user's downloads, read from the engines' host by a page of the extension
 * (Firefox's player, which has no service worker to do it): the same media channel and the same media server
 * as Chrome's worker (media-messages.ts), one request per range, posted to the host's window with a port.
 * The host decides what may be read (listed torrents, audio and video only, one range inside the file); this
 * side checks the answer (the head is the range asked for, the body exactly its length) and keeps few
 * requests open at once, below the host's own limit, so its least recently read stream is not closed under it.
 */

/** Where the requests go: the background page's window (Firefox's engines' host). */
export interface MediaHostWindow {
  postMessage(message: MediaRequest, targetOrigin: string, transfer: Transferable[]): void;
}

export type MediaReadFailure = MediaRefusal | MediaBodyFailure | 'cancelled';

/** A read that gave no bytes, or stopped before the last one; `code` says why. */
export class MediaReadError extends Error {
  constructor(readonly code: MediaReadFailure) {
    super(`media read failed: ${code}`);
    this.name = 'MediaReadError';
  }
}

export type MediaHostReaderOptions = {
  host: MediaHostWindow;
  /** The extension's origin: the host takes requests only from it, and it is the only target posted to. */
  origin: string;
  infoHash: string;
  fileIndex: number;
  /** Reads open at once; default MAX_PLAYER_READS. */
  maxReads?: number;
  /** How long the host has to answer a head; default MEDIA_HEAD_TIMEOUT_MS. */
  headTimeoutMs?: number;
};

/** Under the host's MAX_MEDIA_STREAMS (8), with room for a second player. */
export const MAX_PLAYER_READS = 3;

export interface MediaHostReader {
  /** The file's size in bytes (a HEAD request). */
  size(): Promise<number>;
  /** Bytes `start` (inclusive) to `end` (exclusive), as they arrive; errors are MediaReadError. */
  read(start: number, end: number): Promise<ReadableStream<Uint8Array>>;
  /** Cancels every open and waiting read (they fail with `cancelled`); reads after this fail at once. */
  cancel(): void;
}

export function createMediaHostReader(options: MediaHostReaderOptions): MediaHostReader {
  const maxReads = options.maxReads ?? MAX_PLAYER_READS;
  const headTimeoutMs = options.headTimeoutMs ?? MEDIA_HEAD_TIMEOUT_MS;
  const open = new Set<ReadableStreamDefaultReader<Uint8Array>>();
  const waiting: { go: () => void; stop: () => void }[] = [];
  let slots = maxReads;
  let cancelled = false;

  const acquire = () =>
    new Promise<void>((resolve, reject) => {
      if (cancelled) return reject(new MediaReadError('cancelled'));
      if (slots > 0) {
        slots--;
        return resolve();
      }
      waiting.push({ go: resolve, stop: () => reject(new MediaReadError('cancelled')) });
    });
  const release = () => {
    const next = waiting.shift();
    if (next) next.go();
    else slots++;
  };

  const ask = async (method: 'GET' | 'HEAD', range?: string) => {
    const channel = new MessageChannel();
    const message: MediaRequest = {
      type: MEDIA_REQUEST_TYPE,
      infoHash: options.infoHash,
      fileIndex: options.fileIndex,
      method,
      ...(range !== undefined ? { range } : {}),
    };
    let head;
    try {
      head = await headFrom(channel.port1, headTimeoutMs, () =>
        options.host.postMessage(message, options.origin, [channel.port2]),
      );
    } catch {
      channel.port1.close();
      throw new MediaReadError('bad-answer');
    }
    if (!head) {
      channel.port1.close();
      throw new MediaReadError('downloads-off');
    }
    if (head.type === 'refused') {
      channel.port1.close();
      throw new MediaReadError(head.code);
    }
    return { head, port: channel.port1 };
  };

  return {
    async size() {
      const { head, port } = await ask('HEAD');
      port.close();
      return head.size;
    },

    async read(start, end) {
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end <= start)
        throw new RangeError(`bad range ${start}-${end}`);
      await acquire();
      let body: ReadableStreamDefaultReader<Uint8Array>;
      try {
        const { head, port } = await ask('GET', `bytes=${start}-${end - 1}`);
        // The host answers the range asked or refuses; anything else is not the bytes we need.
        if (!head.partial || head.start !== start || head.end !== end - 1) {
          port.close();
          throw new MediaReadError('bad-answer');
        }
        if (cancelled) {
          port.close();
          throw new MediaReadError('cancelled');
        }
        body = bodyFrom(port, end - start).getReader();
      } catch (error) {
        release();
        throw error;
      }
      open.add(body);
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        open.delete(body);
        release();
      };
      return new ReadableStream<Uint8Array>({
        async pull(controller) {
          try {
            const next = await body.read();
            // A cancelled body ends without an error: it must not look like a complete range.
            if (cancelled) throw new MediaReadError('cancelled');
            if (next.done) {
              finish();
              controller.close();
            } else controller.enqueue(next.value);
          } catch (error) {
            finish();
            controller.error(
              cancelled
                ? new MediaReadError('cancelled')
                : new MediaReadError(error instanceof MediaBodyError ? error.code : 'bad-answer'),
            );
          }
        },
        cancel() {
          finish();
          return body.cancel();
        },
      });
    },

    cancel() {
      if (cancelled) return;
      cancelled = true;
      for (const next of waiting.splice(0)) next.stop();
      for (const body of [...open]) void body.cancel().catch(() => {});
    },
  };
}
