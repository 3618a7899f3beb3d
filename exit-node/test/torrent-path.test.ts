import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ProtectEngine, VolunteerEngine } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { readMagnet } from '@underpass/shared/torrent';
import type { SignalingServer } from '../../signaling-server/src/server.js';
import type { LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import type { ExitNode } from '../src/exit-node.js';
import { nodePeerFactory } from '../src/node-peer.js';
import { EXIT_ADDRESS, waitFor } from './torrent-helpers.js';
import { startTorrentNetwork, type TorrentNetwork } from './torrent-network.js';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';

/**
 * A download the way Underpass makes it, in Node with real WebRTC: the user's isolated WebTorrent, its one
 * peer a `torrent` stream through a volunteer relay to an exit that serves torrents (the broker picks it over
 * an exit that does not), the exit's torrent service in a real local swarm. The swarm sees only the exit.
 */

const WS = WebSocket as unknown as WebSocketConstructorLike;

let swarm: LocalSwarm;
let signaling: SignalingServer;
let torrentExit: ExitNode;
let network: TorrentNetwork | undefined;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  network = await startTorrentNetwork();
  ({ swarm, signaling, torrentExit } = network);
}, 30_000);

afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await network?.close();
});

describe('a download through two hops', () => {
  it('fetches the selected files of a magnet, verified; the swarm sees only the exit, the relay carries it', async () => {
    const relaySignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'relay', capacity: 2 },
    });
    const volunteer = new VolunteerEngine({
      signaling: relaySignaling,
      createPeer: nodePeerFactory(),
      capacity: 2,
    });
    await volunteer.start();
    cleanup.push(() => {
      volunteer.stop();
      relaySignaling.close();
    });
    const clientSignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'client' },
    });
    const downloads = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      signaling: clientSignaling,
      createPeer: nodePeerFactory(),
      mode: 'two-hop',
      needs: 'torrent',
    });
    await downloads.start();
    cleanup.push(() => {
      downloads.stop();
      clientSignaling.close();
    });
    expect(downloads.state).toMatchObject({
      status: 'protected',
      path: { hop: { role: 'relay' }, exit: { exitKey: torrentExit.exitKey } },
    });

    const magnet = readMagnet(swarm.magnet());
    if (!magnet.ok) throw new Error(magnet.reason);
    const { content } = swarm;
    const wanted = ['video/movie.bin', 'video/subtitles.bin'];
    const paths = content.files.map((f) => f.path).sort(); // create-torrent orders files by path
    const stream = await downloads.open({
      kind: 'torrent',
      infoHash: magnet.magnet.infoHash,
      trackers: magnet.magnet.trackers,
      files: wanted.map((path) => paths.indexOf(path)),
    });
    const user = await UserClient.create();
    cleanup.push(() => user.stop());
    // The user's own client gets the magnet with nothing it could contact.
    const torrent = await user.download(magnet.magnet.userMagnet, stream, wanted);

    const hashes = await user.hashes(torrent);
    expect(Object.keys(hashes).sort()).toEqual([...wanted].sort());
    for (const path of wanted) expect(hashes[path]).toBe(content.files.find((f) => f.path === path)!.sha256);
    await waitFor(async () => (await swarm.contacts()).length > 0, 5_000, 'the swarm contacted');
    expect(new Set((await swarm.contacts()).map((c) => c.from))).toEqual(new Set([EXIT_ADDRESS]));
    expect(volunteer.stats().bytesToClients).toBeGreaterThan(
      content.files.find((f) => f.path === wanted[0])!.length,
    );
  }, 60_000);
});
