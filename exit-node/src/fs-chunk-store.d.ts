// fs-chunk-store 5.0.1 (WebTorrent's file store in Node) ships no types: the part the exit uses.
declare module 'fs-chunk-store' {
  type Callback<T = void> = (error: Error | null, value?: T) => void;
  export default class FSChunkStore {
    constructor(chunkLength: number, options?: object);
    readonly chunkLength: number;
    put(index: number, buffer: Uint8Array, callback?: Callback): void;
    get(
      index: number,
      options: { offset?: number; length?: number } | null,
      callback: Callback<Uint8Array>,
    ): void;
    close(callback?: Callback): void;
    destroy(callback?: Callback): void;
  }
}
