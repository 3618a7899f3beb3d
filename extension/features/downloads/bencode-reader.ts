/**
 * A strict bencode reader for bytes nobody vouches for (a .torrent the user dropped, a record read back from
 * storage). Strict where the `bencode` package is lenient: a negative or oversized string length there moves
 * its cursor backwards and can loop for ever; here every length is checked against what is left, nesting is
 * bounded, integers must be safe and written without leading zeros, dictionary keys are unique, and the whole
 * input must be one value. Dictionaries keep the byte span they came from, so a torrent's infohash is the hash
 * of the bytes as written, never of a re-encoding.
 */

export type BencodeValue = number | Uint8Array | BencodeValue[] | BencodeDict;

export class BencodeDict {
  constructor(
    readonly entries: ReadonlyMap<string, BencodeValue>,
    /** Offsets of this dictionary in the input: `input.subarray(start, end)` is its encoding. */
    readonly start: number,
    readonly end: number,
  ) {}

  get(key: string): BencodeValue | undefined {
    return this.entries.get(key);
  }
}

export class BencodeError extends Error {
  readonly code = 'malformed-bencode';
}

/** Deeper than any torrent needs (root → info → files → file → path → string is five). */
export const MAX_BENCODE_DEPTH = 16;

const D = 0x64; // d
const L = 0x6c; // l
const I = 0x69; // i
const E = 0x65; // e
const COLON = 0x3a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

const keyDecoder = new TextDecoder('utf-8', { fatal: false });

/** Reads one bencoded value that spans all of `input`; throws a BencodeError on anything else. */
export function readBencode(input: Uint8Array): BencodeValue {
  let position = 0;

  const fail = (what: string): never => {
    throw new BencodeError(`${what} at byte ${position}`);
  };

  /** Digits from `position` up to `stop` (exclusive), as a safe whole number; no sign, no leading zero. */
  const digits = (stop: number): number => {
    const first = position;
    if (first === stop) fail('missing number');
    if (input[first] === ZERO && stop - first > 1) fail('leading zero');
    let value = 0;
    for (; position < stop; position++) {
      const byte = input[position]!;
      if (byte < ZERO || byte > NINE) fail('not a digit');
      value = value * 10 + (byte - ZERO);
      if (value > Number.MAX_SAFE_INTEGER) fail('number too large');
    }
    return value;
  };

  const find = (byte: number): number => {
    const at = input.indexOf(byte, position);
    if (at < 0) fail('truncated');
    return at;
  };

  const readString = (): Uint8Array => {
    const colon = find(COLON);
    const length = digits(colon);
    position = colon + 1;
    if (length > input.length - position) fail('string longer than the input');
    const bytes = input.subarray(position, position + length);
    position += length;
    return bytes;
  };

  const readInteger = (): number => {
    position += 1; // i
    const end = find(E);
    const negative = input[position] === MINUS;
    if (negative) position += 1;
    const value = digits(end);
    if (negative && value === 0) fail('negative zero');
    position = end + 1;
    return negative ? -value : value;
  };

  const readValue = (depth: number): BencodeValue => {
    if (depth > MAX_BENCODE_DEPTH) fail('nested too deep');
    const byte = input[position];
    if (byte === undefined) return fail('truncated');
    if (byte === I) return readInteger();
    if (byte === L) {
      position += 1;
      const list: BencodeValue[] = [];
      while (input[position] !== E) {
        if (position >= input.length) fail('truncated list');
        list.push(readValue(depth + 1));
      }
      position += 1;
      return list;
    }
    if (byte === D) {
      const start = position;
      position += 1;
      const entries = new Map<string, BencodeValue>();
      while (input[position] !== E) {
        if (position >= input.length) fail('truncated dictionary');
        const key = keyDecoder.decode(readString());
        if (entries.has(key)) fail(`duplicate key "${key.slice(0, 40)}"`);
        entries.set(key, readValue(depth + 1));
      }
      position += 1;
      return new BencodeDict(entries, start, position);
    }
    if (byte >= ZERO && byte <= NINE) return readString();
    return fail('unexpected byte');
  };

  if (input.length === 0) fail('empty input');
  const value = readValue(0);
  if (position !== input.length) fail('trailing bytes');
  return value;
}
