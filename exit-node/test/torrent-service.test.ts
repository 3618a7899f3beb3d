import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSwarm, type LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import { EXIT_ADDRESS, startService, waitFor, torrentRequest } from './torrent-helpers.js';

/**
 * The exit's torrent service against a real local swarm (a tracker, a WebTorrent seeder and an aria2 seeder on
 * their own loopback addresses): a user's isolated WebTorrent, whose only peer is the service, downloads
 * through it, and the swarm sees only the exit's address.
 */

let swarm: LocalSwarm;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  swarm = await startSwarm();
}, 30_000);
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await swarm?.stop();
});

async function user(): Promise<UserClient> {
  const client = await UserClient.create();
  cleanup.push(() => client.stop());
  return client;
}

describe('torrent service', () => {
  it('downloads the selected files of a magnet through the exit; the swarm sees only the exit', async () => {
    const exit = await startService(swarm.allowDestinations);
    cleanup.push(exit.stop);
    expect(exit.service.address()?.address).toBe(EXIT_ADDRESS); // the listener too
    const { content } = swarm;
    const userClient = await user();
    const wanted = ['video/movie.bin', 'video/subtitles.bin'];
    const magnet = swarm.magnet();
    // What the user's side sends in OPEN: the infohash, the magnet's trackers, the selected file indices.
    const parsed = new URL(magnet);
    const trackers = parsed.searchParams.getAll('tr');
    const torrentFiles = content.files.map((f) => f.path).sort(); // create-torrent orders files by path
    const files = wanted.map((path) => torrentFiles.indexOf(path));
    const stream = await exit.service.dial(torrentRequest({ infoHash: content.infoHash, trackers, files }), {
      sessionId: 1,
    });

    const torrent = await userClient.download(magnet, stream, wanted);

    const hashes = await userClient.hashes(torrent);
    for (const path of wanted) expect(hashes[path]).toBe(content.files.find((f) => f.path === path)!.sha256);
    expect(Object.keys(hashes).sort()).toEqual([...wanted].sort());
    // aria2 writes its log a little later than it accepts.
    const parts = [
      'tracker-http',
      'tracker-udp',
      'webtorrent-seeder',
      ...(swarm.aria2Skipped ? [] : ['aria2-seeder']),
    ];
    await waitFor(
      async () => {
        const seen = new Set((await swarm.contacts()).map((c) => c.part));
        return parts.every((part) => seen.has(part));
      },
      5_000,
      'every part of the swarm contacted',
    );
    const contacts = await swarm.contacts();
    expect(new Set(contacts.map((c) => c.from))).toEqual(new Set([EXIT_ADDRESS]));
    // The tracker answered with the exit's own address among the peers: refused.
    const stats = exit.service.stats();
    expect(stats.policyDenials.peer).toBeGreaterThan(0);
    expect(stats.users).toBe(1);
    expect(stats.bytesToUsers).toBeGreaterThan(0);
    expect(stats.swarmPeers).toBeGreaterThan(0);
    // Only the selected files (and boundary pieces) came from the swarm.
    const selected = wanted.reduce(
      (sum, path) => sum + content.files.find((f) => f.path === path)!.length,
      0,
    );
    expect(stats.bytesFromSwarm).toBeGreaterThanOrEqual(selected);
    expect(stats.bytesFromSwarm).toBeLessThan(content.length - 200_000);
  });

  it('downloads every file of a .torrent by infohash and trackers', async () => {
    const exit = await startService(swarm.allowDestinations);
    cleanup.push(exit.stop);
    const userClient = await user();
    const stream = await exit.service.dial(
      torrentRequest({
        infoHash: swarm.content.infoHash,
        trackers: [swarm.tracker.httpUrl],
        files: [],
      }),
      { sessionId: 1 },
    );

    const torrent = await userClient.download(swarm.content.torrentFile, stream);

    const hashes = await userClient.hashes(torrent);
    expect(hashes).toEqual(Object.fromEntries(swarm.content.files.map((f) => [f.path, f.sha256])));
    expect(new Set((await swarm.contacts()).map((c) => c.from))).toEqual(new Set([EXIT_ADDRESS]));
  });

  it('serves two users of one torrent from one download', async () => {
    const exit = await startService(swarm.allowDestinations);
    cleanup.push(exit.stop);
    const [first, second] = [await user(), await user()];
    const request = { infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl], files: [] };
    const [a, b] = [
      await exit.service.dial(torrentRequest(request), { sessionId: 1 }),
      await exit.service.dial(torrentRequest(request), { sessionId: 1 }),
    ];
    expect(exit.service.stats().waitingUsers + exit.service.stats().users).toBe(2);

    const [torrentA, torrentB] = await Promise.all([
      first.download(swarm.magnet(), a),
      second.download(swarm.magnet(), b),
    ]);

    const expected = Object.fromEntries(swarm.content.files.map((f) => [f.path, f.sha256]));
    expect(await first.hashes(torrentA)).toEqual(expected);
    expect(await second.hashes(torrentB)).toEqual(expected);
    const stats = exit.service.stats();
    expect(stats.torrents).toBe(1);
    expect(stats.users).toBe(2);
    // Fetched once: at most a few duplicate blocks (end game) beyond one copy.
    expect(stats.bytesFromSwarm).toBeGreaterThanOrEqual(swarm.content.length);
    expect(stats.bytesFromSwarm).toBeLessThan(swarm.content.length * 1.2);
    expect(stats.bytesToUsers).toBeGreaterThanOrEqual(2 * swarm.content.length);
  });

  it('changes what it fetches when a user changes its selection on the open stream', async () => {
    const exit = await startService(swarm.allowDestinations);
    cleanup.push(exit.stop);
    const userClient = await user();
    const paths = swarm.content.files.map((f) => f.path).sort();
    const request = { infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl] };
    const stream = await exit.service.dial(
      torrentRequest({ ...request, files: [paths.indexOf('video/subtitles.bin')] }),
      { sessionId: 1 },
    );
    const torrent = await userClient.download(swarm.magnet(), stream, ['video/subtitles.bin']);
    const first = exit.service.stats().bytesFromSwarm;
    expect(first).toBeLessThan(300_000); // the subtitles and their boundary pieces only

    await userClient.reselect(torrent, ['video/subtitles.bin', 'readme.bin']);

    const hashes = await userClient.hashes(torrent);
    for (const path of ['video/subtitles.bin', 'readme.bin']) {
      expect(hashes[path]).toBe(swarm.content.files.find((f) => f.path === path)!.sha256);
    }
    expect(exit.service.stats().bytesFromSwarm).toBeGreaterThanOrEqual(first + 500_000 - 2 * 64 * 1024);
    expect(exit.service.stats().bytesFromSwarm).toBeLessThan(swarm.content.length - 500_000);
  });
});
