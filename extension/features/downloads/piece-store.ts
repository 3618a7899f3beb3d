import FSAChunkStore from 'fsa-chunk-store';

/**
 * Where the user's verified pieces live: the origin private file system (OPFS) of the extension, one
 * directory per torrent with one file per piece — what WebTorrent's browser build uses by default
 * (fsa-chunk-store), but under a name of ours, `underpass-<infohash>`, instead of the torrent's own name
 * (which may hold characters OPFS refuses, and which we could not find again). OPFS outlives a browser
 * restart; a torrent added again reads its pieces back and verifies each against its hash, so only missing
 * pieces are asked of the exit. Directories no saved download owns (a removal cut short by the browser
 * closing) are swept at start.
 */

const PREFIX = 'underpass-';
const NAME = /^underpass-[0-9a-f]{40}$/;

export function pieceDirectoryOf(infoHash: string): string {
  return `${PREFIX}${infoHash}`;
}

type StoreOptions = { torrent?: { infoHash?: string }; length?: number };

/**
 * The chunk store WebTorrent gets as its `store` option (it calls `new store(pieceLength, options)`): pieces
 * only, no files (so no second copy), under the torrent's infohash.
 */
export class InfoHashPieceStore extends FSAChunkStore {
  constructor(chunkLength: number, options: StoreOptions = {}) {
    const infoHash = options.torrent?.infoHash;
    if (!infoHash || !/^[0-9a-f]{40}$/.test(infoHash)) throw new Error('a piece store needs the infohash');
    super(chunkLength, {
      name: pieceDirectoryOf(infoHash),
      ...(options.length ? { length: options.length } : {}),
    });
  }
}

/** Removing pieces outside WebTorrent: a torrent removed before it had a store, and the sweep at start. */
export interface PieceStorage {
  remove(infoHash: string): Promise<void>;
  /** Deletes every torrent's pieces but those of `keep`; resolves to how many directories went. */
  sweep(keep: ReadonlySet<string>): Promise<number>;
}

/** The part of FileSystemDirectoryHandle used here (TypeScript's DOM lib lacks its async iteration). */
type Directory = {
  keys(): AsyncIterable<string>;
  removeEntry(name: string, options?: { recursive?: boolean }): Promise<void>;
};

export function opfsPieceStorage(root: () => Promise<Directory> = opfsRoot): PieceStorage {
  return {
    async remove(infoHash) {
      await (await root()).removeEntry(pieceDirectoryOf(infoHash), { recursive: true }).catch(() => {});
    },
    async sweep(keep) {
      const directory = await root();
      const orphans: string[] = [];
      for await (const name of directory.keys()) {
        if (NAME.test(name) && !keep.has(name.slice(PREFIX.length))) orphans.push(name);
      }
      for (const name of orphans) await directory.removeEntry(name, { recursive: true }).catch(() => {});
      return orphans.length;
    },
  };
}

async function opfsRoot(): Promise<Directory> {
  return (await navigator.storage.getDirectory()) as unknown as Directory; // see Directory
}
