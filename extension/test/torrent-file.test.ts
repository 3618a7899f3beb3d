import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  BencodeDict,
  BencodeError,
  MAX_BENCODE_DEPTH,
  readBencode,
} from '../features/downloads/bencode-reader';
import { MAX_TORRENT_FILE_BYTES } from '../features/downloads/downloads-messages';
import { readTorrentFile } from '../features/downloads/torrent-file';

/** The strict bencode reader and the .torrent reader on well-formed, odd and hostile bytes. */

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

  it('refuses more bytes than any real .torrent', async () => {
    expect(await readTorrentFile(new Uint8Array(MAX_TORRENT_FILE_BYTES + 1))).toMatchObject({
      ok: false,
      problem: 'too-large',
    });
  });
});
