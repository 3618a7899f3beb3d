import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import WebTorrent, { type Torrent } from 'webtorrent';
import { muxOverLink } from '@underpass/shared/data-port';
import { memoryLinkPair } from '@underpass/shared/links';
import { ISOLATED_CLIENT_OPTIONS, PeerDuplex } from '@underpass/shared/torrent';

/**
 * Two real WebTorrent clients whose only connection is one mux stream (over an in-memory link): the wire
 * protocol runs through PeerDuplex on both ends, with no tracker, DHT, LSD or PEX, and the leecher verifies
 * every piece it gets.
 */

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

/** A client that finds no one by itself: its only peers are the ones a test adds. */
function isolatedClient(): WebTorrent {
  const client = new WebTorrent({
    ...ISOLATED_CLIENT_OPTIONS,
    torrentPort: 0,
  });
  cleanup.push(() => new Promise<void>((resolve) => client.destroy(() => resolve())));
  return client;
}

const once = (torrent: Torrent, event: 'infoHash' | 'ready' | 'done') =>
  new Promise<void>((resolve) => torrent.on(event, resolve));

describe('PeerDuplex', () => {
  it('carries the BitTorrent wire between two clients through one mux stream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'underpass-seed-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    const files = { 'a.bin': randomBytes(1_500_000), 'b/c.bin': randomBytes(700_000) };
    await mkdir(join(dir, 'content', 'b'), { recursive: true });
    for (const [name, data] of Object.entries(files)) await writeFile(join(dir, 'content', name), data);

    const seeder = isolatedClient();
    const seeded = await new Promise<Torrent>((resolve) =>
      seeder.seed(join(dir, 'content'), { announce: [], pieceLength: 64 * 1024 }, resolve),
    );
    const leecher = isolatedClient();
    const leeching = leecher.add(seeded.magnetURI, { announce: [], path: join(dir, 'download') });
    await once(leeching, 'infoHash');

    const [userLink, exitLink] = memoryLinkPair();
    const user = muxOverLink(userLink, 'initiator');
    const exit = muxOverLink(exitLink, 'acceptor');
    // What the seeder's side writes to its stream: each write is one DATA frame (one cell) on a real path.
    const seederWrites: number[] = [];
    exit.on('stream', (stream) => {
      stream.accept();
      const write = stream.write.bind(stream);
      stream.write = (chunk) => (seederWrites.push(chunk.length), write(chunk));
      seeded.addPeer(new PeerDuplex(stream, 'user'));
    });
    const stream = await user.open({ kind: 'tcp', host: 'torrent.invalid', port: 1 });
    leeching.addPeer(new PeerDuplex(stream, 'exit'));

    await once(leeching, 'done');
    // Gathered: a block never goes alone with its 13-byte header in a write of its own, let alone one per
    // message (a 16 KiB block per piece message: over 130 writes for these 2.2 MB, half of them 13 bytes).
    const written = seederWrites.reduce((sum, length) => sum + length, 0);
    expect(written).toBeGreaterThan(2_200_000);
    expect(seederWrites.filter((length) => length === 13)).toEqual([]);
    expect(written / seederWrites.length).toBeGreaterThan(16 * 1024 + 13);
    for (const file of leeching.files) {
      const expected = files[file.path.split('/').slice(1).join('/') as keyof typeof files];
      const got = new Uint8Array(await file.arrayBuffer());
      expect(createHash('sha256').update(got).digest('hex')).toBe(
        createHash('sha256').update(expected).digest('hex'),
      );
    }
    expect(leeching.wires).toHaveLength(1);
  }, 30_000);

  it("ends WebTorrent's peer when the stream is reset", async () => {
    const [userLink, exitLink] = memoryLinkPair();
    const user = muxOverLink(userLink, 'initiator');
    const exit = muxOverLink(exitLink, 'acceptor');
    exit.on('stream', (stream) => {
      stream.accept();
      stream.destroy();
    });
    const stream = await user.open({ kind: 'tcp', host: 'torrent.invalid', port: 1 });
    const peer = new PeerDuplex(stream, 'exit');
    if (!peer.destroyed) await new Promise<void>((resolve) => peer.on('close', () => resolve()));
    expect(peer.destroyed || peer.destroying).toBe(true);
    expect(peer.failure?.code).toBe('reset');
  });
});
