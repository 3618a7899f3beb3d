import { mkdtemp, readFile, rm, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { recentPiecesStore, type ChunkStore } from '../src/torrent/recent-pieces-store.js';

const PIECE = 1024;
const PIECES = 8;

const pieceBytes = (index: number): Uint8Array =>
  new Uint8Array(PIECE).map((_, i) => (index * 31 + i) & 0xff);

const put = (store: ChunkStore, index: number, bytes: Uint8Array) =>
  new Promise<void>((resolve, reject) =>
    store.put(index, bytes, (error) => (error ? reject(error) : resolve())),
  );

const get = (store: ChunkStore, index: number, options: { offset?: number; length?: number } | null = null) =>
  new Promise<Uint8Array>((resolve, reject) =>
    store.get(index, options, (error, value) => (error ? reject(error) : resolve(value!))),
  );

const close = (store: ChunkStore) => new Promise<void>((resolve) => store.close(() => resolve()));

describe('recentPiecesStore', () => {
  let dir: string;
  let file: string;
  let store: ChunkStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'underpass-recent-'));
    file = join(dir, 'data.bin');
    // Room for three pieces in memory; the file store (WebTorrent's in Node) holds all eight on disk.
    const Store = recentPiecesStore(3 * PIECE);
    store = new Store(PIECE, { path: dir, files: [{ path: 'data.bin', length: PIECE * PIECES }] });
  });

  afterEach(async () => {
    await close(store);
    await rm(dir, { recursive: true, force: true });
  });

  it('writes every piece to disk and reads back the same bytes, whole or in part', async () => {
    for (let index = 0; index < PIECES; index++) await put(store, index, pieceBytes(index));
    const onDisk = new Uint8Array(await readFile(file));
    for (let index = 0; index < PIECES; index++) {
      expect(onDisk.subarray(index * PIECE, (index + 1) * PIECE)).toEqual(pieceBytes(index));
      expect(await get(store, index)).toEqual(pieceBytes(index));
      expect(await get(store, index, { offset: 100, length: 50 })).toEqual(
        pieceBytes(index).subarray(100, 150),
      );
    }
  });

  it('serves pieces not yet read from memory, within its budget, and forgets a piece once it is read whole', async () => {
    for (let index = 0; index < PIECES; index++) await put(store, index, pieceBytes(index));
    // With the file emptied behind the store's back, only what is held in memory can still be read: the
    // first three pieces (the budget), which a user downloading in order asks for first.
    await truncate(file, 0);
    expect(await get(store, 1, { offset: 0, length: 10 })).toEqual(pieceBytes(1).subarray(0, 10));
    for (const index of [0, 1, 2]) expect(await get(store, index)).toEqual(pieceBytes(index));
    for (const index of [0, 1, 2, 3, 7]) await expect(get(store, index)).rejects.toThrow();
    // Read whole, they made room: a piece given now is kept again.
    await put(store, 5, pieceBytes(5));
    await truncate(file, 0);
    expect(await get(store, 5)).toEqual(pieceBytes(5));
  });

  it('takes the interface’s two-argument get (what WebTorrent’s cache store calls)', async () => {
    await put(store, 2, pieceBytes(2));
    const whole = await new Promise<Uint8Array>((resolve, reject) =>
      store.get(2, (error, value) => (error ? reject(error) : resolve(value!))),
    );
    expect(whole).toEqual(pieceBytes(2));
  });

  it('refuses a range outside the piece', async () => {
    await put(store, 1, pieceBytes(1));
    await expect(get(store, 1, { offset: PIECE - 10, length: 20 })).rejects.toThrow(/offset/);
    await expect(get(store, 1, { offset: -1, length: 5 })).rejects.toThrow(/offset/);
  });

  it('keeps nothing in memory when a piece is larger than the budget', async () => {
    const Store = recentPiecesStore(PIECE - 1);
    const small = new Store(PIECE, { path: dir, files: [{ path: 'other.bin', length: PIECE * 2 }] });
    try {
      await put(small, 0, pieceBytes(0));
      await truncate(join(dir, 'other.bin'), 0);
      await expect(get(small, 0)).rejects.toThrow();
    } finally {
      await close(small);
    }
  });
});
