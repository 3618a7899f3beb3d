import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer, type Server } from 'node:net';
import { lookup as dnsLookup } from 'node:dns/promises';
import { RelayEngine, TunnelClient } from '@underpass/shared/engines';
import { type SessionError, type StreamError } from '@underpass/shared/errors';
import { DEFAULT_SESSION_LIMITS, ExitEngine, ExitPolicy, SESSION_LIMIT_CODE } from '@underpass/shared/exit';
import { systemClock } from '@underpass/shared/clock';
import { type Link } from '@underpass/shared/links';
import { generateStaticKeyPair, type StaticKeyPair } from '@underpass/shared/tunnel';
import { TcpDialer, type Lookup } from '../src/tcp-dialer.js';
import { startTestSite, type TestSite } from '../../test/http-site.js';
import { peerLinkPair } from './peer-pair.js';
import { httpGet } from './http-get.js';
import { DEVELOPMENT_TRUST, developmentCertificateFor } from '@underpass/shared/trust';

/** A listener that must never be reached: it counts every connection it accepts (the test's own probes aside). */
interface Trap {
  host: string;
  port: number;
  connections: number;
  server: Server;
  /** The remote port of every connection accepted, so that a probe can find its own. */
  acceptedFrom: Set<number>;
  onAccept: (() => void) | undefined;
}

function listen(host: string, port: number): Promise<Trap> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      trap.connections += 1;
      trap.acceptedFrom.add(socket.remotePort ?? -1);
      trap.onAccept?.();
      socket.destroy();
    });
    const trap: Trap = { host, port, connections: 0, server, acceptedFrom: new Set(), onAccept: undefined };
    server.once('error', reject);
    server.listen(port, host, () => {
      trap.port = (server.address() as { port: number }).port;
      resolve(trap);
    });
  });
}

/**
 * Connects to a trap from the test itself and resolves once the trap has accepted that connection (which is
 * then taken off its count). A listener accepts in arrival order, so by then it has accepted any connection the
 * exit started before.
 */
function probe(trap: Trap): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: trap.host, port: trap.port });
    socket.once('error', reject);
    socket.once('connect', () => {
      const port = socket.localPort!;
      const arrived = () => {
        if (!trap.acceptedFrom.has(port)) return;
        trap.onAccept = undefined;
        trap.connections -= 1;
        socket.destroy();
        resolve();
      };
      trap.onAccept = arrived;
      arrived();
    });
  });
}

/** Loopback traps on one port for both 127.0.0.1 and ::1, retried until a port free on both is found. */
async function loopbackTraps(): Promise<[Trap, Trap]> {
  for (let attempt = 0; ; attempt++) {
    const v4 = await listen('127.0.0.1', 0);
    try {
      return [v4, await listen('::1', v4.port)];
    } catch (error) {
      v4.server.close();
      if (attempt > 10) throw error;
    }
  }
}

const open = (client: TunnelClient, host: string, port: number) => client.open({ kind: 'tcp', host, port });

/** Resolves when the client's session ends, with the code the exit (or the path) sent. */
const closedWith = (client: TunnelClient) =>
  new Promise<SessionError | undefined>((resolve) => client.once('close', resolve));

describe('hostile clients against a real exit (WebRTC, relay, TCP)', () => {
  let site: TestSite;
  let traps: Trap[];
  let trapPort: number;
  let staticKey: StaticKeyPair;
  let exit: ExitEngine;
  let relay: RelayEngine;
  let goodLink: Link;
  let hostileLink: Link;
  const links: Link[] = [];
  const dialed: string[] = [];
  /** Why the relay↔exit link closed, when it did before the end (it should not). */
  const linkCloses: string[] = [];
  /** While set, the exit's rate limits see this time: they stop refilling (its timers run as ever). */
  let pausedAt: number | undefined;

  beforeAll(async () => {
    site = await startTestSite({ host: '127.0.0.3', fileSize: 16 * 1024 * 1024 });
    const [v4, v6] = await loopbackTraps();
    trapPort = v4.port;
    traps = [v4, v6, await listen('127.0.0.3', 25), await listen('127.0.0.3', 445)];

    // Names resolve through the real resolver, except two test names: one that resolves to loopback
    // (rebinding), one that takes long to resolve (so a stream stays unopened while a client floods it).
    const lookup: Lookup = async (host) => {
      dialed.push(host);
      if (host === 'rebind.test') return [{ address: '127.0.0.1', family: 4 }];
      if (host === 'slow.test') {
        await new Promise((resolve) => setTimeout(resolve, 1500));
        return [{ address: '127.0.0.3', family: 4 }];
      }
      return dnsLookup(host, { all: true, verbatim: true });
    };
    staticKey = generateStaticKeyPair();
    exit = new ExitEngine({
      certificate: developmentCertificateFor(staticKey.publicKey),
      staticKey,
      // Only the test website is opened; every default denial stays in force.
      dialer: new TcpDialer({ policy: new ExitPolicy({ allowDestinations: ['127.0.0.3/32'] }), lookup }),
      // Here the flooders share two cores with the exit, the relay and a download, and send ~2,000 frames a
      // second at best (each one sealed and sent over WebRTC) — on a loaded machine less than any rate limit
      // worth having. So the floods run while the exit's clock stands still (`pauseRates`): no bucket refills,
      // each session gets exactly its burst, whatever the machine's speed. The message burst is lowered
      // (default 8,000) only to keep the flood short; the mechanism is the same.
      limits: { messagesBurst: 2000 },
      clock: { ...systemClock, now: () => pausedAt ?? systemClock.now() },
    });
    const [relayToExit, exitFromRelay] = await peerLinkPair();
    // A shared link that dies takes the good session with it (it fails with `link-closed`): say which and why.
    relayToExit.on('close', (error) =>
      linkCloses.push(`relay→exit closed: ${error?.message ?? 'no reason'}`),
    );
    exitFromRelay.on('close', (error) =>
      linkCloses.push(`exit←relay closed: ${error?.message ?? 'no reason'}`),
    );
    exit.addLink(exitFromRelay);
    relay = new RelayEngine({ connectExit: async () => relayToExit });
    const [goodClient, relayFromGood] = await peerLinkPair();
    const [hostileClient, relayFromHostile] = await peerLinkPair();
    relay.addClientLink(relayFromGood);
    relay.addClientLink(relayFromHostile);
    goodLink = goodClient;
    hostileLink = hostileClient;
    links.push(relayToExit, exitFromRelay, goodClient, relayFromGood, hostileClient, relayFromHostile);
  });

  afterAll(async () => {
    for (const link of links) link.close();
    exit?.close();
    relay?.close();
    for (const trap of traps ?? []) trap.server.close();
    await site?.close();
  });

  it('refuses every forbidden destination with policy-denied, and no listener sees a connection', async () => {
    const client = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: hostileLink,
      exitKey: staticKey.publicKey,
      circuitId: 11,
    });
    await client.ready();
    const forbidden: [string, number][] = [
      ['127.0.0.1', trapPort],
      ['10.0.0.1', trapPort],
      ['::1', trapPort],
      ['::ffff:127.0.0.1', trapPort],
      ['169.254.169.254', trapPort],
      ['0x7f000001', trapPort], // getaddrinfo reads hex…
      ['2130706433', trapPort], // …and decimal, and the check runs on what it returns
      ['0177.0.0.1', trapPort], // octal
      ['localhost', trapPort],
      ['rebind.test', trapPort],
      ['127.0.0.3', 25], // the website's own address is allowed, SMTP never
      ['127.0.0.3', 445], // and the default port policy stays in force
    ];
    for (const [host, port] of forbidden) {
      const outcome = await open(client, host, port).then(
        () => 'opened',
        (error: StreamError) => error.code,
      );
      expect(outcome, `${host}:${port}`).toBe('policy-denied');
    }
    // The names really went through the resolver (the check ran on what it returned).
    expect(dialed).toEqual(expect.arrayContaining(['0x7f000001', '2130706433', 'localhost', 'rebind.test']));
    // The session is fine after all of that: an allowed destination still works.
    const page = await httpGet(await open(client, '127.0.0.3', site.port), '127.0.0.3', '/');
    expect(page.status).toMatch(/^HTTP\/1\.1 200/);
    await Promise.all(traps.map(probe));
    expect(traps.map((t) => `${t.host}:${t.port}=${t.connections}`)).toEqual(
      traps.map((t) => `${t.host}:${t.port}=0`),
    );
    client.close();
  });

  it('floods, a window overrun and thousands of opens end only the offending sessions', async () => {
    pausedAt = systemClock.now();
    const good = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: goodLink,
      exitKey: staticKey.publicKey,
      circuitId: 1,
    });
    await good.ready();
    const download = open(good, '127.0.0.3', site.port).then((stream) =>
      httpGet(stream, '127.0.0.3', '/file.bin'),
    );
    download.catch(() => undefined); // awaited below; this keeps an early failure from going unhandled

    // 1. A frame flood: legal, tiny frames (1-byte window increments) as fast as possible.
    const flooder = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: hostileLink,
      exitKey: staticKey.publicKey,
      circuitId: 21,
    });
    const flooderClosed = closedWith(flooder);
    await flooder.ready();
    const target = await open(flooder, '127.0.0.3', site.port);
    for (let i = 0; i < 50_000 && !flooder.closed; i++) {
      flooder.session.mux.sendFrame({ type: 'window', streamId: target.id, increment: 1 });
      if (i % 1000 === 999) await new Promise((resolve) => setImmediate(resolve));
    }

    // 2. A window overrun: DATA past the 256 KiB window on a stream the exit is still dialing (slow DNS).
    const overrunner = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: hostileLink,
      exitKey: staticKey.publicKey,
      circuitId: 22,
    });
    const overrunClosed = closedWith(overrunner);
    await overrunner.ready();
    const pending = open(overrunner, 'slow.test', site.port).catch((error: StreamError) => error);
    while (overrunner.session.mux.streamCount === 0) await new Promise((resolve) => setImmediate(resolve));
    const chunk = new Uint8Array(16 * 1024);
    for (let i = 0; i < 24; i++) overrunner.session.mux.sendFrame({ type: 'data', streamId: 1, data: chunk });

    // 3. Thousands of stream opens, 250 at a time (each refused by policy, so no TCP at all).
    const opener = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: hostileLink,
      exitKey: staticKey.publicKey,
      circuitId: 23,
    });
    const openerClosed = closedWith(opener);
    await opener.ready();
    let refused = 0;
    for (let batch = 0; batch < 12 && !opener.closed; batch++) {
      const results = await Promise.all(
        Array.from({ length: 250 }, () =>
          open(opener, '10.0.0.1', 80).then(
            () => 'opened',
            (error: StreamError) => error.code,
          ),
        ),
      );
      refused += results.filter((code) => code === 'policy-denied').length;
    }

    expect(await flooderClosed).toMatchObject({ code: SESSION_LIMIT_CODE });
    expect(await overrunClosed).toMatchObject({ code: 'window-overrun' });
    expect(await pending).toMatchObject({ code: 'session-closed' });
    expect(await openerClosed).toMatchObject({ code: SESSION_LIMIT_CODE });
    // The opener was cut off by the open limit (its burst, then as many refusals), before its message burst.
    expect(refused).toBe(DEFAULT_SESSION_LIMITS.streamOpensBurst);
    pausedAt = undefined;

    const body = await download.catch((error: unknown) => {
      throw new Error(
        `the good download failed: ${String(error)}; ${linkCloses.join('; ') || 'no link closed'}`,
      );
    });
    expect(body.status).toMatch(/^HTTP\/1\.1 200/);
    expect(body.sha256).toBe(site.fileSha256);
    expect(good.closed).toBe(false);
    // The hostile link itself and the shared relay→exit link survive: a new session on them works.
    const again = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: hostileLink,
      exitKey: staticKey.publicKey,
      circuitId: 24,
    });
    const page = await httpGet(await open(again, '127.0.0.3', site.port), '127.0.0.3', '/');
    expect(page.status).toMatch(/^HTTP\/1\.1 200/);
    expect(exit.stats().sessionsCutOff).toBe(3);
    again.close();
    good.close();
  });
});
