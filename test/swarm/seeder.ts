/** A seeder of the local swarm: where it listens, and how to stop it. */
export interface Seeder {
  name: 'webtorrent-seeder' | 'aria2-seeder';
  address: string;
  port: number;
  /** Brings its contact records up to date (aria2's come from its log). */
  refreshContacts(): Promise<void>;
  stop(): Promise<void>;
}
