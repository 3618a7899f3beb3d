import { MAX_LISTED_FILES, MAX_TORRENT_FILE_BYTES } from './downloads-messages';

/**
 * A `.torrent` file the user picked, dropped or linked, read in the Downloads page before it goes to the
 * engines' host: the page shows its name, size and files (so the user chooses files before anything is
 * fetched, as desktop clients do) and knows its infohash (so it can send the selection right after the add).
 * The bytes are hostile: the reader is bounded in size and nesting, and never trusts a length it has not
 * checked against the bytes left. The host parses the file again with WebTorrent; this is for the page.
 */

export type TorrentPreviewFile = {
  /** The file's index in the torrent (WebTorrent numbers files in the order the torrent lists them). */
  index: number;
  /** The torrent's name first, then the file's path inside it, `/`-separated (as the host reports files). */
  path: string;
  length: number;
};

export type TorrentPreview = {
  infoHash: string;
  name: string;
  length: number;
  /** The first MAX_LISTED_FILES files. */
  files: TorrentPreviewFile[];
  /** How many files the torrent has (more than `files` holds when it has more than MAX_LISTED_FILES). */
  fileCount: number;
};

export type TorrentFileProblem = 'empty' | 'too-large' | 'not-a-torrent';

export type TorrentFileCheck =
  { ok: true; preview: TorrentPreview } | { ok: false; problem: TorrentFileProblem; detail: string };

/** Deeper than any real .torrent nests (root → info → files → file → path → name is 5). */
const MAX_DEPTH = 32;

type BValue = number | Uint8Array | BValue[] | BDict;
type BDict = { entries: Map<string, BValue>; spans: Map<string, [start: number, end: number]> };

class BencodeError extends Error {}

/** A minimal bencode reader: integers, byte strings, lists, dictionaries (with each value's byte span). */
class BencodeReader {
  private position = 0;

  constructor(private readonly bytes: Uint8Array) {}

  readAll(): BValue {
    const value = this.read(0);
    if (this.position !== this.bytes.length) throw new BencodeError('bytes after the end of the torrent');
    return value;
  }

  private read(depth: number): BValue {
    if (depth > MAX_DEPTH) throw new BencodeError('nested too deeply');
    const lead = this.peek();
    if (lead === 0x69 /* i */) return this.readInteger();
    if (lead === 0x6c /* l */) {
      this.position += 1;
      const list: BValue[] = [];
      while (this.peek() !== 0x65 /* e */) list.push(this.read(depth + 1));
      this.position += 1;
      return list;
    }
    if (lead === 0x64 /* d */) {
      this.position += 1;
      const dict: BDict = { entries: new Map(), spans: new Map() };
      while (this.peek() !== 0x65) {
        const key = new TextDecoder().decode(this.readString());
        const start = this.position;
        dict.entries.set(key, this.read(depth + 1));
        dict.spans.set(key, [start, this.position]);
      }
      this.position += 1;
      return dict;
    }
    if (lead >= 0x30 && lead <= 0x39) return this.readString();
    throw new BencodeError(`unexpected byte ${lead} at ${this.position}`);
  }

  private peek(): number {
    const byte = this.bytes[this.position];
    if (byte === undefined) throw new BencodeError('the torrent ends too early');
    return byte;
  }

  private readInteger(): number {
    const end = this.bytes.indexOf(0x65, this.position);
    if (end < 0) throw new BencodeError('an integer never ends');
    const text = new TextDecoder().decode(this.bytes.subarray(this.position + 1, end));
    if (!/^(0|-?[1-9][0-9]{0,15})$/.test(text)) throw new BencodeError(`bad integer "${text.slice(0, 20)}"`);
    const value = Number(text);
    if (!Number.isSafeInteger(value)) throw new BencodeError('an integer too large');
    this.position = end + 1;
    return value;
  }

  private readString(): Uint8Array {
    const colon = this.bytes.indexOf(0x3a /* : */, this.position);
    if (colon < 0 || colon - this.position > 10) throw new BencodeError('a string length never ends');
    const text = new TextDecoder().decode(this.bytes.subarray(this.position, colon));
    if (!/^(0|[1-9][0-9]*)$/.test(text)) throw new BencodeError(`bad string length "${text}"`);
    const length = Number(text);
    const start = colon + 1;
    if (length > this.bytes.length - start) throw new BencodeError('a string runs past the end');
    this.position = start + length;
    return this.bytes.subarray(start, start + length);
  }
}

function isDict(value: BValue | undefined): value is BDict {
  return typeof value === 'object' && value !== null && 'entries' in value;
}

const isBytes = (value: BValue | undefined): value is Uint8Array => value instanceof Uint8Array;

function text(value: BValue | undefined): string | undefined {
  return isBytes(value) ? new TextDecoder().decode(value) : undefined;
}

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((byte) => byte.toString(16).padStart(2, '0')).join('');
}

/** Reads a .torrent file's bytes into what the page shows; a problem in words' terms otherwise. */
export async function readTorrentFile(bytes: Uint8Array): Promise<TorrentFileCheck> {
  if (bytes.length === 0) return { ok: false, problem: 'empty', detail: 'the file is empty' };
  if (bytes.length > MAX_TORRENT_FILE_BYTES)
    return { ok: false, problem: 'too-large', detail: `${bytes.length} bytes` };
  let root: BValue;
  try {
    root = new BencodeReader(bytes).readAll();
  } catch (error) {
    const detail = error instanceof BencodeError ? error.message : 'unreadable';
    return { ok: false, problem: 'not-a-torrent', detail };
  }
  const notATorrent = (detail: string): TorrentFileCheck => ({ ok: false, problem: 'not-a-torrent', detail });
  if (!isDict(root)) return notATorrent('not a dictionary');
  const info = root.entries.get('info');
  const span = root.spans.get('info');
  if (!isDict(info) || !span) return notATorrent('no info dictionary');
  const name = text(info.entries.get('name.utf-8')) ?? text(info.entries.get('name'));
  if (!name) return notATorrent('no name');
  if (!isBytes(info.entries.get('pieces'))) return notATorrent('no piece hashes (a v2-only torrent?)');

  const listed = info.entries.get('files');
  const entries: { path: string[]; length: number }[] = [];
  if (listed === undefined) {
    const length = info.entries.get('length');
    if (typeof length !== 'number' || length < 0) return notATorrent('no length');
    entries.push({ path: [], length });
  } else {
    if (!Array.isArray(listed) || listed.length === 0) return notATorrent('an empty file list');
    for (const file of listed) {
      if (!isDict(file)) return notATorrent('a file that is not a dictionary');
      const length = file.entries.get('length');
      const path = file.entries.get('path.utf-8') ?? file.entries.get('path');
      if (typeof length !== 'number' || length < 0) return notATorrent('a file without a length');
      if (!Array.isArray(path) || !path.every(isBytes)) return notATorrent('a file without a path');
      entries.push({ path: path.map((part) => new TextDecoder().decode(part)), length });
    }
  }
  const length = entries.reduce((sum, file) => sum + file.length, 0);
  if (!Number.isSafeInteger(length)) return notATorrent('a total size too large');
  const digest = await crypto.subtle.digest('SHA-1', bytes.slice(span[0], span[1]));
  return {
    ok: true,
    preview: {
      infoHash: hex(digest),
      name: name.slice(0, 1024),
      length,
      fileCount: entries.length,
      files: entries.slice(0, MAX_LISTED_FILES).map((file, index) => ({
        index,
        path: [name, ...file.path].join('/').slice(0, 1024),
        length: file.length,
      })),
    },
  };
}

/** Bytes as base64 (runtime messages are JSON), in slices so a large file never overflows the call stack. */
export function bytesToBase64(bytes: Uint8Array): string {
  const SLICE = 0x8000;
  let binary = '';
  for (let start = 0; start < bytes.length; start += SLICE)
    binary += String.fromCharCode(...bytes.subarray(start, start + SLICE));
  return btoa(binary);
}
