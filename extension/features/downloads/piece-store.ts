import FSAChunkStore from 'fsa-chunk-store';
import type { ChunkStoreClass } from 'webtorrent/dist/webtorrent.min.js';
import { PIECE_DIRECTORY } from './piece-directory';

/**
 * Where the user's verified pieces live: the origin private file system (OPFS) of the extension, one
 * directory per added torrent with one file per piece — what WebTorrent's browser build uses by default
 * (fsa-chunk-store), but under a name of ours (piece-directory.ts) instead of the torrent's own name (which
 * may hold characters OPFS refuses, and which we could not find again). OPFS outlives a browser restart; a
 * torrent added again at start reads its pieces back and verifies each against its hash, so only missing
 * pieces are asked of the exit. Directories no listed download owns (a removal cut short by the browser
 * closing) are swept at start.
 */

/**
 * The chunk store class WebTorrent gets as its `store` option for one torrent (it calls
 * `new store(pieceLength, options)`): pieces only, no files (so no second copy), in `directory`.
 */
export function pieceStoreIn(directory: string): ChunkStoreClass {
  if (!PIECE_DIRECTORY.test(directory)) throw new Error(`not a piece directory: ${directory}`);
  return class PieceStore extends FSAChunkStore {
    constructor(chunkLength: number, options: { length?: number } = {}) {
      super(chunkLength, { name: directory, ...(options.length ? { length: options.length } : {}) });
    }
  };
}

/** Removing pieces outside WebTorrent: a torrent removed before it had a store, and the sweep at start. */
export interface PieceStorage {
  remove(directory: string): Promise<void>;
  /**
   * Deletes every piece directory that `owned` does not claim; resolves to how many went. `owned` is asked
   * right before each deletion, so a directory made while the sweep runs is kept.
   */
  sweep(owned: (directory: string) => boolean): Promise<number>;
}

/** The part of FileSystemDirectoryHandle used here (TypeScript's DOM lib lacks its async iteration). */
type Directory = {
  keys(): AsyncIterable<string>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
};

export function opfsPieceStorage(root: () => Promise<Directory> = opfsRoot): PieceStorage {
  return {
    async remove(directory) {
      if (!PIECE_DIRECTORY.test(directory)) return;
      await (await root()).removeEntry(directory, { recursive: true }).catch(() => {});
    },
    async sweep(owned) {
      const directory = await root();
      const found: string[] = [];
      for await (const name of directory.keys()) if (PIECE_DIRECTORY.test(name)) found.push(name);
      let removed = 0;
      for (const name of found) {
        if (owned(name)) continue;
        await directory.removeEntry(name, { recursive: true }).then(
          () => removed++,
          () => {},
        );
      }
      return removed;
    },
  };
}

async function opfsRoot(): Promise<Directory> {
  return (await navigator.storage.getDirectory()) as unknown as Directory; // see Directory
}
