import { describe, expect, it } from 'vitest';
import { MessageCutter } from '../src/torrent/message-cutter.js';

/** A deterministic pseudo-random generator (tests must not depend on luck). */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const handshake = (): Uint8Array => {
  const bytes = new Uint8Array(68);
  bytes[0] = 19;
  bytes.set(new TextEncoder().encode('BitTorrent protocol'), 1);
  bytes.fill(7, 28);
  return bytes;
};

/** A length-prefixed message with `payload` bytes after its 4-byte length (0: a keep-alive). */
const message = (payload: number, fill = 1): Uint8Array => {
  const bytes = new Uint8Array(4 + payload).fill(fill, 4);
  new DataView(bytes.buffer).setUint32(0, payload);
  return bytes;
};

const join = (parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

/** Byte equality, fast (toEqual walks a large array element by element). */
const same = (a: Uint8Array, b: Uint8Array): boolean =>
  Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/** The stream cut into chunks of the given sizes (the last one takes the rest). */
function chunked(stream: Uint8Array, sizes: () => number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < stream.length;) {
    const size = Math.min(stream.length - at, Math.max(1, sizes()));
    chunks.push(stream.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Offsets in the stream at which a handshake or message ends. */
function boundariesOf(units: Uint8Array[]): Set<number> {
  const ends = new Set<number>();
  let at = 0;
  for (const unit of units) ends.add((at += unit.length));
  return ends;
}

describe('MessageCutter', () => {
  const units = [
    handshake(),
    message(0),
    message(1, 2),
    ...Array.from({ length: 40 }, (_, index) => message(9 + 16384, index)),
    message(13, 6),
    message(0),
    message(5, 3),
  ];
  const stream = join(units);
  const boundaries = boundariesOf(units);

  it('gives back every byte, in order, however the stream is chunked', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const next = random(seed);
      const cutter = new MessageCutter();
      const out: Uint8Array[] = [];
      for (const chunk of chunked(stream, () => Math.floor(next() * 70_000))) {
        const parts = cutter.cut(chunk);
        expect(parts.length).toBeGreaterThanOrEqual(1);
        expect(parts.length).toBeLessThanOrEqual(3);
        expect(same(join(parts), chunk)).toBe(true);
        out.push(...parts);
      }
      expect(same(join(out), stream)).toBe(true);
    }
  });

  it('ends every part but a chunk’s last at a message boundary', () => {
    const cutter = new MessageCutter();
    let at = 0;
    for (const chunk of chunked(stream, () => 60 * 1024)) {
      const parts = cutter.cut(chunk);
      for (const [index, part] of parts.entries()) {
        at += part.length;
        if (index < parts.length - 1) expect(boundaries.has(at)).toBe(true);
      }
    }
    expect(at).toBe(stream.length);
    expect(cutter.atBoundary).toBe(true);
  });

  it('handles a length prefix and a handshake split across chunks', () => {
    const cutter = new MessageCutter();
    const out: Uint8Array[] = [];
    for (const chunk of chunked(stream, () => 1)) out.push(...cutter.cut(chunk));
    expect(same(join(out), stream)).toBe(true);
    expect(cutter.atBoundary).toBe(true);
  });

  it('makes the wire copy far less when 60 KiB cells carry 16 KiB blocks', () => {
    const cells = chunked(stream, () => 60 * 1024);
    const cutter = new MessageCutter();
    const cut = cells.flatMap((cell) => cutter.cut(cell));
    const whole = wireCopiesOf(cells, boundaries);
    const cutCopies = wireCopiesOf(cut, boundaries);
    expect(whole).toBeGreaterThan(stream.length * 0.9);
    // Only the one block that straddles two cells is copied: at most a message per cell.
    expect(cutCopies).toBeLessThanOrEqual(cells.length * (4 + 9 + 16384));
    expect(cutCopies).toBeLessThan(whole / 3);
  });

  it('passes hostile bytes through unchanged (huge lengths, garbage)', () => {
    const next = random(9);
    const garbage = new Uint8Array(200_000).map(() => Math.floor(next() * 256));
    garbage.set([0xff, 0xff, 0xff, 0xff], 100);
    const cutter = new MessageCutter();
    const out: Uint8Array[] = [];
    for (const chunk of chunked(garbage, () => Math.floor(next() * 5000))) {
      const parts = cutter.cut(chunk);
      expect(same(join(parts), chunk)).toBe(true);
      out.push(...parts);
    }
    expect(same(join(out), garbage)).toBe(true);
  });
});

/**
 * Bytes that bittorrent-protocol's wire copies when fed `parts` one by one: whenever it holds an unparsed end,
 * the next part is concatenated onto it (what the cutter is for).
 */
function wireCopiesOf(parts: Uint8Array[], boundaries: Set<number>): number {
  let copied = 0;
  let held = 0;
  let at = 0;
  for (const part of parts) {
    const start = at;
    at += part.length;
    if (held > 0) copied += held + part.length;
    // After parsing, the wire holds what follows the last boundary in (start - held, at].
    let last = -1;
    for (let offset = at; offset > start - held; offset--) {
      if (boundaries.has(offset)) {
        last = offset;
        break;
      }
    }
    held = last < 0 ? held + part.length : at - last;
  }
  return copied;
}
