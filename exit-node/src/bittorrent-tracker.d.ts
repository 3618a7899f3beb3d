// bittorrent-tracker ships no type definitions; this is the part of its client the torrent service uses (the
// local swarm's test tracker declares its Server in test/swarm/modules.d.ts; the two declarations merge).
declare module 'bittorrent-tracker' {
  import type { EventEmitter } from 'node:events';

  export interface ClientOptions {
    infoHash: string;
    /** 40 hex. */
    peerId: string;
    announce: string[];
    port: number;
    getAnnounceOpts?: () => object;
    /** false: WebSocket trackers are not used (they need WebRTC). */
    wrtc?: false;
    proxyOpts?: object;
  }

  export class Client extends EventEmitter {
    constructor(options: ClientOptions);
    start(): void;
    stop(): void;
    destroy(callback?: () => void): void;
    /** A peer a tracker named: "ip:port" from HTTP and UDP trackers. */
    on(event: 'peer', listener: (peer: unknown) => void): this;
    on(event: 'warning' | 'error', listener: (error: unknown) => void): this;
  }
}
