import { describe, expect, it } from 'vitest';
import { RelayHeap, type HeapRelay } from '../src/relay-heap.js';

/** What the heap must answer: the most free capacity, ties to the lowest seq, never a full relay. */
function bruteBest(relays: Iterable<HeapRelay>, exclude?: string): HeapRelay | undefined {
  let best: HeapRelay | undefined;
  for (const r of relays) {
    if (r.peerId === exclude || r.free <= 0) continue;
    if (!best || r.free > best.free || (r.free === best.free && r.seq < best.seq)) best = r;
  }
  return best;
}

describe('RelayHeap', () => {
  it('agrees with a linear scan through random adds, removes and capacity changes', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const heap = new RelayHeap<HeapRelay>();
    const live = new Map<string, HeapRelay>();
    let seq = 0;
    for (let step = 0; step < 5_000; step++) {
      const op = random(4);
      const ids = [...live.keys()];
      if (op === 0 || ids.length === 0) {
        const relay = { peerId: `r${seq}`, seq: seq++, free: random(5) };
        live.set(relay.peerId, relay);
        heap.add(relay);
      } else if (op === 1) {
        const id = ids[random(ids.length)]!;
        live.delete(id);
        heap.remove(id);
      } else {
        const relay = live.get(ids[random(ids.length)]!)!;
        relay.free = random(5) - 1;
        heap.update(relay);
      }
      const exclude = ids.length > 0 && random(3) === 0 ? ids[random(ids.length)] : undefined;
      const expected = bruteBest(live.values(), exclude);
      const got = heap.best(exclude);
      // With an exclusion the heap looks at the root's children only, which still finds the best.
      expect(got?.peerId).toBe(expected?.peerId);
      expect(heap.size).toBe(live.size);
    }
  });
});
