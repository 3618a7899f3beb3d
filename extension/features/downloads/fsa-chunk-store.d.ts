// fsa-chunk-store (webtorrent's browser chunk store, on the origin private file system) ships no types; this
// is the part piece-store.ts uses.
declare module 'fsa-chunk-store' {
  export default class FSAChunkStore {
    constructor(chunkLength: number, options?: { name?: string; length?: number });
    put(index: number, buf: Uint8Array, cb?: (error: Error | null) => void): Promise<unknown>;
    get(
      index: number,
      options: unknown,
      cb?: (error: Error | null, buf?: Uint8Array) => void,
    ): Promise<unknown>;
    close(cb?: (error: Error | null) => void): Promise<void>;
    destroy(cb?: (error: Error | null) => void): Promise<void>;
  }
}
