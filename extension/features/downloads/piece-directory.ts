/**
 * The names of the OPFS directories that hold a download's verified pieces (piece-store.ts), apart from the
 * store itself so that the saved list (which the background reads too) can check them without loading it.
 *
 * Each add of a torrent gets a directory of its own, `underpass-<infohash>-<16 hex digits>`, recorded in its
 * saved download: a torrent removed and added again never shares a directory with what is still being deleted
 * of its earlier copy, and the sweep at start can tell a directory made a moment ago by this run from an
 * orphan. Downloads saved before names had a suffix keep `underpass-<infohash>`.
 */

export const PIECE_DIRECTORY = /^underpass-[0-9a-f]{40}(?:-[0-9a-f]{16})?$/;

export function newPieceDirectory(infoHash: string): string {
  const suffix = Array.from(crypto.getRandomValues(new Uint8Array(8)), (byte) =>
    byte.toString(16).padStart(2, '0'),
  ).join('');
  return `underpass-${infoHash}-${suffix}`;
}

/** Where a download saved without a directory name keeps its pieces. */
export function legacyPieceDirectory(infoHash: string): string {
  return `underpass-${infoHash}`;
}
