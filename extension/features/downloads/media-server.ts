import { mediaTypeOf } from './media';
import {
  MAX_MEDIA_CHUNK,
  mediaPullSchema,
  mediaRequestSchema,
  type MediaChunk,
  type MediaHead,
  type MediaRefusal,
  type MediaRequest,
} from './media-messages';
import { parseRange } from './media-range';

/**
 * The engines' host's side of playing while downloading: it answers the media requests of Chrome's service
 * worker, or of Firefox's player page (media-host-reader.ts), (see media-messages.ts) with bytes of the user's own torrents, read through WebTorrent's file iterator,
 * which asks the exit for the pieces a request needs first and waits for them. Only torrents the host lists
 * are served, only files whose names say audio or video, and never a byte outside the asked range. A stream
 * waits as long as its pieces take (a lost path only pauses it); it ends with `gone` when its torrent is
 * removed or Downloads stop, and the least recently read stream makes room when too many are open.
 */

/** The part of a WebTorrent file the server reads. */
export interface MediaFile {
  readonly path: string;
  readonly length: number;
  /** WebTorrent's iterator: pieces from `start` to `end` (inclusive), fetched first, waited for. */
  [Symbol.asyncIterator](range: { start: number; end: number }): AsyncIterator<Uint8Array>;
}

/** The part of a WebTorrent torrent the server reads. */
export interface MediaTorrent {
  readonly ready: boolean;
  readonly destroyed: boolean;
  readonly files: readonly MediaFile[];
  once(event: 'close', listener: () => void): unknown;
  removeListener(event: 'close', listener: () => void): unknown;
}

/**
 * Where the requests arrive: `navigator.serviceWorker` in Chrome's offscreen document (from the worker); the
 * background page's window in Firefox (from the player page, media-host-reader.ts).
 */
export interface MediaRequestSource {
  addEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
  removeEventListener(type: 'message', listener: (event: MessageEvent) => void): void;
}

export type MediaServerOptions = {
  /** The host's torrent of that infohash, if the user's downloads list it (and its metadata is wanted). */
  torrentOf(infoHash: string): MediaTorrent | undefined;
  /** Default: `navigator.serviceWorker`, when there is one (there is none on Firefox's background page). */
  source?: MediaRequestSource;
  /** Requests are taken only from this origin, the extension's own (default: `location.origin`). */
  origin?: string;
  /** Streams open at once; default MAX_MEDIA_STREAMS. */
  maxStreams?: number;
};

export interface MediaServer {
  readonly openStreams: number;
  /** Ends every open stream (`gone`) and takes no more requests. */
  stop(): void;
}

/** A player opens one or two streams at a time (plus one while seeking); a few players fit. */
export const MAX_MEDIA_STREAMS = 8;

export function startMediaServer(options: MediaServerOptions): MediaServer {
  const source = options.source ?? (globalThis.navigator?.serviceWorker as MediaRequestSource | undefined);
  const origin = options.origin ?? globalThis.location?.origin;
  const maxStreams = options.maxStreams ?? MAX_MEDIA_STREAMS;
  const streams = new Set<FileStream>();
  let stopped = false;

  const onMessage = (event: MessageEvent) => {
    if (stopped || event.origin !== origin) return;
    const port = event.ports[0];
    const request = mediaRequestSchema.safeParse(event.data);
    if (!port || !request.success) return; // not ours (or malformed): there is no one to answer
    const planned = plan(request.data, options.torrentOf);
    if (!planned.stream) {
      port.postMessage(planned.answer);
      port.close();
      return;
    }
    if (streams.size >= maxStreams) leastRecent(streams)?.close();
    const stream: FileStream = new FileStream(port, planned.stream, () => streams.delete(stream));
    streams.add(stream);
    port.postMessage(planned.answer);
  };
  source?.addEventListener('message', onMessage);
  // Messages to a document's navigator.serviceWorker wait in a queue until it is started.
  (source as { startMessages?: () => void } | undefined)?.startMessages?.();

  return {
    get openStreams() {
      return streams.size;
    },
    stop() {
      if (stopped) return;
      stopped = true;
      source?.removeEventListener('message', onMessage);
      for (const stream of [...streams]) stream.close();
    },
  };
}

type StreamPlan = { torrent: MediaTorrent; file: MediaFile; start: number; end: number };

/** What the host answers a request with: a refusal, or the file's head and, for a GET, the bytes to stream. */
function plan(
  request: MediaRequest,
  torrentOf: MediaServerOptions['torrentOf'],
): { answer: MediaHead; stream?: StreamPlan } {
  const refuse = (code: MediaRefusal, size?: number) => ({
    answer: { type: 'refused', code, ...(size !== undefined ? { size } : {}) } satisfies MediaHead,
  });
  const torrent = torrentOf(request.infoHash);
  if (!torrent || torrent.destroyed) return refuse('no-torrent');
  if (!torrent.ready) return refuse('no-metadata');
  const file = torrent.files[request.fileIndex];
  if (!file) return refuse('no-file');
  const contentType = mediaTypeOf(file.path);
  if (!contentType) return refuse('not-media');
  const size = file.length;
  const range = parseRange(request.range, size);
  if (range.kind === 'unsatisfiable') return refuse('range-not-satisfiable', size);
  const [start, end] = range.kind === 'part' ? [range.start, range.end] : [0, size - 1];
  const answer: MediaHead = { type: 'file', contentType, size, start, end, partial: range.kind === 'part' };
  // An empty file (or a HEAD) has a head and no bytes.
  if (request.method === 'HEAD' || end < start) return { answer };
  return { answer, stream: { torrent, file, start, end } };
}

let useCounter = 0;

function leastRecent(streams: Set<FileStream>): FileStream | undefined {
  let oldest: FileStream | undefined;
  for (const stream of streams) if (!oldest || stream.lastUsed < oldest.lastUsed) oldest = stream;
  return oldest;
}

/** One response's bytes: answers each pull with the next chunk, never past the range's end. */
class FileStream {
  lastUsed = ++useCounter;
  private remaining: number;
  private iterator: AsyncIterator<Uint8Array> | undefined;
  private leftover: Uint8Array = new Uint8Array(0);
  private busy = false;
  private released = false;
  private portOpen = true;
  private wake: () => void = () => {};
  /** Settles when the stream is released, so a read waiting for a piece that will never come lets go. */
  private readonly releasing = new Promise<'released'>((resolve) => (this.wake = () => resolve('released')));
  private readonly onTorrentClose = () => this.close();

  constructor(
    private readonly port: MessagePort,
    private readonly plan: StreamPlan,
    private readonly onReleased: () => void,
  ) {
    this.remaining = plan.end - plan.start + 1;
    plan.torrent.once('close', this.onTorrentClose);
    port.onmessage = (event: MessageEvent) => {
      const message = mediaPullSchema.safeParse(event.data);
      if (!message.success || message.data.type === 'cancel') {
        this.release();
        return this.endPort();
      }
      // The worker pulls once per answer; a pull while one is being answered is not ours to queue.
      if (!this.busy) void this.answerPull();
    };
  }

  /** Ends the stream from outside (torrent removed, Downloads stopped, room needed): the worker hears `gone`. */
  close(): void {
    this.release();
    // A pull being answered sends `gone` itself when its read lets go.
    if (!this.busy) this.endPort({ type: 'gone' });
  }

  private async answerPull(): Promise<void> {
    this.busy = true;
    this.lastUsed = ++useCounter;
    let chunk: MediaChunk;
    try {
      chunk = await this.nextChunk();
    } catch {
      chunk = { type: 'gone' }; // the store could not read a piece
    }
    this.busy = false;
    if (this.released) return this.endPort({ type: 'gone' });
    if (chunk.type !== 'chunk') {
      this.release();
      return this.endPort(chunk);
    }
    this.port.postMessage(chunk, [chunk.bytes.buffer]);
    if (this.remaining === 0) {
      // Every byte asked for is sent: the worker ends its response without another pull.
      this.release();
      this.endPort();
    }
  }

  private async nextChunk(): Promise<MediaChunk> {
    if (this.remaining === 0) return { type: 'end' };
    while (this.leftover.length === 0) {
      this.iterator ??= this.plan.file[Symbol.asyncIterator]({ start: this.plan.start, end: this.plan.end });
      const next = await Promise.race([this.iterator.next(), this.releasing]);
      if (next === 'released') return { type: 'gone' };
      // The file ended before the range did: the response must not look complete.
      if (next.done) return { type: 'gone' };
      this.leftover = next.value;
    }
    const size = Math.min(this.leftover.length, this.remaining, MAX_MEDIA_CHUNK);
    // A copy of our own, so it can be transferred without touching the store's buffer.
    const bytes = this.leftover.slice(0, size);
    this.leftover = this.leftover.subarray(size);
    this.remaining -= size;
    return { type: 'chunk', bytes };
  }

  /** Stops reading: WebTorrent's iterator ends (dropping the priority it gave the range's pieces). */
  private release(): void {
    if (this.released) return;
    this.released = true;
    this.wake();
    this.plan.torrent.removeListener('close', this.onTorrentClose);
    const iterator = this.iterator;
    this.iterator = undefined;
    void Promise.resolve(iterator?.return?.()).catch(() => {});
    this.onReleased();
  }

  /** Sends the last word, if any, once, and lets the port go. */
  private endPort(last?: Exclude<MediaChunk, { type: 'chunk' }>): void {
    if (!this.portOpen) return;
    this.portOpen = false;
    this.port.onmessage = null;
    if (last) this.port.postMessage(last);
    this.port.close();
  }
}
