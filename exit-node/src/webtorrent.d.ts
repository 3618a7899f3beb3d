// webtorrent 3 ships no type definitions; these are the parts Underpass uses (its README documents them).
// Members starting with `_` are WebTorrent internals the torrent service relies on; each use says why.
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
    /** 'webrtc' for a peer added as an object (a user's stream, a socket the exit dialed), else tcp/utp. */
    readonly type: string | null;
    readonly destroyed: boolean;
    /** We want pieces the far end has / the far end refuses to upload to us. */
    readonly amInterested: boolean;
    readonly peerChoking: boolean;
    choke(): void;
    unchoke(): void;
    destroy(): void;
    /** Sends a BEP 10 extension message by name (the peer must have announced the extension). */
    extended(extension: string, message: object | Uint8Array): void;
    /** The BEP 10 extensions the far end announced (name → id). */
    readonly peerExtendedMapping: Record<string, number>;
    /** Registers a BEP 10 extension (a class with `name` on its prototype) before the extended handshake. */
    use(extension: new (wire: Wire) => object): void;
    on(event: 'download' | 'upload', listener: (bytes: number) => void): this;
    on(event: 'close', listener: () => void): this;
    /** Every BEP 10 message; `extension` is 'handshake' for the far end's extended handshake. */
    on(event: 'extended', listener: (extension: string | number, message: unknown) => void): this;
  }

  export interface Torrent extends EventEmitter {
    readonly infoHash: string;
    readonly magnetURI: string;
    readonly torrentFile: Uint8Array;
    readonly name: string;
    readonly length: number;
    readonly files: TorrentFile[];
    readonly pieces: readonly unknown[];
    readonly pieceLength: number;
    readonly numPeers: number;
    readonly downloaded: number;
    readonly uploaded: number;
    readonly downloadSpeed: number;
    readonly progress: number;
    readonly done: boolean;
    readonly ready: boolean;
    readonly destroyed: boolean;
    readonly wires: Wire[];
    /** Internal: the peers by id; a peer added as a connected object has its wire at once. */
    readonly _peers: Map<string, { wire?: Wire }> | null;
    addPeer(peer: string | object, source?: string): boolean;
    select(start: number, end: number, priority?: number): void;
    deselect(start: number, end: number): void;
    destroy(options?: { destroyStore?: boolean }, callback?: (error?: Error) => void): void;
    on(event: 'infoHash' | 'metadata' | 'ready' | 'done' | 'noPeers', listener: () => void): this;
    on(event: 'wire', listener: (wire: Wire, address?: string) => void): this;
    on(event: 'download' | 'upload', listener: (bytes: number) => void): this;
    on(event: 'error' | 'warning', listener: (error: Error | string) => void): this;
  }

  export interface TrackerOptions {
    /** false: no WebRTC, so WebSocket trackers introduce no peers. */
    wrtc?: false;
    /** bittorrent-tracker's; `httpAgent`/`httpsAgent` are fetch dispatchers. Pass `socksProxy: {}` (see README). */
    proxyOpts?: { httpAgent?: object; httpsAgent?: object; socksProxy?: object };
  }

  export interface ClientOptions {
    dht?: boolean | { socket?: object; bootstrap?: string[] };
    tracker?: boolean | TrackerOptions;
    lsd?: boolean;
    utPex?: boolean;
    webSeeds?: boolean;
    utp?: boolean;
    natUpnp?: boolean;
    natPmp?: boolean;
    maxConns?: number;
    /** A port, or listen options (`{ port, host }` binds the listener to one address). */
    torrentPort?: number | { port: number; host?: string };
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
    readonly listening: boolean;
    /** 40 hex. */
    readonly peerId: string;
    /** Peers whose host `contains` answers true for are never added (checked in Torrent#addPeer). */
    blocked: { contains(host: string): boolean } | undefined;
    address(): { address: string; family: string; port: number } | null;
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
    on(event: 'listening', listener: () => void): this;
    on(event: 'torrent', listener: (torrent: Torrent) => void): this;
  }
}
