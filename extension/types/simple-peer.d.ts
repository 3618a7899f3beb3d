/** @thaunknown/simple-peer ships no type definitions; this is the part of its API the extension uses. */
declare module '@thaunknown/simple-peer/lite.js' {
  export type SignalData = Record<string, unknown>;

  export type PeerOptions = {
    initiator?: boolean;
    trickle?: boolean;
    config?: RTCConfiguration;
    channelConfig?: RTCDataChannelInit;
  };

  export default class Peer {
    constructor(options?: PeerOptions);
    readonly connected: boolean;
    readonly destroyed: boolean;
    readonly bufferSize: number;
    signal(data: SignalData | string): void;
    send(data: ArrayBufferView | ArrayBuffer | string): void;
    destroy(error?: Error): void;
    on(event: 'signal', listener: (data: SignalData) => void): this;
    on(event: 'connect' | 'close' | 'end' | 'disconnect', listener: () => void): this;
    on(
      event: 'iceStateChange',
      listener: (iceConnectionState: string, iceGatheringState: string) => void,
    ): this;
    on(event: 'data', listener: (data: Uint8Array) => void): this;
    on(event: 'error', listener: (error: Error & { code?: string }) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
    once(event: string, listener: (...args: unknown[]) => void): this;
    off(event: string, listener: (...args: unknown[]) => void): this;
    removeListener(event: string, listener: (...args: unknown[]) => void): this;
  }
}
