// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ambient declarations of the untyped BitTorrent packages (not a module to import)
/// <reference path="../../test/swarm/modules.d.ts" />
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import createTorrent from 'create-torrent';
import parseTorrent from 'parse-torrent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BencodeDict,
  BencodeError,
  MAX_BENCODE_DEPTH,
  readBencode,
} from '../features/downloads/bencode-reader';
import { MAX_TORRENT_FILE_BYTES } from '../features/downloads/downloads-messages';
import { bytesToBase64, readTorrentFile } from '../features/downloads/torrent-file';

let root: string;
let multi: Uint8Array;
let single: Uint8Array;

function make(path: string, name: string): Promise<Uint8Array> {
  return new Promise((resolve, reject) =>
    createTorrent(
      path,
      { name, pieceLength: 16 * 1024, announceList: [['http://127.0.0.1:1/announce']] },
      (error, torrent) => (error ? reject(error) : resolve(torrent)),
    ),
  );
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'underpass-torrent-file-'));
  await mkdir(join(root, 'multi', 'video'), { recursive: true });
  await writeFile(join(root, 'multi', 'video', 'movie.mp4'), randomBytes(40_000));
  await writeFile(join(root, 'multi', 'video', 'subtitles.srt'), randomBytes(3_000));
  await writeFile(join(root, 'multi', 'readme.txt'), randomBytes(20_000));
  await writeFile(join(root, 'one.bin'), randomBytes(10_000));
  multi = await make(join(root, 'multi'), 'multi');
  single = await make(join(root, 'one.bin'), 'one.bin');
});

afterAll(() => rm(root, { recursive: true, force: true }));

/**
 * The strict bencode reader and the .torrent reader on well-formed, odd and hostile bytes, and against torrents
 * made by create-torrent and read by parse-torrent (what WebTorrent uses).
 */

const bytes = (text: string) => new TextEncoder().encode(text);

describe('readBencode', () => {
  it('reads integers, strings, lists and dictionaries, keeping each dictionary’s byte span', () => {
    const input = bytes('d1:ai-3e1:bl3:xyzi0eee');
    const value = readBencode(input);
    expect(value).toBeInstanceOf(BencodeDict);
    const dict = value as BencodeDict;
    expect(dict.get('a')).toBe(-3);
    expect(dict.get('b')).toEqual([bytes('xyz'), 0]);
    expect([dict.start, dict.end]).toEqual([0, input.length]);
  });

  it.each([
    ['', 'empty'],
    ['l-3:e', 'a negative string length (the bencode package 4.0.1 loops for ever on this one)'],
    ['l-2:abe', 'another negative string length'],
    ['5:abc', 'a string longer than the input'],
    ['i01e', 'a leading zero'],
    ['i-0e', 'negative zero'],
    ['i99999999999999999999e', 'an unsafe integer'],
    ['d1:ai1e1:ai2ee', 'a duplicate key'],
    ['li1e', 'a truncated list'],
    ['d1:a', 'a truncated dictionary'],
    ['i1ei2e', 'trailing bytes'],
    ['x', 'an unknown type'],
    ['l'.repeat(MAX_BENCODE_DEPTH + 2) + 'e'.repeat(MAX_BENCODE_DEPTH + 2), 'nesting too deep'],
  ])('refuses %j (%s)', (input) => {
    expect(() => readBencode(bytes(input))).toThrow(BencodeError);
  });

  it('refuses a megabyte of nesting without overflowing the stack', () => {
    expect(() => readBencode(bytes('l'.repeat(1_000_000)))).toThrow(BencodeError);
  });
});

describe('readTorrentFile', () => {
  it('reads a multi-file torrent as WebTorrent does: infohash, name, files in order with their paths', async () => {
    const read = await readTorrentFile(multi);
    // parse-torrent (the types the swarm declares name only what it uses) lists files too.
    const parsed = (await parseTorrent(multi)) as unknown as {
      infoHash: string;
      files: { path: string; length: number }[];
    };
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    expect(read.torrent.infoHash).toBe(parsed.infoHash);
    expect(read.torrent.name).toBe('multi');
    expect(read.torrent.length).toBe(63_000);
    expect(read.torrent.fileCount).toBe(3);
    expect(read.torrent.files).toEqual(
      parsed.files.map((file, index) => ({
        index,
        path: file.path.split(/[\\/]/).join('/'),
        length: file.length,
      })),
    );
  });

  it('reads a single-file torrent: one file named as the torrent', async () => {
    const read = await readTorrentFile(single);
    expect(read).toMatchObject({
      ok: true,
      torrent: {
        name: 'one.bin',
        length: 10_000,
        fileCount: 1,
        files: [{ index: 0, path: 'one.bin', length: 10_000 }],
      },
    });
    if (read.ok) expect(read.torrent.infoHash).toBe((await parseTorrent(single)).infoHash);
  });

  const info = 'd6:lengthi40000e4:name5:a.bin12:piece lengthi16384e6:pieces60:' + 'x'.repeat(60) + 'e';
  const infoHash = createHash('sha1').update(bytes(info)).digest('hex');

  it('hashes the info dictionary as written and keeps nothing else for the user’s client', async () => {
    const read = await readTorrentFile(
      bytes(`d8:announce14:http://t.ex/an4:info${info}8:url-listl9:http://w/ee`),
    );
    expect(read).toEqual({
      ok: true,
      torrent: {
        infoHash,
        name: 'a.bin',
        length: 40000,
        fileCount: 1,
        files: [{ index: 0, path: 'a.bin', length: 40000 }],
        trackers: ['http://t.ex/an'],
        droppedTrackers: 0,
        userTorrent: bytes(`d4:info${info}e`),
      },
    });
  });

  it.each([
    ['d4:infoi1ee', 'not-a-torrent'],
    ['le', 'not-a-torrent'],
    [
      'd4:infod6:lengthi40000e4:name1:a12:piece lengthi16384e6:pieces59:' + 'x'.repeat(59) + 'ee',
      'not-a-torrent',
    ],
    // Three pieces' hashes for a length that needs two.
    [
      'd4:infod6:lengthi20000e4:name1:a12:piece lengthi16384e6:pieces60:' + 'x'.repeat(60) + 'ee',
      'not-a-torrent',
    ],
    ['d4:infod4:name1:a12:meta versioni2e12:piece lengthi16384eee', 'unsupported'],
  ])('refuses %j', async (input, problem) => {
    expect(await readTorrentFile(bytes(input))).toMatchObject({ ok: false, problem });
  });

  it('refuses an empty file and more bytes than any real .torrent', async () => {
    expect(await readTorrentFile(new Uint8Array())).toMatchObject({ ok: false, problem: 'empty' });
    expect(await readTorrentFile(new Uint8Array(MAX_TORRENT_FILE_BYTES + 1))).toMatchObject({
      ok: false,
      problem: 'too-large',
    });
  });

  it('survives every truncation of a real torrent without throwing', async () => {
    for (let end = 1; end < multi.length; end += 7) {
      const read = await readTorrentFile(multi.subarray(0, end));
      expect(read.ok).toBe(false);
    }
  });
});

describe('bytesToBase64', () => {
  it('matches Node for sizes around its slice boundary and the padding cases', () => {
    for (const size of [0, 1, 2, 3, 0x8000 - 1, 0x8000, 0x8000 + 1, 3 * 0x8000 + 2, 1_000_003]) {
      const bytes = new Uint8Array(randomBytes(size));
      expect(bytesToBase64(bytes), String(size)).toBe(Buffer.from(bytes).toString('base64'));
    }
  });
});
