import { describe, expect, it } from 'vitest';
import {
  MAX_REORDER_BYTES,
  MAX_REORDER_MESSAGES,
  ReorderBuffer,
  SEQUENCE_SPACE,
} from '../src/links/reorder-buffer.js';

const message = (tag: number, size = 1) => new Uint8Array(size).fill(tag);

/** Feeds `sequences` in; returns what came out, in order, by each message's tag. */
function feed(buffer: ReorderBuffer, sequences: number[]): number[] {
  const out: number[] = [];
  for (const sequence of sequences) {
    const m = message(sequence % 256);
    if (buffer.arrive(sequence, m) !== 'next') continue;
    out.push(m[0]!);
    for (let held = buffer.nextHeld(); held; held = buffer.nextHeld()) out.push(held[0]!);
  }
  return out;
}

describe('ReorderBuffer', () => {
  it('puts messages back in the order sent, holding those that came early', () => {
    const buffer = new ReorderBuffer();
    expect(feed(buffer, [2, 1, 4])).toEqual([]);
    expect(buffer.heldBytes).toBe(3);
    expect(feed(buffer, [0])).toEqual([0, 1, 2]);
    expect(buffer.heldBytes).toBe(1);
    expect(feed(buffer, [3, 5])).toEqual([3, 4, 5]);
    expect(buffer.heldBytes).toBe(0);
  });

  it('calls a sequence already delivered or already held a duplicate, and keeps nothing of it', () => {
    const buffer = new ReorderBuffer();
    feed(buffer, [0, 1]);
    expect(buffer.arrive(0, message(0))).toBe('duplicate');
    expect(buffer.arrive(3, message(3))).toBe('held');
    expect(buffer.arrive(3, message(3))).toBe('duplicate');
    expect(buffer.heldBytes).toBe(1);
  });

  it('delivers across the wrap of its 32-bit sequence', () => {
    const buffer = new ReorderBuffer(SEQUENCE_SPACE - 1);
    expect(feed(buffer, [0])).toEqual([]);
    expect(feed(buffer, [SEQUENCE_SPACE - 1])).toEqual([(SEQUENCE_SPACE - 1) % 256, 0]);
  });

  it('counts mod 2³²: half the space behind the next expected is delivered, half ahead is new', () => {
    const buffer = new ReorderBuffer();
    // 0 is expected next, so 2³² − 1 is the one just before it.
    expect(buffer.arrive(SEQUENCE_SPACE - 1, message(9))).toBe('duplicate');
    expect(buffer.arrive(2 ** 31, message(9))).toBe('duplicate');
    expect(buffer.arrive(2 ** 31 - 1, message(9))).toBe('held');
  });

  it('refuses to hold more than its bounds, and keeps nothing of what it refused', () => {
    const bytes = new ReorderBuffer();
    expect(bytes.arrive(1, new Uint8Array(MAX_REORDER_BYTES))).toBe('held');
    expect(bytes.arrive(2, message(2, 1))).toBe('over-limit');
    expect(bytes.heldBytes).toBe(MAX_REORDER_BYTES);

    const count = new ReorderBuffer();
    for (let s = 1; s <= MAX_REORDER_MESSAGES; s++) expect(count.arrive(s, message(s))).toBe('held');
    expect(count.arrive(MAX_REORDER_MESSAGES + 1, message(0))).toBe('over-limit');
    expect(feed(count, [0])).toHaveLength(MAX_REORDER_MESSAGES + 1);
  });
});
