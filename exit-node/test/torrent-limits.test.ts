import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContactLog, startSwarm, startTracker, type LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import { sendSelection } from '@underpass/shared/torrent';
import { TorrentRefusal } from '../src/torrent/index.js';
import { closeCode, startService, waitFor, torrentRequest } from './torrent-helpers.js';

/** The torrent service's limits against a real local swarm: each breach is a typed refusal. */

let swarm: LocalSwarm;
let other: LocalSwarm;
const cleanup: (() => Promise<void>)[] = [];

beforeAll(async () => {
  swarm = await startSwarm({ aria2: false });
  other = await startSwarm({ aria2: false, files: [{ path: 'other.bin', length: 1_000_000 }] });
}, 30_000);
afterAll(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  await swarm?.stop();
  await other?.stop();
});

async function service(limits: Parameters<typeof startService>[1]) {
  const exit = await startService(swarm.allowDestinations, limits);
  cleanup.push(exit.stop);
  return exit;
}

async function user(): Promise<UserClient> {
  const client = await UserClient.create();
  cleanup.push(() => client.stop());
  return client;
}

const randomInfoHash = () => randomBytes(20).toString('hex');
const refusalCode = (promise: Promise<unknown>) =>
  promise.then(
    () => 'accepted',
    (error: unknown) => (error instanceof TorrentRefusal ? error.code : `untyped: ${String(error)}`),
  );

describe('torrent service limits', () => {
  it('refuses a selection over the size limit (too-large) and serves a smaller one of the same torrent', async () => {
    const { service: exit } = await service({ limits: { maxTorrentBytes: 600_000 } });
    const request = { infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl] };
    const everything = await exit.dial(torrentRequest({ ...request, files: [] }), { sessionId: 1 });
    expect(await closeCode(everything)).toBe('too-large');

    const paths = swarm.content.files.map((f) => f.path).sort();
    const small = await exit.dial(
      torrentRequest({ ...request, files: [paths.indexOf('video/subtitles.bin')] }),
      { sessionId: 1 },
    );
    const userClient = await user();
    const torrent = await userClient.download(swarm.magnet(), small, ['video/subtitles.bin']);
    expect((await userClient.hashes(torrent))['video/subtitles.bin']).toBe(
      swarm.content.files.find((f) => f.path === 'video/subtitles.bin')!.sha256,
    );
    expect(exit.stats().refusals['too-large']).toBe(1);

    // A new selection over the limit on the open stream: refused the same way.
    const closed = closeCode(small);
    sendSelection(torrent.wires[0]!, []);
    expect(await closed).toBe('too-large');
    expect(exit.stats().refusals['too-large']).toBe(2);
  });

  it('refuses torrents beyond the limits in all, per session and users per torrent (limit)', async () => {
    const { service: exit } = await service({
      limits: { maxTorrents: 2, maxTorrentsPerSession: 1, maxUsersPerTorrent: 1 },
    });
    const known = { infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl], files: [] };
    const unknown = () => ({ infoHash: randomInfoHash(), trackers: [], files: [] });
    await exit.dial(torrentRequest(known), { sessionId: 1 });
    expect(await refusalCode(exit.dial(torrentRequest(unknown()), { sessionId: 1 }))).toBe('limit'); // per session
    expect(await refusalCode(exit.dial(torrentRequest(known), { sessionId: 2 }))).toBe('limit'); // users per torrent
    expect(await refusalCode(exit.dial(torrentRequest(unknown()), { sessionId: 2 }))).toBe('accepted');
    expect(await refusalCode(exit.dial(torrentRequest(unknown()), { sessionId: 3 }))).toBe('limit'); // torrents in all
    expect(
      await refusalCode(exit.dial(torrentRequest({ ...unknown(), infoHash: 'not-hex' }), { sessionId: 1 })),
    ).toBe('policy-denied');
    expect(exit.stats().refusals.limit).toBe(3);
    expect(exit.stats().torrents).toBe(2);
  });

  it('refuses with metadata-timeout when no peer has the metadata', async () => {
    const empty = await startTracker('127.0.0.21', new ContactLog());
    cleanup.push(() => empty.close());
    const { service: exit } = await service({ limits: { metadataTimeoutMs: 800 } });
    const stream = await exit.dial(
      torrentRequest({ infoHash: randomInfoHash(), trackers: [empty.httpUrl], files: [] }),
      { sessionId: 1 },
    );
    expect(await closeCode(stream)).toBe('metadata-timeout');
    expect(exit.stats()).toMatchObject({ torrents: 0, waitingUsers: 0 });
    expect(exit.stats().refusals['metadata-timeout']).toBe(1);
  });

  it('drops an idle torrent from the swarm, keeps its data, and evicts it when room is needed', async () => {
    const exit = await service({
      limits: { diskBudgetBytes: 2_000_000, idleTimeoutMs: 200 },
    });
    const first = { infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl], files: [] };
    const second = { infoHash: other.content.infoHash, trackers: [other.tracker.httpUrl], files: [] };
    const stream = await exit.service.dial(torrentRequest(first), { sessionId: 1 });
    await (await user()).download(swarm.magnet(), stream);
    stream.destroy();
    await waitFor(() => exit.service.stats().torrents === 0, 5_000, 'the idle torrent to leave the swarm');
    expect(existsSync(join(exit.dataDir, first.infoHash))).toBe(true);
    expect(exit.service.stats().diskBytes).toBe(swarm.content.length);

    const otherStream = await exit.service.dial(torrentRequest(second), { sessionId: 1 });
    const torrent = await (await user()).download(other.magnet(), otherStream);
    expect(torrent.done).toBe(true);
    expect(exit.service.stats().evictions).toBe(1);
    await waitFor(
      () => !existsSync(join(exit.dataDir, first.infoHash)),
      5_000,
      'the evicted data to be removed',
    );
    expect(exit.service.stats().diskBytes).toBe(other.content.length);

    // The second torrent is in use: it cannot be evicted, so the first no longer fits.
    const again = await exit.service.dial(torrentRequest(first), { sessionId: 1 });
    expect(await closeCode(again)).toBe('limit');
  });
});
