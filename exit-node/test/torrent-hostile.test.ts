import dgram from 'node:dgram';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContactLog, startSwarm, startTracker, type LocalSwarm } from '../../test/swarm/swarm.js';
import { UserClient } from '../../test/swarm/user-client.js';
import { EXIT_ADDRESS, startService, waitFor, torrentRequest } from './torrent-helpers.js';

/**
 * A hostile tracker (on an address the exit may reach) answers with private, loopback, link-local, CGNAT and
 * the exit's own addresses as peers, beside one real seeder; the magnet's other trackers, a redirect and the
 * DHT's bootstrap nodes point at listeners on loopback and on the exit's own address. The exit downloads
 * from the real seeder, and no listener sees anything.
 */

const HOSTILE_ADDRESS = '127.0.0.26';
/** Loopback the exit is not allowed to reach. */
const DECOY_ADDRESS = '127.0.0.30';

let swarm: LocalSwarm;
const decoyHits = new ContactLog();
const closers: (() => Promise<void> | void)[] = [];

async function tcpDecoy(address: string, name: string): Promise<number> {
  const server: Server = createServer((socket) => {
    decoyHits.record(name, socket.remoteAddress);
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, address, resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return (server.address() as AddressInfo).port;
}

async function udpDecoy(address: string, name: string): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.on('message', (_message, remote) => decoyHits.record(name, remote.address));
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  closers.push(() => {
    socket.close();
  });
  return socket.address().port;
}

beforeAll(async () => {
  swarm = await startSwarm({ aria2: false });
}, 30_000);
afterAll(async () => {
  for (const close of closers.splice(0).reverse()) await close();
  await swarm?.stop();
});

describe('torrent service under a hostile swarm', () => {
  it('never contacts loopback, private, link-local or its own addresses, whatever trackers and the DHT say', async () => {
    const hostileContacts = new ContactLog();
    const hostile = await startTracker(HOSTILE_ADDRESS, hostileContacts, {
      trustProxy: true,
      name: 'hostile',
    });
    closers.push(() => hostile.close());
    const peerDecoy = await tcpDecoy(DECOY_ADDRESS, 'peer-on-loopback');
    const ownDecoy = await tcpDecoy(EXIT_ADDRESS, 'peer-on-exit-address');
    const localhostDecoy = await tcpDecoy('127.0.0.1', 'tracker-on-localhost');
    const trackerDecoy = await tcpDecoy(DECOY_ADDRESS, 'tracker-on-loopback');
    const ownTrackerDecoy = await tcpDecoy(EXIT_ADDRESS, 'tracker-on-exit-address');
    const udpTrackerDecoy = await udpDecoy(DECOY_ADDRESS, 'udp-tracker-on-loopback');
    const udpLocalhostDecoy = await udpDecoy('127.0.0.1', 'udp-tracker-on-localhost');
    const dhtDecoy = await udpDecoy(DECOY_ADDRESS, 'dht-node-on-loopback');
    const dhtOwnDecoy = await udpDecoy(EXIT_ADDRESS, 'dht-node-on-exit-address');
    // A tracker on an allowed address that redirects to a forbidden one.
    const redirector = createHttpServer((request, response) => {
      const query = request.url!.slice(request.url!.indexOf('?'));
      response.writeHead(302, { location: `http://${DECOY_ADDRESS}:${trackerDecoy}/announce${query}` }).end();
    });
    await new Promise<void>((resolve) => redirector.listen(0, HOSTILE_ADDRESS, resolve));
    closers.push(() => new Promise<void>((resolve) => redirector.close(() => resolve())));
    const redirectPort = (redirector.address() as AddressInfo).port;

    const { infoHash } = swarm.content;
    const seeder = swarm.seeders[0]!;
    for (const peer of [
      { address: '10.0.0.1', port: 6881 },
      { address: '192.168.1.1', port: 6881 },
      { address: '172.16.0.1', port: 6881 },
      { address: '100.64.0.1', port: 6881 },
      { address: '169.254.169.254', port: 8080 },
      { address: DECOY_ADDRESS, port: peerDecoy },
      { address: EXIT_ADDRESS, port: ownDecoy },
      { address: seeder.address, port: 22 }, // allowed address, well-known port: the torrent port rule
      { address: seeder.address, port: seeder.port },
    ]) {
      await hostile.plant(infoHash, peer);
    }
    hostileContacts.clear(); // the planting itself

    // The operator allowed the swarm, the hostile tracker, and (wrongly) the exit's own address: its own
    // addresses stay refused whatever the ranges say.
    const exit = await startService(
      [...swarm.allowDestinations, `${HOSTILE_ADDRESS}/32`, `${EXIT_ADDRESS}/32`],
      {
        dht: {
          bootstrap: [
            `${DECOY_ADDRESS}:${dhtDecoy}`,
            `${EXIT_ADDRESS}:${dhtOwnDecoy}`,
            'localhost:6881',
            '10.0.0.1:6881',
          ],
        },
      },
    );
    closers.push(exit.stop);
    const trackers = [
      hostile.httpUrl,
      hostile.udpUrl,
      `http://${DECOY_ADDRESS}:${trackerDecoy}/announce`,
      `http://localhost:${localhostDecoy}/announce`,
      `http://${EXIT_ADDRESS}:${ownTrackerDecoy}/announce`,
      `http://${HOSTILE_ADDRESS}:${redirectPort}/announce`,
      `udp://${DECOY_ADDRESS}:${udpTrackerDecoy}`,
      `udp://localhost:${udpLocalhostDecoy}`,
      `wss://${HOSTILE_ADDRESS}:${redirectPort}/announce`,
    ];
    const userClient = await UserClient.create();
    closers.push(() => userClient.stop());
    const stream = await exit.service.dial(torrentRequest({ infoHash, trackers, files: [] }), {
      sessionId: 1,
    });

    const torrent = await userClient.download(swarm.magnet([]), stream);

    expect(await userClient.hashes(torrent)).toEqual(
      Object.fromEntries(swarm.content.files.map((f) => [f.path, f.sha256])),
    );
    await waitFor(() => hostileContacts.all().some((c) => c.part === 'hostile-udp'), 5_000, 'a UDP announce');
    expect(new Set(hostileContacts.all().map((c) => c.part))).toEqual(
      new Set(['hostile-http', 'hostile-udp']),
    );
    expect(new Set(hostileContacts.all().map((c) => c.from))).toEqual(new Set([EXIT_ADDRESS]));
    // Every kind of destination was offered and refused; wait until the DHT and the redirect were tried too.
    await waitFor(
      () => {
        const denied = exit.service.stats().policyDenials;
        return denied.dht >= 2 && denied['http-tracker'] >= 4;
      },
      10_000,
      'DHT bootstrap and tracker refusals',
    );
    const denied = exit.service.stats().policyDenials;
    expect(denied.peer).toBeGreaterThanOrEqual(8);
    expect(denied['udp-tracker']).toBeGreaterThanOrEqual(2);
    expect(denied['tracker-url']).toBeGreaterThanOrEqual(1);
    expect(decoyHits.all()).toEqual([]);
    expect(new Set((await swarm.contacts()).map((c) => c.from))).toEqual(new Set([EXIT_ADDRESS]));
  });

  it('never dials what a user sends it as PEX peers', async () => {
    const peerDecoy = await tcpDecoy(DECOY_ADDRESS, 'pex-peer-on-loopback');
    const ownDecoy = await tcpDecoy(EXIT_ADDRESS, 'pex-peer-on-exit-address');
    const exit = await startService([...swarm.allowDestinations, `${EXIT_ADDRESS}/32`]);
    closers.push(exit.stop);
    const userClient = await UserClient.create();
    closers.push(() => userClient.stop());
    const paths = swarm.content.files.map((f) => f.path).sort();
    const request = { infoHash: swarm.content.infoHash, trackers: [swarm.tracker.httpUrl] };
    const stream = await exit.service.dial(
      torrentRequest({ ...request, files: [paths.indexOf('video/subtitles.bin')] }),
      { sessionId: 1 },
    );
    // One file only: the exit's torrent is not complete, so it still takes PEX peers (WebTorrent ignores
    // PEX once a torrent is done).
    const torrent = await userClient.download(swarm.magnet(), stream, ['video/subtitles.bin']);
    const before = exit.service.stats().policyDenials.peer;
    const added = compact([
      ['10.0.0.1', 6881],
      ['192.168.7.7', 6881],
      [DECOY_ADDRESS, peerDecoy],
      [EXIT_ADDRESS, ownDecoy],
      [swarm.seeders[0]!.address, 22],
    ]);
    torrent.wires[0]!.extended('ut_pex', { added });

    await waitFor(
      () => exit.service.stats().policyDenials.peer >= before + 5,
      5_000,
      'the PEX peers refused',
    );
    expect(decoyHits.all()).toEqual([]);
  });
});

/** BEP 11's compact peer list: 4 bytes of address and 2 of port per peer. */
function compact(peers: [string, number][]): Uint8Array {
  const bytes = new Uint8Array(peers.length * 6);
  peers.forEach(([address, port], index) => {
    bytes.set(address.split('.').map(Number), index * 6);
    bytes[index * 6 + 4] = port >> 8;
    bytes[index * 6 + 5] = port & 0xff;
  });
  return bytes;
}
