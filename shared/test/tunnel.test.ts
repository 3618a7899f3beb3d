import { describe, expect, it, vi } from 'vitest';
import { memoryLinkPair } from '../src/links/memory-link.js';
import { ExitEngine } from '../src/exit/exit-engine.js';
import { TunnelClient } from '../src/engines/client.js';
import { RelayEngine } from '../src/engines/relay.js';
import { generateStaticKeyPair } from '../src/tunnel/noise.js';
import { decodeCell, encodeCell, MAX_CELL, readdressCell } from '../src/tunnel/cells.js';
import { encodeMuxFrame } from '../src/tunnel/mux-frames.js';
import { SessionError, StreamError } from '../src/errors.js';
import { DEFAULT_SESSION_WINDOW } from '../src/tunnel/mux.js';
import { LINK_HIGH_WATER } from '../src/links/link.js';
import { collect, echoDialer, pattern } from './helpers.js';
import { DEVELOPMENT_TRUST, developmentCertificateFor } from '../src/trust/index.js';

function setupDirect(options: { windowSize?: number } = {}) {
  void options;
  const staticKey = generateStaticKeyPair();
  const dialer = echoDialer({ 'denied.test': 'policy-denied' });
  const exit = new ExitEngine({
    certificate: developmentCertificateFor(staticKey.publicKey),
    staticKey,
    dialer,
  });
  const connect = (exitKey = staticKey.publicKey) => {
    const [clientSide, exitSide] = memoryLinkPair();
    exit.addLink(exitSide);
    clientSide.recordSent = true;
    const client = new TunnelClient({ trust: DEVELOPMENT_TRUST, link: clientSide, exitKey });
    return { client, clientSide, exitSide };
  };
  return { staticKey, exit, dialer, connect };
}

async function echoRoundTrip(client: TunnelClient, size: number): Promise<Uint8Array> {
  const stream = await client.open({ kind: 'tcp', host: 'example.test', port: 80 });
  const received = collect(stream);
  stream.write(pattern(size));
  stream.end();
  return received;
}

describe('tunnel: client ↔ exit', () => {
  it('carries a stream end to end through the encrypted session', async () => {
    const { connect, dialer } = setupDirect();
    const { client } = connect();
    await client.ready();
    expect(await echoRoundTrip(client, 1_000_000)).toEqual(pattern(1_000_000));
    expect(dialer.dials).toEqual(['example.test:80']);
    expect(client.stats().bytesUp).toBe(1_000_000);
  });

  it('runs many streams at once, each with its own flow control', async () => {
    const { connect } = setupDirect();
    const { client } = connect();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => echoRoundTrip(client, 20_000 + i)),
    );
    results.forEach((bytes, i) => expect(bytes).toEqual(pattern(20_000 + i)));
  });

  it('reports a refused destination as a typed stream error and keeps the session', async () => {
    const { connect } = setupDirect();
    const { client } = connect();
    await expect(client.open({ kind: 'tcp', host: 'denied.test', port: 80 })).rejects.toMatchObject({
      code: 'policy-denied',
    });
    expect(await echoRoundTrip(client, 100)).toEqual(pattern(100));
  });

  it('ends the session with wrong-exit when the client pinned another key', async () => {
    const { connect, exit } = setupDirect();
    const other = generateStaticKeyPair();
    const { client } = connect(other.publicKey);
    await expect(client.ready()).rejects.toMatchObject({ code: 'wrong-exit' });
    expect(exit.stats().sessions).toBe(0);
  });

  it('ends the session with handshake-failed when an impostor holds the link', async () => {
    // The broker (or anyone in the middle) points the client at an exit with a different key but the same
    // announced public key: the impostor cannot complete the handshake.
    const real = generateStaticKeyPair();
    const impostor = new ExitEngine({
      staticKey: { publicKey: real.publicKey, secretKey: generateStaticKeyPair().secretKey },
      // Certificates are public: an impostor can replay the real exit's. Noise NK still stops it.
      certificate: developmentCertificateFor(real.publicKey),
      dialer: echoDialer(),
    });
    const [clientSide, exitSide] = memoryLinkPair();
    impostor.addLink(exitSide);
    const client = new TunnelClient({ trust: DEVELOPMENT_TRUST, link: clientSide, exitKey: real.publicKey });
    await expect(client.ready()).rejects.toBeInstanceOf(SessionError);
  });

  it('ends only the offending session on tampered ciphertext', async () => {
    const { connect, exit } = setupDirect();
    const victim = connect();
    const bystander = connect();
    await Promise.all([victim.client.ready(), bystander.client.ready()]);
    const closed = new Promise<SessionError | undefined>((resolve) => victim.client.once('close', resolve));
    const lastData = victim.clientSide.sent.filter((b) => decodeCell(b).ok && b[0] === 2).at(-1)!;
    const tampered = lastData.slice();
    tampered[tampered.length - 1]! ^= 0x01;
    // A fresh, well-formed DATA cell whose ciphertext fails authentication.
    victim.exitSide.deliver(tampered);
    expect((await closed)?.code).toBe('tampered');
    expect(await echoRoundTrip(bystander.client, 50_000)).toEqual(pattern(50_000));
    expect(exit.stats().sessions).toBe(1);
  });

  it('ends the session on a replayed frame', async () => {
    const { connect } = setupDirect();
    const { client, clientSide, exitSide } = connect();
    await client.ready();
    await echoRoundTrip(client, 10);
    const closed = new Promise<SessionError | undefined>((resolve) => client.once('close', resolve));
    const firstTransport = clientSide.sent.filter((b) => b[0] === 2)[1]!; // [0] is the handshake
    exitSide.deliver(firstTransport);
    expect((await closed)?.code).toBe('tampered');
  });

  it('closes a link that sends truncated or oversized cells, and no other', async () => {
    const { connect } = setupDirect();
    const bad = connect();
    const good = connect();
    await Promise.all([bad.client.ready(), good.client.ready()]);
    const closed = new Promise<SessionError | undefined>((resolve) => bad.client.once('close', resolve));
    bad.exitSide.deliver(new Uint8Array([2, 0, 0])); // truncated header
    expect((await closed)?.code).toBe('link-closed');
    expect(bad.exitSide.closed).toBe(true);
    const oversized = connect();
    await oversized.client.ready();
    const closed2 = new Promise<SessionError | undefined>((resolve) =>
      oversized.client.once('close', resolve),
    );
    oversized.exitSide.deliver(new Uint8Array(MAX_CELL + 1));
    await closed2;
    expect(oversized.exitSide.closed).toBe(true);
    expect(await echoRoundTrip(good.client, 1000)).toEqual(pattern(1000));
  });
});

describe('tunnel: the mux inside the session rejects protocol abuse', () => {
  /** A session whose client side we drive by hand, to send frames a well-behaved client never would. */
  async function rawSession() {
    const { connect } = setupDirect();
    const { client, exitSide } = connect();
    await client.ready();
    const sendRaw = (frame: Uint8Array) => {
      // Seal with the client's real keys so the exit accepts the ciphertext and judges the frame itself.
      const session = client.session as unknown as { sendSealed(frame: Uint8Array): void };
      session.sendSealed(frame);
    };
    const closed = new Promise<SessionError | undefined>((resolve) => client.once('close', resolve));
    return { client, sendRaw, closed, exitSide };
  }

  it('unknown stream id', async () => {
    const { sendRaw, closed } = await rawSession();
    sendRaw(encodeMuxFrame({ type: 'data', streamId: 99, data: new Uint8Array(10) }));
    expect((await closed)?.code).toBe('unknown-stream');
  });

  it('malformed frame', async () => {
    const { sendRaw, closed } = await rawSession();
    sendRaw(new Uint8Array([42, 0, 0, 0, 1]));
    expect((await closed)?.code).toBe('malformed-frame');
  });

  it('reused stream id', async () => {
    const { client, sendRaw, closed } = await rawSession();
    const stream = await client.open({ kind: 'tcp', host: 'example.test', port: 80 });
    sendRaw(
      encodeMuxFrame({
        type: 'open',
        streamId: stream.id,
        request: { kind: 'tcp', host: 'a.test', port: 1 },
      }),
    );
    expect((await closed)?.code).toBe('malformed-frame');
  });
});

describe('tunnel: client → relay → exit', () => {
  it('relays sealed cells it cannot read and counts them', async () => {
    const staticKey = generateStaticKeyPair();
    const exit = new ExitEngine({
      certificate: developmentCertificateFor(staticKey.publicKey),
      staticKey,
      dialer: echoDialer(),
    });
    const relay = new RelayEngine({
      connectExit: async () => {
        const [relaySide, exitSide] = memoryLinkPair();
        exit.addLink(exitSide);
        return relaySide;
      },
    });
    const [clientSide, relayClientSide] = memoryLinkPair();
    relay.addClientLink(relayClientSide);
    const secret = new TextEncoder().encode('secret-payload-the-relay-must-not-see');
    const seen: Uint8Array[] = [];
    relayClientSide.on('message', (cell) => seen.push(cell));
    const client = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: clientSide,
      exitKey: staticKey.publicKey,
    });
    const stream = await client.open({ kind: 'tcp', host: 'example.test', port: 443 });
    const echoed = collect(stream);
    stream.write(secret);
    stream.end();
    expect(await echoed).toEqual(secret);
    const all = Buffer.concat(seen);
    expect(all.includes(Buffer.from(secret))).toBe(false);
    expect(all.includes(Buffer.from('example.test'))).toBe(false);
    const stats = relay.stats();
    expect(stats.circuitsTotal).toBe(1);
    expect(stats.bytesFromClients).toBeGreaterThan(secret.length);
    expect(stats.bytesToClients).toBeGreaterThan(secret.length);
  });

  it('closes the circuit with wrong-exit when the directory has no such exit', async () => {
    const relay = new RelayEngine({ connectExit: () => Promise.reject(new StreamError('unreachable')) });
    const [clientSide, relaySide] = memoryLinkPair();
    relay.addClientLink(relaySide);
    const client = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: clientSide,
      exitKey: generateStaticKeyPair().publicKey,
    });
    await expect(client.ready()).rejects.toMatchObject({ code: 'wrong-exit' });
  });

  it('forwards cells on its own circuit ids both ways, so clients may reuse the same id', async () => {
    const staticKey = generateStaticKeyPair();
    const exit = new ExitEngine({
      certificate: developmentCertificateFor(staticKey.publicKey),
      staticKey,
      dialer: echoDialer(),
    });
    const idsAtExit = new Set<number>();
    const relay = new RelayEngine({
      connectExit: async () => {
        const [relaySide, exitSide] = memoryLinkPair();
        exitSide.on('message', (bytes) =>
          idsAtExit.add(new DataView(bytes.buffer, bytes.byteOffset).getUint32(1)),
        );
        exit.addLink(exitSide);
        return relaySide;
      },
    });
    const clients = [0, 1].map(() => {
      const [clientSide, relaySide] = memoryLinkPair();
      relay.addClientLink(relaySide);
      const idsAtClient = new Set<number>();
      clientSide.on('message', (bytes) =>
        idsAtClient.add(new DataView(bytes.buffer, bytes.byteOffset).getUint32(1)),
      );
      return {
        client: new TunnelClient({
          trust: DEVELOPMENT_TRUST,
          link: clientSide,
          exitKey: staticKey.publicKey,
        }),
        idsAtClient,
      };
    });
    const echoed = await Promise.all(clients.map(({ client }) => echoRoundTrip(client, 200_000)));
    for (const bytes of echoed) expect(bytes).toEqual(pattern(200_000));
    expect([...idsAtExit].sort()).toEqual([1, 2]);
    for (const { idsAtClient } of clients) expect([...idsAtClient]).toEqual([1]);
  });

  it('holds at most a session window for a congested client link, and delivers it all after the drain', async () => {
    const staticKey = generateStaticKeyPair();
    const exit = new ExitEngine({
      certificate: developmentCertificateFor(staticKey.publicKey),
      staticKey,
      dialer: echoDialer(),
    });
    let exitSent = 0;
    const relay = new RelayEngine({
      connectExit: async () => {
        const [relaySide, exitSide] = memoryLinkPair();
        const send = exitSide.send.bind(exitSide);
        exitSide.send = (message) => {
          exitSent += message.length;
          send(message);
        };
        exit.addLink(exitSide);
        return relaySide;
      },
    });
    const [clientSide, relayClientSide] = memoryLinkPair();
    relay.addClientLink(relayClientSide);
    const client = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: clientSide,
      exitKey: staticKey.publicKey,
    });
    const streams = await Promise.all(
      Array.from({ length: 24 }, () => client.open({ kind: 'tcp', host: 'example.test', port: 80 })),
    );
    relayClientSide.simulateBuffered(2 * LINK_HIGH_WATER);
    // 24 streams echo 512 KiB each: their windows (24 × 256 KiB) would let 6 MiB head for a client link that
    // takes nothing for now; the session window lets 4 MiB.
    const echoed = Promise.all(
      streams.map((stream) => {
        const received = collect(stream);
        stream.write(pattern(512 * 1024));
        stream.end();
        return received;
      }),
    );
    // Until the exit has sent most of a session window and then stopped: no more in three polls in a row.
    let lastSeen = -1;
    let unchanged = 0;
    await vi.waitFor(
      () => {
        unchanged = exitSent === lastSeen ? unchanged + 1 : 0;
        lastSeen = exitSent;
        if (exitSent < DEFAULT_SESSION_WINDOW * 0.9 || unchanged < 3)
          throw new Error('the exit is still sending');
      },
      { timeout: 5_000, interval: 20 },
    );
    const heldBack = exitSent;
    expect(heldBack).toBeGreaterThan(DEFAULT_SESSION_WINDOW * 0.9);
    expect(heldBack).toBeLessThan(DEFAULT_SESSION_WINDOW * 1.01);
    relayClientSide.simulateBuffered(0);
    const expected = Buffer.from(pattern(512 * 1024));
    for (const bytes of await echoed) expect(expected.equals(bytes)).toBe(true);
    expect(exitSent).toBeGreaterThan(12 * 1024 * 1024);
  });

  it('encodes cells round trip', () => {
    const data = encodeCell({ type: 'data', circuitId: 3, payload: Uint8Array.of(9, 8, 7) });
    expect(decodeCell(readdressCell(data, 0xfffffffe))).toEqual({
      ok: true,
      value: { type: 'data', circuitId: 0xfffffffe, payload: Uint8Array.of(9, 8, 7) },
    });
    const cell = encodeCell({ type: 'close', circuitId: 7, code: 'tampered' });
    expect(decodeCell(cell)).toEqual({ ok: true, value: { type: 'close', circuitId: 7, code: 'tampered' } });
    expect(decodeCell(new Uint8Array([1, 0, 0, 0, 1, 5])).ok).toBe(false);
    expect(decodeCell(new Uint8Array([2, 0, 0, 0, 0, 5])).ok).toBe(false);
  });
});
