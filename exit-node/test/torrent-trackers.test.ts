import dgram from 'node:dgram';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ContactLog, startSwarm, startTracker, type LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import { EXIT_ADDRESS, startService, torrentRequest, waitFor } from './torrent-helpers.js';

/**
 * A torrent the exit already has (a first user opened it with a magnet whose tracker knows no seeder) gets the
 * trackers a second user's magnet brings: judged by the same policy, announced to, and the swarm they lead to
 * serves both users.
 */

/** A tracker on an address the exit may reach, that knows no peer of the torrent. */
const EMPTY_TRACKER_ADDRESS = '127.0.0.28';

let swarm: LocalSwarm;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  swarm = await startSwarm({ aria2: false });
}, 30_000);
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});
afterAll(async () => {
  await swarm?.stop();
});

async function user(): Promise<UserClient> {
  const client = await UserClient.create();
  cleanup.push(() => client.stop());
  return client;
}

describe("a later user's trackers", () => {
  it.each(['http', 'udp'] as const)(
    'are announced to for a torrent the exit already has (%s tracker)',
    async (kind) => {
      const emptyContacts = new ContactLog();
      const empty = await startTracker(EMPTY_TRACKER_ADDRESS, emptyContacts);
      cleanup.push(() => empty.close());
      // A UDP "tracker" on loopback the exit may not reach: the policy drops it before anything is sent.
      const forbidden = dgram.createSocket('udp4');
      const forbiddenHits: string[] = [];
      forbidden.on('message', (_message, remote) => forbiddenHits.push(remote.address));
      await new Promise<void>((resolve) => forbidden.bind(0, '127.0.0.1', resolve));
      cleanup.push(() => void forbidden.close());
      const exit = await startService([...swarm.allowDestinations, `${EMPTY_TRACKER_ADDRESS}/32`]);
      cleanup.push(exit.stop);
      const { infoHash } = swarm.content;

      const first = await exit.service.dial(
        torrentRequest({ infoHash, trackers: [empty.httpUrl], files: [] }),
        {
          sessionId: 1,
        },
      );
      await waitFor(
        () => emptyContacts.all().some((contact) => contact.from === EXIT_ADDRESS),
        10_000,
        "the first user's tracker to be asked",
      );
      expect(exit.service.stats()).toMatchObject({ swarmPeers: 0, waitingUsers: 1 });

      const trackers = [
        kind === 'http' ? swarm.tracker.httpUrl : swarm.tracker.udpUrl,
        empty.httpUrl, // known already: not added twice
        `udp://127.0.0.1:${forbidden.address().port}`,
      ];
      const second = await exit.service.dial(torrentRequest({ infoHash, trackers, files: [] }), {
        sessionId: 2,
      });
      const expected = Object.fromEntries(swarm.content.files.map((f) => [f.path, f.sha256]));
      const [firstUser, secondUser] = [await user(), await user()];
      const [a, b] = await Promise.all([
        firstUser.download(swarm.magnet(), first),
        secondUser.download(swarm.magnet(), second),
      ]);
      expect(await firstUser.hashes(a)).toEqual(expected);
      expect(await secondUser.hashes(b)).toEqual(expected);

      const stats = exit.service.stats();
      expect(stats.trackersAdded).toBe(1);
      expect(stats.torrents).toBe(1);
      expect(stats.policyDenials['udp-tracker']).toBeGreaterThan(0);
      expect(forbiddenHits).toEqual([]);
      const contacts = await swarm.contacts();
      expect(contacts.some((contact) => contact.part === `tracker-${kind}`)).toBe(true);
      expect(new Set(contacts.map((contact) => contact.from))).toEqual(new Set([EXIT_ADDRESS]));
    },
  );
});
