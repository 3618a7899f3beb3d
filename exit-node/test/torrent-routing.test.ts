import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ProtectEngine } from '@underpass/shared/engines';
import { StreamError, type UnderpassError } from '@underpass/shared/errors';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { NodeSocketStream, type ByteStream } from '@underpass/shared/streams';
import type { TorrentRequest } from '@underpass/shared/tunnel';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { nodePeerFactory } from '../src/node-peer.js';
import type { StreamContext } from '@underpass/shared/exit';
import type { TorrentDialer } from '../src/stream-router.js';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';
import { developmentCertificates } from '../src/certificates.js';

const WS = WebSocket as unknown as WebSocketConstructorLike;

const REQUEST: TorrentRequest = {
  kind: 'torrent',
  infoHash: '0123456789abcdef0123456789abcdef01234567',
  trackers: ['udp://tracker.example:6969/announce'],
  files: [2, 0],
};

/** A TCP echo on loopback: what the stand-in torrent service connects each wire to. */
async function startEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer((socket) => {
    // The exit resets wires it ends with an error: an expected ECONNRESET here, not a failure.
    socket.on('error', () => socket.destroy());
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/**
 * Stands in for the torrent service, which is built elsewhere: each wire is a real TCP connection to an echo,
 * and the test can end one with a typed error, as the service does on a metadata timeout.
 */
function echoTorrentService(echoPort: number) {
  const dials: { request: TorrentRequest; context: StreamContext; stream: ByteStream }[] = [];
  let closed = 0;
  const service: TorrentDialer = {
    dial: (request, context) =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: echoPort, allowHalfOpen: true });
        socket.once('error', reject);
        socket.once('connect', () => {
          socket.pause();
          const stream = new NodeSocketStream(socket);
          dials.push({ request, context, stream });
          resolve(stream);
        });
      }),
    close: async () => {
      closed += 1;
    },
  };
  return { service, dials, closes: () => closed };
}

function closeError(stream: ByteStream): Promise<UnderpassError | undefined> {
  return new Promise((resolve) => stream.once('close', resolve));
}

function firstData(stream: ByteStream): Promise<Buffer> {
  return new Promise((resolve) => {
    stream.once('data', (chunk) => resolve(Buffer.from(chunk)));
    stream.resume();
  });
}

describe('torrent streams at the exit, over a real path (WebRTC in Node)', () => {
  let signaling: SignalingServer;
  let plainExit: ExitNode;
  let torrentExit: ExitNode;
  let echo: { server: Server; port: number };
  let torrents: ReturnType<typeof echoTorrentService>;
  const dataDirs: string[] = [];

  async function startExit(service?: TorrentDialer): Promise<ExitNode> {
    const dataDir = await mkdtemp(join(tmpdir(), 'underpass-torrent-routing-'));
    dataDirs.push(dataDir);
    return startExitNode({
      certificate: developmentCertificates,
      signalingUrl: signaling.url,
      dataDir,
      allowDestinations: ['127.0.0.1/32'],
      ...(service ? { torrents: service } : {}),
    });
  }

  /** Protect on, in direct mode, pinned to `exit`. */
  async function protectThrough(exit: ExitNode) {
    const clientSignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'client' },
    });
    const protect = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      signaling: clientSignaling,
      createPeer: nodePeerFactory(),
      mode: 'direct',
      exitKey: exit.exitKey,
    });
    await protect.start();
    return {
      protect,
      stop: () => {
        protect.stop();
        clientSignaling.close();
      },
    };
  }

  beforeAll(async () => {
    signaling = await startSignalingServer({ port: 0 });
    echo = await startEcho();
    torrents = echoTorrentService(echo.port);
    plainExit = await startExit();
    torrentExit = await startExit(torrents.service);
  });

  afterAll(async () => {
    await plainExit?.close();
    await torrentExit?.close();
    await signaling?.close();
    echo?.server.close();
    for (const dir of dataDirs) await rm(dir, { recursive: true, force: true });
  });

  it('the directory says which exit serves torrents', async () => {
    const response = await fetch(new URL('/v1/exits', signaling.url.replace(/^ws/, 'http')));
    const { exits } = (await response.json()) as { exits: { exitKey: string; torrents?: boolean }[] };
    expect(exits.find((e) => e.exitKey === torrentExit.exitKey)?.torrents).toBe(true);
    const plain = exits.find((e) => e.exitKey === plainExit.exitKey);
    expect(plain).toBeDefined();
    expect(plain).not.toHaveProperty('torrents');
  });

  it('an exit without a torrent service refuses torrent streams with torrents-off, and still serves tcp', async () => {
    const { protect, stop } = await protectThrough(plainExit);
    try {
      await expect(protect.open(REQUEST)).rejects.toMatchObject({ code: 'torrents-off' });
      // The refusal is the stream's alone: the session goes on.
      const tcp = await protect.open({ kind: 'tcp', host: '127.0.0.1', port: echo.port });
      await expect(protect.open({ kind: 'tcp', host: '127.0.0.1', port: 25 })).rejects.toMatchObject({
        code: 'policy-denied',
      });
      tcp.destroy();
    } finally {
      stop();
    }
  });

  it('an exit with one routes the wire to it: the request arrives whole, bytes flow, a typed reset reaches the user', async () => {
    const { protect, stop } = await protectThrough(torrentExit);
    try {
      const wire = await protect.open(REQUEST);
      expect(torrents.dials).toHaveLength(1);
      expect(torrents.dials[0]!.request).toEqual(REQUEST);
      const echoed = firstData(wire);
      wire.write(Buffer.from('\x13BitTorrent protocol'));
      expect((await echoed).toString()).toBe('\x13BitTorrent protocol');

      const held = await protect.open({ ...REQUEST, files: [] });
      expect(torrents.dials).toHaveLength(2);
      // Both wires are one session's: the service counts its per-session limits by this id.
      expect(torrents.dials[1]!.context.sessionId).toBe(torrents.dials[0]!.context.sessionId);
      const ended = closeError(held);
      held.resume();
      torrents.dials[1]!.stream.destroy(new StreamError('metadata-timeout', 'no metadata in time'));
      expect((await ended)?.code).toBe('metadata-timeout');
      // The other wire of the session is untouched.
      expect(wire.closed).toBe(false);
      wire.destroy();
    } finally {
      stop();
    }
  });

  it('the exit closes its torrent service when it closes', async () => {
    const service = echoTorrentService(echo.port);
    const exit = await startExit(service.service);
    expect(service.closes()).toBe(0);
    await exit.close();
    expect(service.closes()).toBe(1);
  });
});
