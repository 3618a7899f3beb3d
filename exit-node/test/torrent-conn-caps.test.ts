import { randomBytes } from 'node:crypto';
import { connect, createServer, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ContactLog, startTracker } from '../../test/swarm/swarm.js';
import { EXIT_ADDRESS, startService, torrentRequest, waitFor } from './torrent-helpers.js';

/**
 * The swarm connection cap (`--torrent-max-conns`, maxSwarmConns) holds per torrent for the connections the
 * exit makes (peers a tracker names) and for those made to it (its listener): never more at once, and a slot
 * freed is used again.
 */

/** A tracker that names whatever peers a test plants (X-Forwarded-For), on an address the exit may reach. */
const TRACKER_ADDRESS = '127.0.0.27';
/** Five would-be peers, each on its own loopback address (127.0.0.40–44), all allowed to the exit. */
const PEER_ADDRESSES = ['127.0.0.40', '127.0.0.41', '127.0.0.42', '127.0.0.43', '127.0.0.44'];
const PEER_RANGE = '127.0.0.40/29';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

const randomInfoHash = () => randomBytes(20).toString('hex');

/** A listener that accepts and holds connections without a word, counting how many are open at once. */
async function silentPeer(
  address: string,
  count: { open: number; most: number; seen: number; held: Socket[] },
) {
  const server = createServer((socket) => {
    count.open += 1;
    count.seen += 1;
    count.most = Math.max(count.most, count.open);
    count.held.push(socket);
    socket.on('error', () => {});
    socket.once('close', () => {
      count.open -= 1;
      count.held.splice(count.held.indexOf(socket), 1);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  cleanup.push(() => {
    for (const socket of count.held) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as { port: number }).port;
}

/** BitTorrent's handshake for `infoHash` (no extensions), as an incoming peer sends it first. */
function handshake(infoHash: string): Buffer {
  return Buffer.concat([
    Buffer.from([19]),
    Buffer.from('BitTorrent protocol'),
    Buffer.alloc(8),
    Buffer.from(infoHash, 'hex'),
    randomBytes(20),
  ]);
}

/** Connects to the exit's listener as a swarm peer of `infoHash`: 'kept' once the exit answers, 'closed' if it drops us. */
function incomingPeer(
  port: number,
  infoHash: string,
): Promise<{ socket: Socket; outcome: 'kept' | 'closed' }> {
  return new Promise((resolve) => {
    const socket = connect({ host: EXIT_ADDRESS, port });
    cleanup.push(() => void socket.destroy());
    let received = 0;
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(handshake(infoHash)));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received >= 68) resolve({ socket, outcome: 'kept' }); // the exit's own handshake came back
    });
    socket.once('close', () => resolve({ socket, outcome: 'closed' }));
  });
}

describe('swarm connection caps', () => {
  it('never has more outgoing connections for a torrent than the cap, and dials the next peer when one ends', async () => {
    const tracker = await startTracker(TRACKER_ADDRESS, new ContactLog(), { trustProxy: true });
    cleanup.push(() => tracker.close());
    const count = { open: 0, most: 0, seen: 0, held: [] as Socket[] };
    const infoHash = randomInfoHash();
    for (const address of PEER_ADDRESSES) {
      await tracker.plant(infoHash, { address, port: await silentPeer(address, count) });
    }
    const exit = await startService([`${TRACKER_ADDRESS}/32`, PEER_RANGE], {
      limits: { maxSwarmConns: 2, metadataTimeoutMs: 60_000 },
    });
    cleanup.push(exit.stop);

    await exit.service.dial(torrentRequest({ infoHash, trackers: [tracker.httpUrl], files: [] }), {
      sessionId: 1,
    });
    await waitFor(() => count.open === 2, 10_000, 'two connections to named peers');
    // A slot freed (the peer hung up) is used for the next named peer, and the cap still holds.
    count.held[0]!.destroy();
    await waitFor(() => count.seen === 3 && count.open === 2, 10_000, 'the next peer dialed');
    count.held[0]!.destroy();
    await waitFor(() => count.seen === 4 && count.open === 2, 10_000, 'the next peer dialed again');
    expect(count.most).toBe(2);
  });

  it('drops incoming connections for a torrent beyond the cap, and takes them again once a slot is free', async () => {
    // No trackers and no DHT: the torrents' only swarm connections are the ones this test makes.
    const exit = await startService([], { limits: { maxSwarmConns: 2, metadataTimeoutMs: 60_000 } });
    cleanup.push(exit.stop);
    const port = exit.service.address()!.port;
    const [first, second] = [randomInfoHash(), randomInfoHash()];
    for (const infoHash of [first, second]) {
      await exit.service.dial(torrentRequest({ infoHash, trackers: [], files: [] }), { sessionId: 1 });
    }

    const a = await incomingPeer(port, first);
    const b = await incomingPeer(port, first);
    expect([a.outcome, b.outcome]).toEqual(['kept', 'kept']);
    expect((await incomingPeer(port, first)).outcome).toBe('closed');
    expect((await incomingPeer(port, first)).outcome).toBe('closed');
    expect(exit.service.stats().swarmPeers).toBe(2);
    // The cap is per torrent: the other torrent still takes its own.
    expect((await incomingPeer(port, second)).outcome).toBe('kept');
    expect(exit.service.stats().swarmPeers).toBe(3);

    a.socket.destroy();
    await waitFor(() => exit.service.stats().swarmPeers === 2, 5_000, 'the freed slot');
    expect((await incomingPeer(port, first)).outcome).toBe('kept');
    expect(a.socket.destroyed && !b.socket.destroyed).toBe(true);
  });
});
