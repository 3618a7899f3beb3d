import { MAX_TORRENT_TRACKERS, validateTrackerUrl } from '@underpass/shared/tunnel';
import { BencodeDict, BencodeError, readBencode, type BencodeValue } from './bencode-reader';
import { MAX_LISTED_FILES, MAX_TORRENT_FILE_BYTES } from './downloads-messages';

/**
 * A .torrent read for Underpass, like a magnet link (shared/src/torrent/magnet.ts): what the exit needs (the
 * infohash and the announce list, validated like a magnet's trackers) apart from what the user's own
 * WebTorrent gets: a torrent of the `info` dictionary alone, byte for byte, so it has the names, sizes and
 * piece hashes and nothing it could contact (no announce, announce-list, url-list, httpseeds or anything
 * else outside `info`). The same reader serves the Downloads page (which shows a dropped file's name, size and
 * files before anything is fetched, so the user chooses files first) and checks metadata read back from storage.
 */

export type TorrentFileEntry = {
  /** The file's index in the torrent (WebTorrent numbers files in the order the torrent lists them). */
  index: number;
  /** The torrent's name first, then the file's path inside it, `/`-separated (as the host reports files). */
  path: string;
  length: number;
};

export type TorrentFile = {
  /** The v1 infohash (SHA-1 of the `info` dictionary's bytes), 40 lowercase hex digits. */
  infoHash: string;
  name: string;
  /** Total bytes of the torrent's files. */
  length: number;
  fileCount: number;
  /** The first MAX_LISTED_FILES files (`fileCount` says how many there are). */
  files: TorrentFileEntry[];
  /** The announce list's usable trackers (the first MAX_TORRENT_TRACKERS), for the exit only. */
  trackers: string[];
  droppedTrackers: number;
  /** `d4:info…e`: what the user's WebTorrent is given and what is stored for a restart. */
  userTorrent: Uint8Array;
};

export type TorrentFileProblem = 'empty' | 'too-large' | 'not-a-torrent' | 'unsupported';

/** `reason` is a short clause for the page's sentence ("it has no info dictionary"). */
export type TorrentFileCheck =
  { ok: true; torrent: TorrentFile } | { ok: false; problem: TorrentFileProblem; reason: string };

/** Files in one torrent; past it, not a torrent this client takes (the page lists the first 1,000). */
export const MAX_TORRENT_FILES = 100_000;
/** BitTorrent clients use 16 KiB – 16 MiB pieces; anything past this is not a real torrent. */
export const MAX_PIECE_LENGTH = 64 * 1024 * 1024;

const text = new TextDecoder('utf-8', { fatal: false });

export async function readTorrentFile(bytes: Uint8Array): Promise<TorrentFileCheck> {
  if (bytes.length === 0) return { ok: false, problem: 'empty', reason: 'the file is empty' };
  if (bytes.length > MAX_TORRENT_FILE_BYTES)
    return { ok: false, problem: 'too-large', reason: `${bytes.length} bytes` };
  let root: BencodeValue;
  try {
    root = readBencode(bytes);
  } catch (error) {
    if (error instanceof BencodeError) return notATorrent(`it cannot be read (${error.message})`);
    throw error;
  }
  if (!(root instanceof BencodeDict)) return notATorrent('it is not a dictionary');
  const info = root.get('info');
  if (!(info instanceof BencodeDict)) return notATorrent('it has no info dictionary');
  const checked = checkInfo(info);
  if (typeof checked === 'string')
    return checked.startsWith('v2')
      ? { ok: false, problem: 'unsupported', reason: 'a BitTorrent v2-only torrent' }
      : notATorrent(checked);

  // A copy: the digest wants bytes of its own (not a view of a buffer that might be shared).
  const infoBytes = bytes.slice(info.start, info.end);
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-1', infoBytes));
  const infoHash = [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join('');
  const announced = announceList(root);
  const trackers = announced
    .filter((url) => validateTrackerUrl(url) === undefined)
    .slice(0, MAX_TORRENT_TRACKERS);
  return {
    ok: true,
    torrent: {
      infoHash,
      name: checked.name,
      length: checked.length,
      fileCount: checked.fileCount,
      files: checked.files,
      trackers,
      droppedTrackers: announced.length - trackers.length,
      userTorrent: infoOnly(infoBytes),
    },
  };
}

function notATorrent(why: string): TorrentFileCheck {
  return { ok: false, problem: 'not-a-torrent', reason: why };
}

/** The info dictionary as WebTorrent will need it; a string says what is wrong (starting "v2" for v2-only). */
function checkInfo(
  info: BencodeDict,
): { name: string; length: number; fileCount: number; files: TorrentFileEntry[] } | string {
  const pieceLength = info.get('piece length');
  const pieces = info.get('pieces');
  if (pieces === undefined && info.get('meta version') === 2) return 'v2-only';
  if (!isWhole(pieceLength) || pieceLength === 0 || pieceLength > MAX_PIECE_LENGTH) return 'bad piece length';
  if (!(pieces instanceof Uint8Array) || pieces.length === 0 || pieces.length % 20 !== 0)
    return 'bad piece hashes';
  const rawName = info.get('name.utf-8') ?? info.get('name');
  if (!(rawName instanceof Uint8Array)) return 'no name';
  const name = text.decode(rawName).slice(0, 1024);

  let length = 0;
  let fileCount = 0;
  const listed: TorrentFileEntry[] = [];
  const files = info.get('files');
  if (files === undefined) {
    const single = info.get('length');
    if (!isWhole(single)) return 'no length';
    length = single;
    fileCount = 1;
    listed.push({ index: 0, path: name, length });
  } else {
    if (!Array.isArray(files) || files.length === 0) return 'bad file list';
    if (files.length > MAX_TORRENT_FILES) return `more than ${MAX_TORRENT_FILES} files`;
    for (const file of files) {
      if (!(file instanceof BencodeDict)) return 'bad file entry';
      const fileLength = file.get('length');
      const path = file.get('path.utf-8') ?? file.get('path');
      if (!isWhole(fileLength)) return 'bad file length';
      if (
        !Array.isArray(path) ||
        path.length === 0 ||
        !path.every((part): part is Uint8Array => part instanceof Uint8Array)
      )
        return 'bad file path';
      length += fileLength;
      if (length > Number.MAX_SAFE_INTEGER) return 'too large';
      if (listed.length < MAX_LISTED_FILES)
        listed.push({
          index: listed.length,
          path: [name, ...path.map((part) => text.decode(part))].join('/').slice(0, 1024),
          length: fileLength,
        });
    }
    fileCount = files.length;
  }
  if (length === 0) return 'no content';
  if (Math.ceil(length / pieceLength) !== pieces.length / 20) return 'piece count does not match the length';
  return { name, length, fileCount, files: listed };
}

function isWhole(value: BencodeValue | undefined): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** `announce` and every tier of `announce-list`, as strings, without repeats (bounded by the file's size). */
function announceList(root: BencodeDict): string[] {
  const urls: string[] = [];
  const add = (value: BencodeValue | undefined) => {
    if (value instanceof Uint8Array) urls.push(text.decode(value));
  };
  add(root.get('announce'));
  const tiers = root.get('announce-list');
  if (Array.isArray(tiers)) for (const tier of tiers) if (Array.isArray(tier)) tier.forEach(add);
  return [...new Set(urls)];
}

/** `d4:info<the info dictionary's own bytes>e`: a torrent with nothing but its info. */
function infoOnly(infoBytes: Uint8Array): Uint8Array {
  const head = new TextEncoder().encode('d4:info');
  const out = new Uint8Array(head.length + infoBytes.length + 1);
  out.set(head);
  out.set(infoBytes, head.length);
  out[out.length - 1] = 0x65; // e
  return out;
}

/** A runtime message's base64 as bytes; undefined when it is not base64 (the schema bounded its length). */
export function fromBase64(base64: string): Uint8Array | undefined {
  try {
    const binary = atob(base64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes;
  } catch {
    return undefined;
  }
}

/** Bytes as base64 (runtime messages are JSON), in slices so a large file never overflows the call stack. */
export function bytesToBase64(bytes: Uint8Array): string {
  const SLICE = 0x8000;
  let binary = '';
  for (let start = 0; start < bytes.length; start += SLICE)
    binary += String.fromCharCode(...bytes.subarray(start, start + SLICE));
  return btoa(binary);
}
