import { describe, expect, it } from 'vitest';
import {
  legacyPieceDirectory,
  newPieceDirectory,
  PIECE_DIRECTORY,
} from '../features/downloads/piece-directory';
import { opfsPieceStorage, pieceStoreIn } from '../features/downloads/piece-store';

/** OPFS's root as the piece storage sees it: names, and recursive removal (which may fail). */
class FakeRoot {
  removed: string[] = [];
  failing = new Set<string>();
  constructor(
    public names: string[],
    private readonly whileListing: (name: string) => void = () => {},
  ) {}
  async *keys(): AsyncIterable<string> {
    for (const name of [...this.names]) {
      this.whileListing(name);
      yield name;
    }
  }
  async removeEntry(name: string, options?: { recursive?: boolean }): Promise<void> {
    if (!options?.recursive) throw new Error('a piece directory is only removed whole');
    if (this.failing.has(name)) throw new DOMException('in use', 'NoModificationAllowedError');
    this.names = this.names.filter((other) => other !== name);
    this.removed.push(name);
  }
}

const HASH = 'ab'.repeat(20);

describe('piece directories', () => {
  it('a new directory per add, under the infohash; the name before suffixes still counts', () => {
    const one = newPieceDirectory(HASH);
    const two = newPieceDirectory(HASH);
    expect(one).toMatch(new RegExp(`^underpass-${HASH}-[0-9a-f]{16}$`));
    expect(two).not.toBe(one);
    expect(PIECE_DIRECTORY.test(legacyPieceDirectory(HASH))).toBe(true);
    for (const bad of ['underpass-', `underpass-${HASH}-`, `underpass-${HASH}-zz`, `x-${HASH}`, '../etc'])
      expect(PIECE_DIRECTORY.test(bad), bad).toBe(false);
  });

  it('a store class is made only for a piece directory', () => {
    expect(() => pieceStoreIn('chunks')).toThrow(/not a piece directory/);
    expect(typeof pieceStoreIn(newPieceDirectory(HASH))).toBe('function');
  });
});

describe('opfsPieceStorage', () => {
  it('the sweep deletes piece directories nobody owns, and nothing else', async () => {
    const owned = newPieceDirectory(HASH);
    const orphans = [newPieceDirectory(HASH), legacyPieceDirectory('cd'.repeat(20))];
    const root = new FakeRoot([owned, ...orphans, 'chunks', 'someone-elses']);
    const storage = opfsPieceStorage(async () => root);
    expect(await storage.sweep((name) => name === owned)).toBe(2);
    expect(root.removed).toEqual(orphans);
    expect(root.names).toEqual([owned, 'chunks', 'someone-elses']);
  });

  it('asks about each directory right before deleting it: one claimed while the sweep runs is kept', async () => {
    const claimed = new Set<string>();
    const late = newPieceDirectory(HASH);
    const early = newPieceDirectory('cd'.repeat(20));
    // The add that makes `late` is claimed while the listing is still going.
    const root = new FakeRoot([early, late], (name) => name === late && claimed.add(late));
    const storage = opfsPieceStorage(async () => root);
    expect(await storage.sweep((name) => claimed.has(name))).toBe(1);
    expect(root.names).toEqual([late]);
  });

  it('a directory that cannot go is not counted and does not stop the sweep', async () => {
    const stuck = newPieceDirectory(HASH);
    const other = newPieceDirectory(HASH);
    const root = new FakeRoot([stuck, other]);
    root.failing.add(stuck);
    expect(await opfsPieceStorage(async () => root).sweep(() => false)).toBe(1);
    expect(root.names).toEqual([stuck]);
  });

  it('remove deletes a piece directory and refuses any other name', async () => {
    const directory = newPieceDirectory(HASH);
    const root = new FakeRoot([directory, 'chunks']);
    const storage = opfsPieceStorage(async () => root);
    await storage.remove('chunks');
    await storage.remove(directory);
    expect(root.names).toEqual(['chunks']);
  });
});
