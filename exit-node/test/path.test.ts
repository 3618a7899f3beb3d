import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ProtectEngine, VolunteerEngine } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { type ByteStream } from '@underpass/shared/streams';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { nodePeerFactory } from '../src/node-peer.js';
import { startTestSite, type TestSite } from '../../test/http-site.js';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';
import { developmentCertificates } from '../src/certificates.js';
import { until } from './until.js';
import { Mux, MuxFrameType } from '@underpass/shared/tunnel';
import { SessionError } from '@underpass/shared/errors';

const WS = WebSocket as unknown as WebSocketConstructorLike;

/** Sends one HTTP/1.0 GET over a tunnel stream and returns the body. */
async function httpGet(stream: ByteStream, host: string, path: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk) => chunks.push(Buffer.from(chunk)));
    // HTTP/1.0: the server ends its side after the response; then we end ours, which closes the stream.
    stream.on('end', () => {
      stream.end();
      resolve();
    });
    stream.on('close', (error) => (error ? reject(error) : resolve()));
  });
  stream.resume();
  stream.write(Buffer.from(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
  await done;
  const all = Buffer.concat(chunks);
  const split = all.indexOf('\r\n\r\n');
  expect(all.subarray(0, split).toString()).toMatch(/^HTTP\/1\.1 200/);
  return all.subarray(split + 4);
}

/** The client's signaling, its paths' exits not saying `pings`: as from a broker or exit from before the field. */
function withoutPings(signaling: SignalingClient): SignalingClient {
  return new Proxy(signaling, {
    get(target, property, receiver) {
      if (property === 'requestPath') {
        return async (request: Parameters<SignalingClient['requestPath']>[0]) => {
          const path = await target.requestPath(request);
          const { pings: _pings, ...exit } = path.exit;
          return { ...path, exit };
        };
      }
      const value: unknown = Reflect.get(target, property, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/**
 * What an exit built before PING does with one: an unknown frame type ends the session. Only exits receive
 * PINGs (the client never gets one), so this makes every exit here an old one until the spy is restored.
 */
function refusePings() {
  const receive = Mux.prototype.receive;
  return vi.spyOn(Mux.prototype, 'receive').mockImplementation(function (this: Mux, bytes) {
    if (bytes[0] === MuxFrameType.Ping)
      this.close(new SessionError('malformed-frame', 'unknown frame type 8'));
    else receive.call(this, bytes);
  });
}

describe('a real path: client engine → relay engine → exit node → website (WebRTC in Node)', () => {
  let signaling: SignalingServer;
  let exit: ExitNode;
  let site: TestSite;
  let dataDir: string;
  const volunteerSignaling: SignalingClient[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'underpass-exit-'));
    signaling = await startSignalingServer({ port: 0 });
    site = await startTestSite({ fileSize: 5 * 1024 * 1024 });
    exit = await startExitNode({
      certificate: developmentCertificates,
      signalingUrl: signaling.url,
      dataDir,
      allowDestinations: ['127.0.0.1/32'],
      bindAddress: '127.0.0.3',
    });
  });

  afterAll(async () => {
    for (const client of volunteerSignaling) client.close();
    await exit?.close();
    await signaling?.close();
    await site?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  /**
   * A client engine with its own signaling connection, Protect already on. `pingsUnknown`: the broker's paths
   * do not say the exit answers PING, as from a broker or an exit from before the field.
   */
  async function startClient(
    mode: 'two-hop' | 'direct',
    rttIntervalMs?: number,
    options: { pingsUnknown?: boolean } = {},
  ) {
    const clientSignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'client' },
    });
    const protect = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      signaling: options.pingsUnknown ? withoutPings(clientSignaling) : clientSignaling,
      createPeer: nodePeerFactory(),
      mode,
      ...(rttIntervalMs ? { rttIntervalMs } : {}),
    });
    await protect.start();
    return { protect, clientSignaling };
  }

  it('downloads a file through two hops; the site sees only the exit’s address', async () => {
    const relaySignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'relay', capacity: 2 },
    });
    volunteerSignaling.push(relaySignaling);
    const volunteer = new VolunteerEngine({
      signaling: relaySignaling,
      createPeer: nodePeerFactory(),
      capacity: 2,
    });
    await volunteer.start();

    const { protect, clientSignaling } = await startClient('two-hop');
    expect(protect.state).toMatchObject({
      status: 'protected',
      path: { hop: { role: 'relay' }, exit: { exitKey: exit.exitKey } },
    });

    const body = await httpGet(
      await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port }),
      '127.0.0.1',
      '/file.bin',
    );
    expect(createHash('sha256').update(body).digest('hex')).toBe(site.fileSha256);
    expect(new Set(site.remoteAddresses)).toEqual(new Set(['127.0.0.3']));
    expect(volunteer.stats().bytesToClients).toBeGreaterThan(5 * 1024 * 1024);

    // The default policy still denies what the operator did not allow, after resolution.
    for (const host of ['127.0.0.2', '10.0.0.1', '169.254.169.254']) {
      await expect(protect.open({ kind: 'tcp', host, port: site.port })).rejects.toMatchObject({
        code: 'policy-denied',
      });
    }
    // …and the engine keeps those refusals, in the exit's own words, for the popup.
    expect(protect.stats().refusals).toMatchObject({
      total: 3,
      byReason: { 'policy-denied': 3 },
      recent: [
        { destination: `169.254.169.254:${site.port}`, reason: 'policy-denied' },
        { destination: `10.0.0.1:${site.port}`, reason: 'policy-denied' },
        { destination: `127.0.0.2:${site.port}`, reason: 'policy-denied' },
      ],
    });
    protect.stop();
    volunteer.stop();
    clientSignaling.close();
  });

  it('direct mode: client → exit', async () => {
    const { protect, clientSignaling } = await startClient('direct');
    expect(protect.state).toMatchObject({ status: 'protected', path: { hop: { role: 'exit' } } });
    const body = await httpGet(
      await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port }),
      '127.0.0.1',
      '/',
    );
    expect(body.toString()).toContain('Hello through the tunnel');
    protect.stop();
    clientSignaling.close();
  });

  it('early data: a request written with the open is answered; a refusal closes its stream with the exit’s code and is logged, a stream given up before the answer is not', async () => {
    const { protect, clientSignaling } = await startClient('direct');
    const early = protect.openEarly({ kind: 'tcp', host: '127.0.0.1', port: site.port });
    const body = await httpGet(early.stream, '127.0.0.1', '/');
    expect(body.toString()).toContain('Hello through the tunnel');
    await early.opened;

    const denied = protect.openEarly({ kind: 'tcp', host: '10.0.0.1', port: site.port });
    await expect(httpGet(denied.stream, '10.0.0.1', '/')).rejects.toMatchObject({ code: 'policy-denied' });
    await expect(denied.opened).rejects.toMatchObject({ code: 'policy-denied' });
    // Remembered, so that the browser's next connection there waits for the exit's answer (a proxy error).
    expect(protect.refusedLately({ kind: 'tcp', host: '10.0.0.1', port: site.port })).toBe(true);
    expect(protect.refusedLately({ kind: 'tcp', host: '127.0.0.1', port: site.port })).toBe(false);

    const givenUp = protect.openEarly({ kind: 'tcp', host: '127.0.0.1', port: site.port });
    givenUp.stream.destroy();
    await expect(givenUp.opened).rejects.toBeDefined();
    expect(protect.stats().refusals).toMatchObject({ total: 1, byReason: { 'policy-denied': 1 } });
    expect(protect.state.status).toBe('protected');

    protect.stop();
    expect(() => protect.openEarly({ kind: 'tcp', host: '127.0.0.1', port: site.port })).toThrow(
      expect.objectContaining({ code: 'unreachable' }),
    );
    clientSignaling.close();
  });

  it('measures the round trip end to end with PING/PONG, again and again while the path is up', async () => {
    const { protect, clientSignaling } = await startClient('direct', 50);
    const first = protect.stats().rttMs;
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first).toBeLessThan(5_000);
    // performance.now() has sub-millisecond steps: a new figure is a new measurement.
    await until('a second round trip', () => protect.stats().rttMs !== first);
    protect.stop();
    expect(protect.stats().rttMs).toBeUndefined();
    clientSignaling.close();
  });

  it('a new path: a fresh link through the other relay, with opens refused (never sent) meanwhile', async () => {
    const relays = [0, 1].map(() => {
      const relaySignaling = new SignalingClient({
        url: signaling.url,
        WebSocket: WS,
        hello: { role: 'relay', capacity: 2 },
      });
      volunteerSignaling.push(relaySignaling);
      return new VolunteerEngine({ signaling: relaySignaling, createPeer: nodePeerFactory(), capacity: 2 });
    });
    for (const relay of relays) await relay.start();
    const { protect, clientSignaling } = await startClient('two-hop');
    const first = protect.state.status === 'protected' ? protect.state.path : undefined;
    expect(first?.hop.role).toBe('relay');

    const states: string[] = [];
    protect.on('state', (state) => states.push(state.status));
    expect(protect.renew()).toBe(true);
    expect(protect.state).toMatchObject({ status: 'reconnecting', renewing: true });
    await expect(protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port })).rejects.toMatchObject({
      code: 'unreachable',
    });
    expect(protect.renew()).toBe(false);
    await until('the new path', () => protect.state.status === 'protected');
    const second = protect.state.status === 'protected' ? protect.state.path : undefined;
    expect(second?.linkId).not.toBe(first?.linkId);
    // The old path was still ours while the broker chose: the least-loaded relay is the other one.
    expect(second?.hop.peerId).not.toBe(first?.hop.peerId);
    expect(states).toEqual(['reconnecting', 'protected']); // the first try worked: no rebuild loop
    expect(protect.stats().refusals.byReason).toEqual({ 'no-path': 1 });

    const body = await httpGet(
      await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port }),
      '127.0.0.1',
      '/',
    );
    expect(body.toString()).toContain('Hello through the tunnel');
    // The old link is let go: only the new relay serves a client.
    await until(
      'the old relay freed',
      () => relays.reduce((sum, relay) => sum + relay.stats().clientsNow, 0) === 1,
    );
    protect.stop();
    for (const relay of relays) relay.stop();
    clientSignaling.close();
  });

  it('an exit that predates PING: the path is built again without it, and no stream ever meets the difference', async () => {
    const spy = refusePings();
    try {
      const sessionsBefore = exit.stats().sessionsTotal;
      const { protect, clientSignaling } = await startClient('direct', 50, { pingsUnknown: true });
      expect(protect.state.status).toBe('protected');
      // One session refused the PING, the second never got one.
      expect(exit.stats().sessionsTotal - sessionsBefore).toBe(2);
      // The handshake's round trip stands in for the echo.
      expect(protect.stats().rttMs).toBeGreaterThanOrEqual(0);
      const body = await httpGet(
        await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port }),
        '127.0.0.1',
        '/',
      );
      expect(body.toString()).toContain('Hello through the tunnel');
      expect(protect.state.status).toBe('protected');
      expect(exit.stats().sessionsTotal - sessionsBefore).toBe(2);
      protect.stop();
      clientSignaling.close();
    } finally {
      spy.mockRestore();
    }
  });

  it('an exit that says it answers PING: the path is used at once and its first PING goes beside it', async () => {
    const sessionsBefore = exit.stats().sessionsTotal;
    // Measurements a minute apart: a round trip measured within seconds is the first PING, sent at once.
    const { protect, clientSignaling } = await startClient('direct', 60_000);
    expect(protect.state.status).toBe('protected');
    const handshakeRtt = protect.stats().rttMs;
    expect(handshakeRtt).toBeGreaterThanOrEqual(0);
    await until('the first PING answered', () => protect.stats().rttMs !== handshakeRtt, 5_000);
    expect(exit.stats().sessionsTotal - sessionsBefore).toBe(1);
    protect.stop();
    clientSignaling.close();
  });

  it('a broker that says an exit answers PING when it ends the session on one: learned, and the path rebuilt without', async () => {
    const spy = refusePings();
    try {
      const sessionsBefore = exit.stats().sessionsTotal;
      const { protect, clientSignaling } = await startClient('direct', 50);
      await until('the session ended on the PING and a second one built', () => {
        return exit.stats().sessionsTotal - sessionsBefore === 2 && protect.state.status === 'protected';
      });
      const body = await httpGet(
        await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port }),
        '127.0.0.1',
        '/',
      );
      expect(body.toString()).toContain('Hello through the tunnel');
      // No PING on the second session, though measurements are due every 50 ms: still the one session.
      expect(exit.stats().sessionsTotal - sessionsBefore).toBe(2);
      expect(protect.state.status).toBe('protected');
      protect.stop();
      clientSignaling.close();
    } finally {
      spy.mockRestore();
    }
  });

  it('a new path that cannot be had (the only relay is full): the old one is let go and the usual rebuild brings one back', async () => {
    const relaySignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'relay', capacity: 1 },
    });
    volunteerSignaling.push(relaySignaling);
    const relay = new VolunteerEngine({
      signaling: relaySignaling,
      createPeer: nodePeerFactory(),
      capacity: 1,
    });
    await relay.start();
    const { protect, clientSignaling } = await startClient('two-hop');
    const first = protect.state.status === 'protected' ? protect.state.path : undefined;
    const states: string[] = [];
    protect.on('state', (state) =>
      states.push(state.status === 'reconnecting' && state.renewing ? 'renewing' : state.status),
    );
    expect(protect.renew()).toBe(true);
    // The broker has no relay with room while the old path holds the only place: no-relay-available after
    // its wait; then the old path goes, and the rebuild gets the freed place.
    await until('a path again', () => protect.state.status === 'protected', 25_000);
    expect(states[0]).toBe('renewing');
    expect(states).toContain('reconnecting');
    const second = protect.state.status === 'protected' ? protect.state.path : undefined;
    expect(second?.linkId).not.toBe(first?.linkId);
    expect(second?.hop.peerId).toBe(first?.hop.peerId);
    const body = await httpGet(
      await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port }),
      '127.0.0.1',
      '/',
    );
    expect(body.toString()).toContain('Hello through the tunnel');
    protect.stop();
    relay.stop();
    clientSignaling.close();
  });
});
