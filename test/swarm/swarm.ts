import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { aria2Missing, startAria2Seeder } from './aria2-seeder.js';
import { ContactLog, type Contact } from './contacts.js';
import { makeContent, magnetOf, type ContentSpec, type SwarmContent } from './content.js';
import { startTracker, type RecordingTracker } from './recording-tracker.js';
import type { Seeder } from './seeder.js';
import { startWebTorrentSeeder } from './webtorrent-seeder.js';

export { magnetOf, sha256, type ContentSpec, type SwarmContent } from './content.js';
export { ContactLog, type Contact } from './contacts.js';
export { startTracker, type RecordingTracker } from './recording-tracker.js';

/** Loopback addresses of the swarm's parts (the exit under test uses another, e.g. 127.0.0.25). */
export const SWARM_ADDRESSES = {
  tracker: '127.0.0.21',
  webTorrent: '127.0.0.22',
  aria2: '127.0.0.23',
} as const;

export interface LocalSwarmOptions {
  /** Files of the torrent (random content unless given); default: three files over two directories, ~1.3 MB. */
  files?: ContentSpec[];
  pieceLength?: number;
  /** Start the aria2 seeder too (skipped, with a printed reason, only if aria2c is not installed). */
  aria2?: boolean;
}

export interface LocalSwarm {
  content: SwarmContent;
  tracker: RecordingTracker;
  seeders: Seeder[];
  /** Why aria2 is not part of this swarm, when it is not. */
  aria2Skipped: string | undefined;
  /** CIDRs an exit must explicitly allow to reach this swarm (its default policy refuses loopback). */
  allowDestinations: string[];
  magnet(trackers?: string[]): string;
  /** Every contact since the swarm was ready (its own setup announces excluded). */
  contacts(): Promise<Contact[]>;
  stop(): Promise<void>;
}

const DEFAULT_FILES = [
  { path: 'video/movie.bin', length: 700_000 },
  { path: 'video/subtitles.bin', length: 90_000 },
  { path: 'readme.bin', length: 500_000 },
];

/**
 * A local BitTorrent swarm on loopback: a tracker (HTTP and UDP) that knows the seeders, a WebTorrent seeder
 * and an aria2 seeder, each on its own address and recording every address that contacts it, seeding
 * generated content with known hashes. `stop` kills aria2, closes everything and removes the temp dir.
 */
export async function startSwarm(options: LocalSwarmOptions = {}): Promise<LocalSwarm> {
  const root = await mkdtemp(join(tmpdir(), 'underpass-swarm-'));
  const log = new ContactLog();
  const seeders: Seeder[] = [];
  let tracker: RecordingTracker | undefined;
  const stop = async () => {
    for (const seeder of seeders.splice(0)) await seeder.stop().catch(() => {});
    await tracker?.close();
    await rm(root, { recursive: true, force: true });
  };
  try {
    const content = await makeContent(
      join(root, 'content'),
      'underpass-test',
      options.files ?? DEFAULT_FILES,
      options.pieceLength,
    );
    tracker = await startTracker(SWARM_ADDRESSES.tracker, log);
    seeders.push(await startWebTorrentSeeder(content, SWARM_ADDRESSES.webTorrent, log));
    const wantAria2 = options.aria2 ?? true;
    const aria2Skipped = wantAria2 ? aria2Missing() : undefined;
    if (aria2Skipped) console.warn(`local swarm: aria2 seeder skipped: ${aria2Skipped}`);
    else if (wantAria2) seeders.push(await startAria2Seeder(content, SWARM_ADDRESSES.aria2, log, root));
    for (const seeder of seeders) await tracker.plant(content.infoHash, seeder);
    log.clear();
    const trackerUrls = [tracker.httpUrl, tracker.udpUrl];
    return {
      content,
      tracker,
      seeders,
      aria2Skipped,
      allowDestinations: [tracker.address, ...seeders.map((seeder) => seeder.address)].map((a) => `${a}/32`),
      magnet: (trackers = trackerUrls) => magnetOf(content, trackers),
      contacts: async () => {
        for (const seeder of seeders) await seeder.refreshContacts();
        return log.all();
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
