import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebTorrent, { type Torrent } from 'webtorrent';
import { ISOLATED_CLIENT_OPTIONS } from '@underpass/shared/torrent';
import { startSwarm, type LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import { EXIT_ADDRESS, startService, torrentRequest, waitFor } from './torrent-helpers.js';

/**
 * Upload and seeding policy: by default the exit uploads nothing to the swarm (a stranger that connects gets
 * the metadata, never a piece); with uploading on, each torrent uploads at most its ratio of what it downloaded
 * (plus a grace), then chokes the swarm.
 */

const BLOCK = 16 * 1024;
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

/** An exit that has the whole torrent, fetched for one user. */
async function exitWithTorrent(limits: Parameters<typeof startService>[1]) {
  const exit = await startService(swarm.allowDestinations, limits);
  cleanup.push(exit.stop);
  const user = await UserClient.create();
  cleanup.push(() => user.stop());
  const stream = await exit.service.dial(
    torrentRequest({ infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl], files: [] }),
    { sessionId: 1 },
  );
  await user.download(swarm.magnet(), stream);
  return exit;
}

/** A stranger in the swarm whose only peer is the exit's listener. */
async function strangerOf(port: number): Promise<Torrent> {
  const dir = await mkdtemp(join(tmpdir(), 'underpass-stranger-'));
  const client = new WebTorrent({ ...ISOLATED_CLIENT_OPTIONS, torrentPort: 0 });
  cleanup.push(async () => {
    await new Promise<void>((resolve) => client.destroy(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });
  const torrent = client.add(swarm.magnet([]), { announce: [], path: dir });
  if (!torrent.infoHash) await new Promise<void>((resolve) => torrent.once('infoHash', () => resolve()));
  torrent.addPeer(`${EXIT_ADDRESS}:${port}`);
  return torrent;
}

describe('upload to the swarm', () => {
  it('is off by default: a stranger gets the metadata and no piece', async () => {
    const exit = await exitWithTorrent({});
    const stranger = await strangerOf(exit.service.address()!.port);
    await waitFor(
      () => stranger.ready && stranger.wires[0]?.amInterested === true,
      10_000,
      'the stranger to have the metadata and want pieces',
    );
    expect(stranger.wires[0]!.peerChoking).toBe(true);
    expect(exit.service.stats()).toMatchObject({ bytesToSwarm: 0, uploadCapHits: 0 });
    expect(stranger.downloaded).toBe(0);
  });

  it('with uploading on, stops at the ratio of what the torrent downloaded (plus the grace)', async () => {
    const ratio = 0.25;
    const grace = 4 * BLOCK;
    const exit = await exitWithTorrent({
      limits: { uploadToSwarm: true, uploadRatio: ratio, uploadGraceBytes: grace },
    });
    const downloaded = exit.service.stats().bytesFromSwarm;
    const stranger = await strangerOf(exit.service.address()!.port);

    await waitFor(() => exit.service.stats().uploadCapHits === 1, 10_000, 'the upload cap');
    const allowance = ratio * downloaded + grace;
    const { bytesToSwarm } = exit.service.stats();
    expect(bytesToSwarm).toBeGreaterThanOrEqual(allowance);
    expect(bytesToSwarm).toBeLessThanOrEqual(allowance + BLOCK); // the block that crossed it, no more
    await waitFor(() => stranger.wires[0]?.peerChoking === true, 5_000, 'the stranger to be choked');
    expect(stranger.done).toBe(false);
    expect(stranger.downloaded).toBeLessThan(swarm.content.length / 2);
  });
});
