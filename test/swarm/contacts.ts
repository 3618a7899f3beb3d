/** Who contacted which part of the local swarm: every tracker request, every connection to a seeder. */
export interface Contact {
  /** The part contacted: `tracker-http`, `tracker-udp`, `webtorrent-seeder`, `aria2-seeder`, a decoy's name. */
  part: string;
  from: string;
}

export class ContactLog {
  private readonly entries: Contact[] = [];

  record(part: string, from: string | undefined): void {
    this.entries.push({ part, from: (from ?? 'unknown').replace(/^::ffff:/, '') });
  }

  all(): Contact[] {
    return [...this.entries];
  }

  /** Every distinct address that made contact. */
  addresses(): string[] {
    return [...new Set(this.entries.map((entry) => entry.from))].sort();
  }

  clear(): void {
    this.entries.length = 0;
  }
}
