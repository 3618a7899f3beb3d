// eslint-disable-next-line @typescript-eslint/triple-slash-reference -- ambient declarations of the untyped BitTorrent packages (not a module to import)
/// <reference path="../../test/swarm/modules.d.ts" />
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import createTorrent from 'create-torrent';
import parseTorrent from 'parse-torrent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_TORRENT_FILE_BYTES } from '../features/downloads/downloads-messages';
import { bytesToBase64, readTorrentFile } from '../features/downloads/torrent-file';

/**
 * The Downloads page's own reading of a .torrent (to show its files before adding, and to know its infohash
 * for the selection sent right behind the add): against torrents made by create-torrent and read by
 * parse-torrent (what WebTorrent uses), and against malformed bytes, which must come back as a problem.
 */

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

const encoder = new TextEncoder();

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
    expect(read.preview.infoHash).toBe(parsed.infoHash);
    expect(read.preview.name).toBe('multi');
    expect(read.preview.length).toBe(63_000);
    expect(read.preview.fileCount).toBe(3);
    expect(read.preview.files).toEqual(
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
      preview: {
        name: 'one.bin',
        length: 10_000,
        fileCount: 1,
        files: [{ index: 0, path: 'one.bin', length: 10_000 }],
      },
    });
    if (read.ok) expect(read.preview.infoHash).toBe((await parseTorrent(single)).infoHash);
  });

  it('refuses what is empty, too large or not a torrent, with a problem code', async () => {
    expect(await readTorrentFile(new Uint8Array())).toMatchObject({ ok: false, problem: 'empty' });
    expect(await readTorrentFile(new Uint8Array(MAX_TORRENT_FILE_BYTES + 1))).toMatchObject({
      ok: false,
      problem: 'too-large',
    });
    const bad = [
      '<html>not a torrent</html>',
      'd4:infod4:name1:ae', // ends early
      'd4:info999999999:xe', // a string longer than the bytes
      `${'l'.repeat(100)}${'e'.repeat(100)}`, // nested too deeply
      'i12e', // not a dictionary
      'de', // no info
      'd4:infod6:lengthi1e4:name1:aee', // no piece hashes
      'd4:infod4:name1:a6:pieces0:5:filesleee', // an empty file list
      'd4:infod4:name1:a6:pieces0:5:filesld6:lengthi-1e4:pathl1:beeeee', // a negative length
      'd4:infod4:name1:a6:pieces0:6:lengthi1eee4:junk', // bytes after the end
      'd4:infod4:name1:a6:pieces0:6:lengthi99999999999999999999eee', // an integer past safe
      'd4:infod4:name1:a6:pieces0:6:lengthi01eee', // a leading zero
    ];
    for (const text of bad) {
      const read = await readTorrentFile(encoder.encode(text));
      expect(read, text).toMatchObject({ ok: false, problem: 'not-a-torrent' });
    }
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
