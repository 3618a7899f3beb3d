// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ambient declarations, not a module to import
/// <reference path="../../../shared/src/torrent/magnet-uri.d.ts" />
// (The reference: the extension program reads shared/src/torrent/magnet.ts, whose magnet-uri types live there.)
// webtorrent 3 ships no type definitions; this is the part of its browser build (an ES module that needs no
// Node shims under Vite) that the user's side of Downloads calls.
declare module 'webtorrent/dist/webtorrent.min.js' {
  export interface TorrentFile {
    readonly name: string;
    readonly path: string;
    readonly length: number;
    readonly downloaded: number;
    readonly done: boolean;
    blob(): Promise<Blob>;
    /** Bytes `start`…`end` (inclusive), their pieces fetched first and waited for (the media server reads this). */
    [Symbol.asyncIterator](range: { start: number; end: number }): AsyncIterator<Uint8Array>;
    /** Asks for this file's pieces (a selection over its piece range; a boundary piece may be shared). */
    select(priority?: number): void;
    deselect(): void;
    on(event: 'done', listener: () => void): this;
  }

  /** What WebTorrent calls `new store(pieceLength, options)` on; see piece-store.ts. */
  export type ChunkStoreClass = new (chunkLength: number, options?: never) => object;

  export interface AddOptions {
    announce?: string[];
    store?: ChunkStoreClass;
    /** Start with nothing selected, and never select by itself (see TorrentEntry.applySelection). */
    deselect?: boolean;
  }

  export interface Torrent {
    readonly infoHash: string | undefined;
    readonly name: string | undefined;
    readonly length: number | undefined;
    readonly files: TorrentFile[];
    readonly downloaded: number;
    readonly downloadSpeed: number;
    readonly numPeers: number;
    readonly ready: boolean;
    readonly destroyed: boolean;
    /** The torrent re-encoded by WebTorrent once the metadata is in (torrent-file.ts keeps only its info). */
    readonly torrentFile: Uint8Array | undefined;
    /** One slot per piece once the metadata is in. */
    readonly pieces: readonly unknown[];
    select(start: number, end: number, priority?: number): void;
    deselect(start: number, end: number): void;
    addPeer(peer: object): boolean;
    destroy(options?: { destroyStore?: boolean }, callback?: (error?: Error) => void): void;
    on(event: 'infoHash' | 'metadata' | 'ready' | 'done', listener: () => void): this;
    on(event: 'error' | 'warning', listener: (error: Error | string) => void): this;
    once(event: 'infoHash' | 'metadata' | 'ready' | 'close', listener: () => void): this;
    removeListener(event: 'close', listener: () => void): this;
  }

  export interface ClientOptions {
    dht?: boolean;
    tracker?: boolean;
    lsd?: boolean;
    utPex?: boolean;
    webSeeds?: boolean;
  }

  export default class WebTorrent {
    constructor(options?: ClientOptions);
    add(torrentId: string | Uint8Array, options?: AddOptions): Torrent;
    on(event: 'error', listener: (error: Error | string) => void): this;
    destroy(callback?: (error?: Error) => void): void;
  }
}
