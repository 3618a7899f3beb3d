// Type declarations for the BitTorrent packages the local swarm uses (none ship types): only what it calls.
declare module 'create-torrent' {
  export interface CreateTorrentOptions {
    name?: string;
    pieceLength?: number;
    announceList?: string[][];
    private?: boolean;
    createdBy?: string;
  }
  export default function createTorrent(
    input: string | string[],
    options: CreateTorrentOptions,
    callback: (error: Error | null, torrent: Uint8Array) => void,
  ): void;
}

declare module 'parse-torrent' {
  export default function parseTorrent(
    torrent: Uint8Array | string,
  ): Promise<{ infoHash: string; name: string }>;
}

declare module 'bittorrent-tracker' {
  import type { EventEmitter } from 'node:events';
  import type { Server as HttpServer } from 'node:http';
  import type { Socket as UdpSocket } from 'node:dgram';

  export interface ServerOptions {
    http?: boolean;
    udp?: boolean;
    ws?: boolean;
    stats?: boolean;
    /** Takes a peer's address from X-Forwarded-For: how a test plants arbitrary peers. */
    trustProxy?: boolean;
    interval?: number;
  }
  export class Server extends EventEmitter {
    constructor(options?: ServerOptions);
    readonly http: HttpServer | null;
    readonly udp4: UdpSocket | null;
    listen(
      port: number,
      hostnames: { http?: string; udp?: string; udp6?: string },
      onListening?: () => void,
    ): void;
    close(callback?: () => void): void;
  }
}
