import FSChunkStore from 'fs-chunk-store';

/** Bytes of just-verified, not yet read pieces one torrent keeps in memory for its users, by default. */
export const RECENT_PIECES_BYTES = 8 * 1024 * 1024;

type Callback<T = void> = (error: Error | null, value?: T) => void;
type GetOptions = { offset?: number; length?: number };

/** The abstract-chunk-store interface, as WebTorrent's `store` option takes it (a constructor). */
export interface ChunkStore {
  readonly chunkLength: number;
  put(index: number, buffer: Uint8Array, callback?: Callback): void;
  get(index: number, callback: Callback<Uint8Array>): void;
  get(index: number, options: GetOptions | null, callback: Callback<Uint8Array>): void;
  close(callback?: Callback): void;
  destroy(callback?: Callback): void;
}
export type ChunkStoreConstructor = new (chunkLength: number, options: object) => ChunkStore;

/**
 * WebTorrent's file store with each piece it is given also kept in memory until it is first read whole, within
 * `budgetBytes` (a piece that does not fit is only on disk; the ones kept are the oldest unread, which a user
 * downloading in order asks for first). Why: on a cold exit a piece is fetched from the swarm, verified, written to disk, and only then
 * announced to the users (`have`), who at once request its blocks; WebTorrent's own cache (cache-chunk-store)
 * drops a piece when it is written, so each one was read back from disk, through the thread pool that the
 * swarm's writes keep busy: a trace of a cold 50 MB download showed those reads taking 40–260 ms while the
 * exit fetched from the swarm, which starved the user's request pipeline. From memory they take a microtask.
 * WebTorrent reads a piece whole into its own cache (20 pieces) on the first request of any of its blocks, so
 * after that read this copy is no longer needed and makes room for the next.
 *
 * Passed as the public `store` option of `client.add` (WebTorrent 3.0.21 wraps it in its own cache and
 * immediate stores as it does its default store); the pieces on disk are the same as without it.
 */
export function recentPiecesStore(budgetBytes: number = RECENT_PIECES_BYTES): ChunkStoreConstructor {
  return class RecentPiecesStore implements ChunkStore {
    readonly chunkLength: number;
    private readonly disk: FSChunkStore;
    /** Pieces not yet read whole, by index. */
    private readonly recent = new Map<number, Uint8Array>();
    private recentBytes = 0;

    constructor(chunkLength: number, options: object) {
      this.disk = new FSChunkStore(chunkLength, options);
      this.chunkLength = this.disk.chunkLength;
    }

    put(index: number, buffer: Uint8Array, callback: Callback = () => {}): void {
      this.forget(index);
      this.disk.put(index, buffer, (error) => {
        // Kept only once it is on disk: what is served from memory is what a read from disk would give.
        if (!error) this.remember(index, buffer);
        callback(error);
      });
    }

    get(index: number, callback: Callback<Uint8Array>): void;
    get(index: number, options: GetOptions | null, callback: Callback<Uint8Array>): void;
    get(
      index: number,
      optionsOrCallback: GetOptions | null | Callback<Uint8Array>,
      maybeCallback?: Callback<Uint8Array>,
    ): void {
      // Both forms of the interface: WebTorrent's cache store calls get(index, callback).
      const [options, callback] =
        typeof optionsOrCallback === 'function'
          ? [null, optionsOrCallback]
          : [optionsOrCallback, maybeCallback!];
      const piece = this.recent.get(index);
      if (!piece) return this.disk.get(index, options, callback);
      // Read whole: WebTorrent's cache has it now.
      if (!options) this.forget(index);
      const offset = options?.offset ?? 0;
      const length = options?.length ?? piece.length - offset;
      if (
        !Number.isInteger(offset) ||
        !Number.isInteger(length) ||
        offset < 0 ||
        length < 0 ||
        offset + length > piece.length
      )
        return queueMicrotask(() => callback(new Error('Invalid offset and/or length')));
      queueMicrotask(() => callback(null, piece.subarray(offset, offset + length)));
    }

    close(callback: Callback = () => {}): void {
      this.clear();
      this.disk.close(callback);
    }

    destroy(callback: Callback = () => {}): void {
      this.clear();
      this.disk.destroy(callback);
    }

    private remember(index: number, piece: Uint8Array): void {
      this.forget(index);
      if (this.recentBytes + piece.length > budgetBytes) return;
      this.recent.set(index, piece);
      this.recentBytes += piece.length;
    }

    private forget(index: number): void {
      const piece = this.recent.get(index);
      if (!piece) return;
      this.recent.delete(index);
      this.recentBytes -= piece.length;
    }

    private clear(): void {
      this.recent.clear();
      this.recentBytes = 0;
    }
  };
}
