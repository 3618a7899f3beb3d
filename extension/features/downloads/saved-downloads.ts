import { MAX_TORRENT_FILE_INDICES, MAX_TORRENT_TRACKERS, validateTrackerUrl } from '@underpass/shared/tunnel';
import { openDB, type IDBPDatabase } from 'idb';
import { z } from 'zod';
import { infoHashSchema, MAX_DOWNLOADS, MAX_TORRENT_FILE_BYTES } from './downloads-messages';
import { PIECE_DIRECTORY } from './piece-directory';

/**
 * The list of downloads that survives a browser restart, in the extension origin's IndexedDB: the one storage
 * both the engines' host (an offscreen document has no chrome.storage) and the background (which decides at
 * browser start whether to bring Downloads back) can read. One record per torrent: what it takes to add it
 * again without the exit's help for its metadata — the info-only torrent once known — plus what the user
 * chose (files, paused). The pieces themselves are in OPFS (piece-store.ts). Bounded: MAX_DOWNLOADS records,
 * each torrent at most MAX_TORRENT_FILE_BYTES, and all of them together at most MAX_SAVED_METADATA_BYTES
 * (past it, the host keeps a torrent's metadata in memory only, and the exit sends it again after a restart).
 */

export const MAX_SAVED_METADATA_BYTES = 64 * 1024 * 1024;

export const savedDownloadSchema = z.object({
  infoHash: infoHashSchema,
  name: z.string().max(1024),
  /** For the exit only (the user's WebTorrent never sees them). */
  trackers: z
    .array(z.string().refine((url) => validateTrackerUrl(url) === undefined, 'bad tracker URL'))
    .max(MAX_TORRENT_TRACKERS),
  /** The files the user wants, by index; empty: every file. */
  files: z.array(z.number().int().nonnegative()).max(MAX_TORRENT_FILE_INDICES),
  paused: z.boolean(),
  /** Milliseconds since the epoch: the list keeps the order the user added them in. */
  addedAt: z.number().int().nonnegative(),
  /** The OPFS directory of its pieces (piece-directory.ts); absent in downloads saved before it was named. */
  pieces: z.string().regex(PIECE_DIRECTORY).optional(),
});
export type SavedDownload = z.infer<typeof savedDownloadSchema>;

/** A record and its metadata (`d4:info…e`, see torrent-file.ts) when it was stored. */
export type SavedEntry = { download: SavedDownload; torrent?: Uint8Array };

const torrentSchema = z
  .instanceof(Uint8Array)
  .refine((bytes) => bytes.length > 0 && bytes.length <= MAX_TORRENT_FILE_BYTES, 'bad torrent size');

/**
 * Where the list lives: IndexedDB in the extension, a Map in unit tests. Records and metadata are apart, so
 * that pausing or choosing files rewrites a few bytes, not the torrent's piece hashes.
 */
export interface SavedDownloads {
  /** Every valid record, oldest first, at most MAX_DOWNLOADS (malformed ones are deleted). */
  load(): Promise<SavedEntry[]>;
  /** Adds or replaces the record of `download.infoHash`. */
  save(download: SavedDownload): Promise<void>;
  saveTorrent(infoHash: string, torrent: Uint8Array): Promise<void>;
  /** Deletes the record and its metadata. */
  remove(infoHash: string): Promise<void>;
  count(): Promise<number>;
}

const DB_NAME = 'underpass-downloads';
const DB_VERSION = 1;
const RECORDS = 'records';
const TORRENTS = 'torrents';

type Schema = {
  [RECORDS]: { key: string; value: unknown };
  [TORRENTS]: { key: string; value: unknown };
};

/** The list in the extension origin's IndexedDB (works in the offscreen document, worker and pages alike). */
export function indexedDbSavedDownloads(): SavedDownloads {
  let db: Promise<IDBPDatabase<Schema>> | undefined;
  const open = () =>
    (db ??= openDB<Schema>(DB_NAME, DB_VERSION, {
      upgrade(database) {
        database.createObjectStore(RECORDS);
        database.createObjectStore(TORRENTS);
      },
    }));
  return {
    async load() {
      const database = await open();
      const { valid, invalid } = validRecords(
        await database.getAllKeys(RECORDS),
        await database.getAll(RECORDS),
      );
      for (const key of invalid) await database.delete(RECORDS, key as string);
      const entries: SavedEntry[] = [];
      for (const download of valid) {
        const torrent = torrentSchema.safeParse(await database.get(TORRENTS, download.infoHash));
        entries.push(torrent.success ? { download, torrent: torrent.data } : { download });
      }
      return entries;
    },
    async save(download) {
      await (await open()).put(RECORDS, download, download.infoHash);
    },
    async saveTorrent(infoHash, torrent) {
      await (await open()).put(TORRENTS, torrent, infoHash);
    },
    async remove(infoHash) {
      const transaction = (await open()).transaction([RECORDS, TORRENTS], 'readwrite');
      await Promise.all([
        transaction.objectStore(RECORDS).delete(infoHash),
        transaction.objectStore(TORRENTS).delete(infoHash),
        transaction.done,
      ]);
    },
    async count() {
      return (await open()).count(RECORDS);
    },
  };
}

/** The records that parse and are stored under their own infohash, oldest first, at most MAX_DOWNLOADS. */
export function validRecords(
  keys: readonly IDBValidKey[],
  values: readonly unknown[],
): { valid: SavedDownload[]; invalid: IDBValidKey[] } {
  const valid: SavedDownload[] = [];
  const invalid: IDBValidKey[] = [];
  keys.forEach((key, index) => {
    const parsed = savedDownloadSchema.safeParse(values[index]);
    if (parsed.success && parsed.data.infoHash === key) valid.push(parsed.data);
    else invalid.push(key);
  });
  valid.sort((a, b) => a.addedAt - b.addedAt);
  return { valid: valid.slice(0, MAX_DOWNLOADS), invalid };
}

/** In memory, for unit tests (a fallback would be wrong: a list that silently forgets is not persistence). */
export function memorySavedDownloads(): SavedDownloads & {
  records: Map<string, SavedDownload>;
  torrents: Map<string, Uint8Array>;
} {
  const records = new Map<string, SavedDownload>();
  const torrents = new Map<string, Uint8Array>();
  return {
    records,
    torrents,
    async load() {
      return [...records.values()]
        .sort((a, b) => a.addedAt - b.addedAt)
        .map((download) => {
          const torrent = torrents.get(download.infoHash);
          return torrent
            ? { download: structuredClone(download), torrent }
            : { download: structuredClone(download) };
        });
    },
    async save(download) {
      records.set(download.infoHash, structuredClone(download));
    },
    async saveTorrent(infoHash, torrent) {
      torrents.set(infoHash, torrent.slice());
    },
    async remove(infoHash) {
      records.delete(infoHash);
      torrents.delete(infoHash);
    },
    async count() {
      return records.size;
    },
  };
}
