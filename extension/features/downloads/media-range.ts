/**
 * The one part of HTTP the media server needs: which bytes of a file a `Range` header asks for (RFC 9110
 * §14). A media element asks for one range at a time (`bytes=N-`, sometimes `bytes=N-M`); anything the
 * server does not understand, including several ranges at once, is answered with the whole file, which the
 * RFC allows ("a server MAY ignore the Range header field"). A range that starts past the end is refused
 * (416), as the RFC requires.
 */

export type ByteRange =
  /** No usable Range header: the whole file, status 200. */
  | { kind: 'whole' }
  /** One range, both ends inclusive and inside the file: status 206. */
  | { kind: 'part'; start: number; end: number }
  /** A well-formed range that no byte of the file satisfies: status 416. */
  | { kind: 'unsatisfiable' };

/** Longer than any header a browser sends for one range; anything longer is ignored, not parsed. */
export const MAX_RANGE_HEADER = 200;

const SINGLE_RANGE = /^bytes[ \t]*=[ \t]*(\d*)[ \t]*-[ \t]*(\d*)[ \t]*$/i;

export function parseRange(header: string | undefined, size: number): ByteRange {
  if (header === undefined || header.length > MAX_RANGE_HEADER) return { kind: 'whole' };
  const match = SINGLE_RANGE.exec(header);
  if (!match) return { kind: 'whole' }; // several ranges, another unit, or garbage
  const [, first = '', last = ''] = match;
  if (first === '' && last === '') return { kind: 'whole' };
  if (first === '') {
    // `bytes=-N`: the last N bytes.
    const suffix = Number(last);
    if (suffix === 0 || size === 0) return { kind: 'unsatisfiable' };
    return { kind: 'part', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(first);
  const end = last === '' ? Number.MAX_SAFE_INTEGER : Number(last);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return { kind: 'whole' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'part', start, end: Math.min(end, size - 1) };
}
