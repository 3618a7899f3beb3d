import { EventEmitter } from 'node:events';
import type { MediaFile, MediaTorrent } from '../features/downloads/media-server';

/**
 * Stand-ins for WebTorrent's torrent and file, as the media server reads them: the file's iterator waits for
 * pieces the way WebTorrent's does (and, like WebTorrent's, reads past a range's end of 0), and the test
 * "downloads" them.
 */

export const PIECE = 64 * 1024;

/** A file whose bytes become readable piece by piece as the test "downloads" them. */
export class DownloadingFile implements MediaFile {
  available = 0;
  returned = 0;
  private readonly arrived = new EventEmitter();

  constructor(
    readonly path: string,
    readonly bytes: Uint8Array,
  ) {}

  get length(): number {
    return this.bytes.length;
  }

  download(upTo: number): void {
    this.available = Math.min(this.length, upTo);
    this.arrived.emit('piece');
  }

  [Symbol.asyncIterator](range: { start: number; end: number }): AsyncIterator<Uint8Array> {
    // WebTorrent's quirk: an `end` of 0 reads to the end of the file.
    const end = range.end || this.length - 1;
    let position = range.start;
    const next = async (): Promise<IteratorResult<Uint8Array>> => {
      if (position > end) return { done: true, value: undefined };
      const pieceEnd = Math.min(end + 1, (Math.floor(position / PIECE) + 1) * PIECE);
      while (this.available < pieceEnd) await new Promise((resolve) => this.arrived.once('piece', resolve));
      const value = this.bytes.slice(position, pieceEnd);
      position = pieceEnd;
      return { done: false, value };
    };
    return {
      next,
      return: async () => {
        this.returned += 1;
        return { done: true, value: undefined };
      },
    };
  }
}

export class FakeTorrent extends EventEmitter implements MediaTorrent {
  ready = true;
  destroyed = false;
  constructor(readonly files: DownloadingFile[]) {
    super();
  }
  remove(): void {
    this.destroyed = true;
    this.emit('close');
  }
}

export function bytesOf(length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 7 + 3) % 251;
  return bytes;
}
