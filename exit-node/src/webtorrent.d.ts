// webtorrent 3 ships no type definitions; these are the parts Underpass uses (its README documents them).
declare module 'webtorrent' {
  import type { EventEmitter } from 'node:events';

  export interface TorrentFile {
    readonly name: string;
    readonly path: string;
    readonly length: number;
    readonly downloaded: number;
    readonly progress: number;
    readonly done: boolean;
    select(priority?: number): void;
    deselect(): void;
    arrayBuffer(): Promise<ArrayBuffer>;
    on(event: 'done', listener: () => void): this;
  }

  export interface Wire extends EventEmitter {
    readonly remoteAddress?: string;
    readonly peerId?: string;
  }

  export interface Torrent extends EventEmitter {
    readonly infoHash: string;
    readonly magnetURI: string;
    readonly torrentFile: Uint8Array;
    readonly name: string;
    readonly length: number;
    readonly files: TorrentFile[];
    readonly pieceLength: number;
    readonly numPeers: number;
    readonly downloaded: number;
    readonly uploaded: number;
    readonly downloadSpeed: number;
    readonly progress: number;
    readonly done: boolean;
    readonly ready: boolean;
    readonly wires: Wire[];
    addPeer(peer: string | object): boolean;
    destroy(options?: { destroyStore?: boolean }, callback?: (error?: Error) => void): void;
    on(event: 'infoHash' | 'metadata' | 'ready' | 'done' | 'noPeers', listener: () => void): this;
    on(event: 'wire', listener: (wire: Wire, address?: string) => void): this;
    on(event: 'error' | 'warning', listener: (error: Error | string) => void): this;
  }

  export interface ClientOptions {
    dht?: boolean | object;
    tracker?: boolean | object;
    lsd?: boolean;
    utPex?: boolean;
    webSeeds?: boolean;
    utp?: boolean;
    natUpnp?: boolean;
    natPmp?: boolean;
    maxConns?: number;
    torrentPort?: number;
    dhtPort?: number;
    blocklist?: string[] | string;
    downloadLimit?: number;
    uploadLimit?: number;
  }

  export interface AddOptions {
    announce?: string[];
    path?: string;
    store?: unknown;
    deselect?: boolean;
    skipVerify?: boolean;
    name?: string;
  }

  export default class WebTorrent extends EventEmitter {
    constructor(options?: ClientOptions);
    readonly torrents: Torrent[];
    add(
      torrentId: string | Uint8Array | object,
      options?: AddOptions,
      onTorrent?: (torrent: Torrent) => void,
    ): Torrent;
    seed(
      input: Uint8Array | Uint8Array[] | { name: string; data: Uint8Array }[] | string | string[],
      options?: AddOptions & { name?: string; pieceLength?: number; createdBy?: string },
      onSeed?: (torrent: Torrent) => void,
    ): Torrent;
    get(torrentId: string): Promise<Torrent | null>;
    remove(
      torrentId: string | Torrent,
      options?: { destroyStore?: boolean },
      callback?: (error?: Error) => void,
    ): Promise<void>;
    destroy(callback?: (error?: Error) => void): void;
    on(event: 'error', listener: (error: Error | string) => void): this;
  }
}
