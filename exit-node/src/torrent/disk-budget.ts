/**
 * The torrent service's disk accounting: each torrent reserves the bytes of the files its users selected
 * (what it will hold once complete), and the reservations stay within a budget. Making room evicts
 * torrents no user is attached to, least recently used first; a torrent in use is never evicted.
 */
export class DiskBudget {
  private readonly entries = new Map<string, { bytes: number; lastUsed: number; inUse: boolean }>();

  constructor(readonly budgetBytes: number) {}

  get usedBytes(): number {
    let total = 0;
    for (const entry of this.entries.values()) total += entry.bytes;
    return total;
  }

  /** A torrent's reservation (0 if it has none). */
  bytesOf(infoHash: string): number {
    return this.entries.get(infoHash)?.bytes ?? 0;
  }

  has(infoHash: string): boolean {
    return this.entries.has(infoHash);
  }

  /**
   * Which torrents to evict so that `infoHash` can hold `bytes` (least recently used first), or undefined
   * when evicting every user-less torrent would still not make room. Changes nothing.
   */
  plan(infoHash: string, bytes: number): string[] | undefined {
    const others = [...this.entries].filter(([hash]) => hash !== infoHash);
    let used = others.reduce((sum, [, entry]) => sum + entry.bytes, 0);
    const evict: string[] = [];
    const candidates = others
      .filter(([, entry]) => !entry.inUse)
      .sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [hash, entry] of candidates) {
      if (used + bytes <= this.budgetBytes) break;
      evict.push(hash);
      used -= entry.bytes;
    }
    return used + bytes <= this.budgetBytes ? evict : undefined;
  }

  /** Records (or updates) a torrent's reservation. */
  reserve(infoHash: string, bytes: number, now: number): void {
    const entry = this.entries.get(infoHash);
    this.entries.set(infoHash, { bytes, lastUsed: now, inUse: entry?.inUse ?? true });
  }

  /** A torrent gained its first user or lost its last one; the time counts as its last use. */
  setInUse(infoHash: string, inUse: boolean, now: number): void {
    const entry = this.entries.get(infoHash);
    if (entry) this.entries.set(infoHash, { ...entry, inUse, lastUsed: now });
  }

  release(infoHash: string): void {
    this.entries.delete(infoHash);
  }
}
