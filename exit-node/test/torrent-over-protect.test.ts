import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ProtectEngine, VolunteerEngine } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { readMagnet } from '@underpass/shared/torrent';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';
import type { SignalingServer } from '../../signaling-server/src/server.js';
import type { LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import type { ExitNode } from '../src/exit-node.js';
import { nodePeerFactory } from '../src/node-peer.js';
import { EXIT_ADDRESS, waitFor } from './torrent-helpers.js';
import { startTorrentNetwork, type TorrentNetwork } from './torrent-network.js';

/**
 * Torrents over a path built for pages (ProtectEngine.want, PathService), as Firefox's Downloads use Protect's
 * path while Protect is on: a session of their own over the path's link, to the path's exit, checked for
 * torrents. With real WebRTC, a volunteer relay, an exit that serves torrents and one that does not (registered
 * first, so the broker names it when nothing is asked for).
 */

const WS = WebSocket as unknown as WebSocketConstructorLike;

let swarm: LocalSwarm;
let signaling: SignalingServer;
let plainExit: ExitNode;
let torrentExit: ExitNode;
let volunteer: VolunteerEngine;
let relaySignaling: SignalingClient;
let network: TorrentNetwork | undefined;
const cleanup: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  network = await startTorrentNetwork();
  ({ swarm, signaling, plainExit, torrentExit } = network);
  relaySignaling = new SignalingClient({
    url: signaling.url,
    WebSocket: WS,
    hello: { role: 'relay', capacity: 4 },
  });
  volunteer = new VolunteerEngine({ signaling: relaySignaling, createPeer: nodePeerFactory(), capacity: 4 });
  await volunteer.start();
}, 30_000);

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

afterAll(async () => {
  volunteer?.stop();
  relaySignaling?.close();
  await network?.close();
});

/** A Protect engine for pages (nothing required of its exit), and the path requests it made. */
function pagesPath(options: { exitKey?: string; mode?: 'two-hop' | 'direct' } = {}) {
  const client = new SignalingClient({ url: signaling.url, WebSocket: WS, hello: { role: 'client' } });
  const requests: { needs?: string; exitKey?: string }[] = [];
  const ask = client.requestPath.bind(client);
  client.requestPath = (request) => {
    requests.push({ ...request });
    return ask(request);
  };
  const engine = new ProtectEngine({
    directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
    signaling: client,
    createPeer: nodePeerFactory(),
    mode: options.mode ?? 'two-hop',
    ...(options.exitKey ? { exitKey: options.exitKey } : {}),
  });
  cleanup.push(() => {
    engine.stop();
    client.close();
  });
  return { engine, requests };
}

const exitKeyOf = (engine: ProtectEngine) =>
  engine.state.status === 'protected' ? engine.state.path.exit.exitKey : undefined;

async function downloadOver(engine: ProtectEngine): Promise<void> {
  const magnet = readMagnet(swarm.magnet());
  if (!magnet.ok) throw new Error(magnet.reason);
  const stream = await engine.openService({
    kind: 'torrent',
    infoHash: magnet.magnet.infoHash,
    trackers: magnet.magnet.trackers,
    files: [],
  });
  const user = await UserClient.create();
  cleanup.push(() => user.stop());
  const torrent = await user.download(magnet.magnet.userMagnet, stream);
  const hashes = await user.hashes(torrent);
  for (const file of swarm.content.files) expect(hashes[file.path], file.path).toBe(file.sha256);
  expect(new Set((await swarm.contacts()).map((c) => c.from))).toEqual(new Set([EXIT_ADDRESS]));
}

describe('torrents over a path built for pages', () => {
  it('wanted from the start: the first path goes to an exit that serves them, and they need no new link', async () => {
    const { engine, requests } = pagesPath();
    engine.want('torrent');
    await engine.start();
    expect(exitKeyOf(engine)).toBe(torrentExit.exitKey);
    await waitFor(() => engine.serviceState().status === 'ready', 10_000, 'the torrent session');
    const linksBefore = volunteer.stats().clientsNow;
    await downloadOver(engine);
    // Every path asked for (a first WebRTC setup may fail and be tried again) asked for an exit with torrents.
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) expect(request).toEqual({ mode: 'two-hop', needs: 'torrent' });
    expect(volunteer.stats().clientsNow).toBe(linksBefore);
    // The path's own figures are its pages': the torrent's bytes went in a session of their own.
    expect(engine.stats().bytesDown).toBeLessThan(100_000);
    engine.want(undefined);
    expect(engine.serviceState()).toEqual({ status: 'none' });
    await expect(
      engine.openService({ kind: 'torrent', infoHash: 'a'.repeat(40), trackers: [], files: [] }),
    ).rejects.toMatchObject({ code: 'unreachable' });
  }, 60_000);

  it('wanted later, of a path whose exit serves none: the path is renewed once, to an exit that does', async () => {
    const { engine, requests } = pagesPath();
    await engine.start();
    expect(exitKeyOf(engine)).toBe(plainExit.exitKey);
    const beforeWant = requests.length;
    engine.want('torrent');
    await waitFor(
      () => exitKeyOf(engine) === torrentExit.exitKey && engine.serviceState().status === 'ready',
      15_000,
      'a renewed path with a torrent session',
    );
    for (const request of requests.slice(0, beforeWant)) expect(request).toEqual({ mode: 'two-hop' });
    expect(requests.length).toBeGreaterThan(beforeWant);
    for (const request of requests.slice(beforeWant))
      expect(request).toEqual({ mode: 'two-hop', needs: 'torrent' });
    await downloadOver(engine);
  }, 60_000);

  it('direct mode: the torrent session is a second circuit on the link to the exit itself', async () => {
    const { engine, requests } = pagesPath({ mode: 'direct' });
    engine.want('torrent');
    await engine.start();
    expect(engine.state).toMatchObject({ status: 'protected', path: { hop: { role: 'exit' } } });
    await waitFor(() => engine.serviceState().status === 'ready', 10_000, 'the torrent session');
    await downloadOver(engine);
    expect(requests.length).toBeGreaterThan(0);
    for (const request of requests) expect(request).toEqual({ mode: 'direct', needs: 'torrent' });
  }, 60_000);

  it('a new path ("New path", a rebuild) takes the torrent session with it; the old one ends with its link', async () => {
    const { engine } = pagesPath();
    engine.want('torrent');
    await engine.start();
    await waitFor(() => engine.serviceState().status === 'ready', 10_000, 'the torrent session');
    const before = engine.state.status === 'protected' ? engine.state.path.linkId : undefined;
    const seen: string[] = [];
    engine.on('service', (state) => seen.push(state.status));
    expect(engine.renew()).toBe(true);
    // Between paths, nothing: a torrent stream waits for the next one (ExitPeer opens it again).
    expect(engine.serviceState()).toEqual({ status: 'none' });
    await expect(
      engine.openService({ kind: 'torrent', infoHash: 'a'.repeat(40), trackers: [], files: [] }),
    ).rejects.toMatchObject({ code: 'unreachable' });
    await waitFor(
      () =>
        engine.state.status === 'protected' &&
        engine.state.path.linkId !== before &&
        engine.serviceState().status === 'ready',
      15_000,
      'the next path with its torrent session',
    );
    expect(seen).toEqual(['none', 'opening', 'ready']);
    await downloadOver(engine);
  }, 60_000);

  it('with no exit to offer them (a pinned exit that serves none), the path stays up and says its exit lacks them', async () => {
    const { engine, requests } = pagesPath({ exitKey: plainExit.exitKey });
    engine.want('torrent');
    await engine.start();
    expect(exitKeyOf(engine)).toBe(plainExit.exitKey);
    await waitFor(() => engine.serviceState().status === 'lacking', 10_000, 'the exit found lacking');
    // Each try asked for an exit with torrents, was refused, then asked for a path for pages all the same (a
    // first WebRTC setup may fail and be tried again); the path found lacking is not renewed for it.
    expect(engine.state.status).toBe('protected');
    expect(requests.length % 2).toBe(0);
    for (let i = 0; i < requests.length; i += 2) {
      expect(requests[i]).toEqual({ mode: 'two-hop', exitKey: plainExit.exitKey, needs: 'torrent' });
      expect(requests[i + 1]).toEqual({ mode: 'two-hop', exitKey: plainExit.exitKey });
    }
    await expect(
      engine.openService({ kind: 'torrent', infoHash: 'a'.repeat(40), trackers: [], files: [] }),
    ).rejects.toMatchObject({ code: 'torrents-off' });
  }, 30_000);
});
