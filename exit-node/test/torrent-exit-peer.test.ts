import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebTorrent, { type Torrent, type TorrentFile } from 'webtorrent';
import { ExitPeer, ISOLATED_CLIENT_OPTIONS, type ExitPeerState } from '@underpass/shared/torrent';
import { sha256 } from '../../test/swarm/content.js';
import { startSwarm, type LocalSwarm } from '../../test/swarm/swarm.js';
import { startService, waitFor } from './torrent-helpers.js';

/**
 * The user's ExitPeer (what the extension's Downloads runs) against the real torrent service and a real local
 * swarm: it hears how many swarm peers the exit has, and `select` on the open wire changes what the exit
 * fetches from the swarm.
 */

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

async function swarmOf(options: Parameters<typeof startSwarm>[0]): Promise<LocalSwarm> {
  const swarm = await startSwarm(options);
  cleanup.push(() => swarm.stop());
  return swarm;
}

/** The user's isolated WebTorrent with the torrent added (nothing selected) and its infohash known. */
async function userTorrent(magnet: string): Promise<Torrent> {
  const dir = await mkdtemp(join(tmpdir(), 'underpass-user-'));
  const client = new WebTorrent({ ...ISOLATED_CLIENT_OPTIONS, torrentPort: { port: 0, host: '127.0.0.1' } });
  cleanup.push(async () => {
    await new Promise<void>((resolve) => client.destroy(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  const torrent = client.add(magnet, { announce: [], path: dir, deselect: true });
  if (!torrent.infoHash) await new Promise<void>((resolve) => torrent.once('infoHash', () => resolve()));
  return torrent;
}

/** Selects `paths` in the user's own torrent (deselect first: a boundary piece is shared) and waits for them. */
async function fetchFiles(torrent: Torrent, paths: string[]): Promise<TorrentFile[]> {
  if (!torrent.ready) await new Promise<void>((resolve) => torrent.once('ready', () => resolve()));
  const files = torrent.files.filter((file) => paths.includes(inside(file)));
  torrent.deselect(0, torrent.pieces.length - 1);
  for (const file of files) file.select();
  await Promise.all(
    files.map((file) => (file.done ? undefined : new Promise<void>((resolve) => file.on('done', resolve)))),
  );
  return files;
}

const inside = (file: TorrentFile) => file.path.split('/').slice(1).join('/');

function exitPeerFor(
  service: Awaited<ReturnType<typeof startService>>['service'],
  torrent: Torrent,
  swarm: LocalSwarm,
  files: number[],
) {
  const states: ExitPeerState[] = [];
  const peer = new ExitPeer({
    open: (request) => service.dial(request, { sessionId: 1 }),
    torrent,
    request: { kind: 'torrent', infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl], files },
  });
  peer.on('state', (state) => states.push(state));
  cleanup.push(() => peer.stop());
  peer.start();
  return { peer, states };
}

describe('ExitPeer with the torrent service', () => {
  it('select on the open wire changes what the exit fetches from the swarm', async () => {
    const swarm = await swarmOf({ aria2: false });
    const exit = await startService(swarm.allowDestinations);
    cleanup.push(exit.stop);
    const paths = swarm.content.files.map((f) => f.path).sort(); // create-torrent orders files by path
    const torrent = await userTorrent(swarm.magnet());
    const { peer } = exitPeerFor(exit.service, torrent, swarm, [paths.indexOf('video/subtitles.bin')]);

    await fetchFiles(torrent, ['video/subtitles.bin']);
    const first = exit.service.stats().bytesFromSwarm;
    expect(first).toBeLessThan(300_000); // the subtitles and their boundary pieces only

    peer.select([paths.indexOf('video/subtitles.bin'), paths.indexOf('readme.bin')]);
    const files = await fetchFiles(torrent, ['video/subtitles.bin', 'readme.bin']);

    for (const file of files) {
      const expected = swarm.content.files.find((f) => f.path === inside(file))!.sha256;
      expect(sha256(new Uint8Array(await file.arrayBuffer()))).toBe(expected);
    }
    const stats = exit.service.stats();
    expect(stats.bytesFromSwarm).toBeGreaterThanOrEqual(first + 500_000 - 2 * 64 * 1024);
    expect(stats.bytesFromSwarm).toBeLessThan(swarm.content.length - 500_000); // never the movie
    expect(stats.users).toBe(1); // the same wire: select did not open another
    expect(peer.state).toEqual({ status: 'connected' });
  });

  it("hears the exit's swarm peers, and hears again when they change", async () => {
    const swarm = await swarmOf({ aria2: false });
    const exit = await startService(swarm.allowDestinations);
    cleanup.push(exit.stop);
    const torrent = await userTorrent(swarm.magnet());
    const { peer, states } = exitPeerFor(exit.service, torrent, swarm, []);
    expect(peer.swarmPeers).toBeUndefined();

    await fetchFiles(
      torrent,
      swarm.content.files.map((f) => f.path),
    );
    await waitFor(() => peer.swarmPeers === 1, 10_000, 'the exit to say it has one swarm peer');
    const told = states.length;
    expect(states.at(-1)).toEqual({ status: 'connected' }); // told by emitting the same state again

    await swarm.seeders[0]!.stop(); // the one seeder leaves the swarm
    await waitFor(() => peer.swarmPeers === 0, 10_000, 'the exit to say it has no swarm peer');
    expect(states.length).toBeGreaterThan(told);
    expect(exit.service.stats().swarmPeers).toBe(0);
  });
});
