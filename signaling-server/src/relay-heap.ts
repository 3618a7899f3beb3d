/**
 * A binary max-heap of relays by free capacity, with positions indexed so a relay whose free capacity
 * changes moves in O(log n): choosing a relay stays cheap with ten thousand of them (as in Snowflake's
 * broker). Ties go to the relay that registered first.
 */
export type HeapRelay = { readonly peerId: string; readonly seq: number; free: number };

export class RelayHeap<R extends HeapRelay> {
  private readonly items: R[] = [];
  private readonly positions = new Map<string, number>();

  get size(): number {
    return this.items.length;
  }

  add(relay: R): void {
    if (this.positions.has(relay.peerId)) return;
    this.items.push(relay);
    this.positions.set(relay.peerId, this.items.length - 1);
    this.up(this.items.length - 1);
  }

  remove(peerId: string): void {
    const index = this.positions.get(peerId);
    if (index === undefined) return;
    const last = this.items.pop()!;
    this.positions.delete(peerId);
    if (index === this.items.length) return;
    this.items[index] = last;
    this.positions.set(last.peerId, index);
    this.down(this.up(index));
  }

  /** Call after changing `relay.free`. */
  update(relay: R): void {
    const index = this.positions.get(relay.peerId);
    if (index !== undefined) this.down(this.up(index));
  }

  /** The relay with the most free capacity other than `exclude`, if it has any free capacity. */
  best(exclude?: string): R | undefined {
    let candidate = this.items[0];
    if (candidate && candidate.peerId === exclude) {
      // The second best is one of the root's children.
      const left = this.items[1];
      const right = this.items[2];
      candidate = left && right ? (this.before(left, right) ? left : right) : (left ?? right);
    }
    return candidate && candidate.free > 0 ? candidate : undefined;
  }

  private before(a: R, b: R): boolean {
    return a.free > b.free || (a.free === b.free && a.seq < b.seq);
  }

  private swap(i: number, j: number): void {
    const a = this.items[i]!;
    const b = this.items[j]!;
    this.items[i] = b;
    this.items[j] = a;
    this.positions.set(b.peerId, i);
    this.positions.set(a.peerId, j);
  }

  private up(index: number): number {
    let i = index;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(this.items[i]!, this.items[parent]!)) break;
      this.swap(i, parent);
      i = parent;
    }
    return i;
  }

  private down(index: number): void {
    let i = index;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let top = i;
      if (left < this.items.length && this.before(this.items[left]!, this.items[top]!)) top = left;
      if (right < this.items.length && this.before(this.items[right]!, this.items[top]!)) top = right;
      if (top === i) return;
      this.swap(i, top);
      i = top;
    }
  }
}
