// simple-peer 9 ships no type definitions; we use it only through shared's SimplePeerLike.
declare module 'simple-peer' {
  import type { SimplePeerLike } from '@underpass/shared/links';
  interface PeerOptions {
    initiator?: boolean;
    trickle?: boolean;
    wrtc?: unknown;
    config?: { iceServers?: { urls: string | string[] }[] };
  }
  export default class Peer implements SimplePeerLike {
    constructor(options?: PeerOptions);
    signal(data: unknown): void;
    send(data: Uint8Array): void;
    destroy(error?: Error): void;
    on(event: string, listener: (...args: never[]) => void): this;
    /** simple-peer is a Node stream: every event goes through `emit` (loopback-candidates.ts wraps it). */
    emit(event: string | symbol, ...args: unknown[]): boolean;
    readonly bufferSize: number;
    readonly _channel?: { addEventListener?(type: 'bufferedamountlow', listener: () => void): void } | null;
  }
}
