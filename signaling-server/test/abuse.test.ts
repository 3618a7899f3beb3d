/** Hostile peers against each limit: exit-key proof, waiting for relays, idle peers, per-address caps, floods. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { x25519 } from '@noble/curves/ed25519.js';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { SignalingClient } from '@underpass/shared/signaling';
import { proveExitKey } from '@underpass/shared/signaling';
import { encodeExitKey } from '@underpass/shared/signaling';
import { exitSecretOf, newExitKey, scrape, serverUnderTest } from './helpers.js';

const { server, start, join, open } = serverUnderTest();
const clients: SignalingClient[] = [];

afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

describe('exit key proof of possession', () => {
  it('refuses a proof made with another secret (announcing someone else’s key)', async () => {
    await start();
    const victim = newExitKey();
    const mine = newExitKey();
    const p = await open();
    p.send({ type: 'hello', v: 1, role: 'exit', exitKey: victim, capacity: 5 });
    const challenge = await p.next('challenge');
    expect(challenge.serverKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    p.send({ type: 'prove', proof: proveExitKey(exitSecretOf(mine), challenge) });
    const err = await p.next('error');
    expect(err).toMatchObject({ code: 'not-allowed' });
    expect((await p.closed).code).toBe(1008);
    const exits = await fetch(server().url.replace('ws://', 'http://') + 'v1/exits');
    expect(await exits.json()).toEqual({ exits: [] });
  });

  it('refuses random proofs, replies other than prove, and proofs replayed from another connection', async () => {
    await start();
    const key = newExitKey();
    const random = await open();
    random.send({ type: 'hello', v: 1, role: 'exit', exitKey: key });
    await random.next('challenge');
    random.send({ type: 'prove', proof: encodeExitKey(new Uint8Array(32).fill(7)) });
    expect((await random.next('error')).code).toBe('not-allowed');
    await random.closed;

    const other = await open();
    other.send({ type: 'hello', v: 1, role: 'exit', exitKey: key });
    await other.next('challenge');
    other.send({ type: 'heartbeat' });
    expect((await other.next('error')).code).toBe('not-allowed');
    await other.closed;

    // A proof is bound to one challenge: an eavesdropper who saw it cannot reuse it elsewhere.
    const first = await open();
    first.send({ type: 'hello', v: 1, role: 'exit', exitKey: key });
    const proof = proveExitKey(exitSecretOf(key), await first.next('challenge'));
    const replay = await open();
    replay.send({ type: 'hello', v: 1, role: 'exit', exitKey: key });
    await replay.next('challenge');
    replay.send({ type: 'prove', proof });
    expect((await replay.next('error')).code).toBe('not-allowed');
    first.send({ type: 'prove', proof });
    expect((await first.next('welcome')).peerId).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });

  it('refuses a low-order exit key, whose shared secret anyone knows', async () => {
    await start();
    const p = await open();
    const zero = encodeExitKey(new Uint8Array(32));
    p.send({ type: 'hello', v: 1, role: 'exit', exitKey: zero });
    await p.next('challenge');
    p.send({ type: 'prove', proof: encodeExitKey(new Uint8Array(32)) });
    expect((await p.next('error')).code).toBe('not-allowed');
    await p.closed;
  });

  it('times out an exit that never proves', async () => {
    await start({ limits: { handshakeTimeoutMs: 150 } });
    const p = await open();
    p.send({ type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
    await p.next('challenge');
    expect((await p.next('error')).code).toBe('timeout');
    await p.closed;
  });

  it('SignalingClient proves with exitSecretKey or a proveExitKey hook, and fails clearly with neither', async () => {
    await start();
    const secret = x25519.utils.randomSecretKey();
    const exitKey = encodeExitKey(x25519.getPublicKey(secret));
    const withKey = new SignalingClient({
      url: server().url,
      WebSocket,
      hello: { role: 'exit', exitKey },
      exitSecretKey: secret,
    });
    clients.push(withKey);
    await withKey.connect();
    withKey.close();

    const secret2 = x25519.utils.randomSecretKey();
    const withHook = new SignalingClient({
      url: server().url,
      WebSocket,
      hello: { role: 'exit', exitKey: encodeExitKey(x25519.getPublicKey(secret2)) },
      proveExitKey: async (challenge) => proveExitKey(secret2, challenge),
    });
    clients.push(withHook);
    await withHook.connect();

    const without = new SignalingClient({
      url: server().url,
      WebSocket,
      hello: { role: 'exit', exitKey: newExitKey() },
    });
    clients.push(without);
    await expect(without.connect()).rejects.toMatchObject({
      code: 'not-allowed',
      message: expect.stringMatching(/exitSecretKey/),
    });
  });
});

describe('waiting for a relay', () => {
  it('matches a request when a relay joins within the wait', async () => {
    await start({ limits: { matchWaitMs: 2_000 } });
    const exitKey = newExitKey();
    await join({ role: 'exit', exitKey });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'w', mode: 'two-hop' });
    await client.sync(); // the request is waiting, and the connection still answers
    const relay = await join({ role: 'relay', capacity: 1 });
    const link = await relay.next('link');
    expect(await client.next('path')).toMatchObject({ requestId: 'w', linkId: link.linkId });
  });

  it('matches a waiting request when a full relay frees a slot', async () => {
    await start({ limits: { matchWaitMs: 2_000 } });
    await join({ role: 'exit', exitKey: newExitKey() });
    const relay = await join({ role: 'relay', capacity: 1 });
    const a = await join({ role: 'client' });
    const b = await join({ role: 'client' });
    a.send({ type: 'path-request', requestId: 'a', mode: 'two-hop' });
    const first = await a.next('path');
    await relay.next('link');
    b.send({ type: 'path-request', requestId: 'b', mode: 'two-hop' });
    await b.sync();
    expect(b.pending).toEqual([]);
    a.send({ type: 'link-closed', linkId: first.linkId });
    expect(await b.next('path')).toMatchObject({ requestId: 'b' });
  });

  it('answers no-relay-available once the wait is over, and bounds waiting requests', async () => {
    await start({ limits: { matchWaitMs: 150, maxLinksPerClient: 2 } });
    await join({ role: 'exit', exitKey: newExitKey() });
    const client = await join({ role: 'client' });
    const started = Date.now();
    client.send({ type: 'path-request', requestId: 'x', mode: 'two-hop' });
    client.send({ type: 'path-request', requestId: 'y', mode: 'two-hop' });
    // A third one beyond the client's share is refused at once.
    client.send({ type: 'path-request', requestId: 'z', mode: 'two-hop' });
    expect(await client.next('error')).toMatchObject({ code: 'no-relay-available', requestId: 'z' });
    expect(await client.next('error')).toMatchObject({ code: 'no-relay-available', requestId: 'x' });
    expect(await client.next('error')).toMatchObject({ code: 'no-relay-available', requestId: 'y' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  it('does not wait at all with a match wait of 0', async () => {
    await start({ limits: { matchWaitMs: 0 } });
    await join({ role: 'exit', exitKey: newExitKey() });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'n', mode: 'two-hop' });
    // Answered before the next message on the same connection is: nothing was left waiting.
    client.send({ type: 'link-closed', linkId: 'AAAAAAAAAAAAAAAAAAAAAA' });
    expect(await client.next('error')).toMatchObject({ code: 'no-relay-available', requestId: 'n' });
    expect(await client.next('error')).toMatchObject({ code: 'unknown-link' });
    const relay = await join({ role: 'relay', capacity: 1 });
    await relay.sync();
    expect(relay.pending).toEqual([]);
  });

  it('forgets the waiting requests of a client that leaves', async () => {
    await start({ limits: { matchWaitMs: 2_000 } });
    await join({ role: 'exit', exitKey: newExitKey() });
    const gone = await join({ role: 'client' });
    gone.send({ type: 'path-request', requestId: 'g', mode: 'two-hop' });
    await gone.sync();
    gone.close();
    await gone.closed;
    const other = await join({ role: 'client' });
    other.send({ type: 'path-request', requestId: 'o', mode: 'two-hop' });
    await other.sync();
    const relay = await join({ role: 'relay', capacity: 1 });
    // The only slot goes to the client still here, not to the one that left.
    expect(await other.next('path')).toMatchObject({ requestId: 'o' });
    expect((await relay.next('link')).peer.peerId).toBe(other.peerId);
  });
});

describe('idle timeout', () => {
  it('asks for heartbeats in welcome and drops a silent peer with timeout', async () => {
    await start({ limits: { idleTimeoutMs: 1_000 } });
    const p = await open();
    p.send({ type: 'hello', v: 1, role: 'relay', capacity: 1 });
    expect((await p.next('welcome')).heartbeatMs).toBe(333);
    expect((await p.next('error', 4_000)).code).toBe('timeout');
    expect((await p.closed).code).toBe(1008);
  });

  it('keeps a peer that sends heartbeats, and SignalingClient sends them by itself', async () => {
    await start({ limits: { idleTimeoutMs: 1_000 } });
    const raw = await join({ role: 'client' });
    const client = new SignalingClient({ url: server().url, WebSocket, hello: { role: 'client' } });
    clients.push(client);
    await client.connect();
    for (let i = 0; i < 16; i++) {
      raw.send({ type: 'heartbeat' });
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(raw.pending).toEqual([]);
    expect(client.connected).toBe(true);
  });
});

describe('liveness', () => {
  it('drops a peer that stops answering pings, and keeps one that answers', async () => {
    await start({ limits: { pingIntervalMs: 300 } });
    const deaf = await open({ autoPong: false });
    deaf.send({ type: 'hello', v: 1, role: 'relay', capacity: 1 });
    await deaf.next('welcome');
    const fine = await join({ role: 'client' });
    expect((await deaf.closed).code).toBe(1006);
    expect(fine.ws.readyState).toBe(WebSocket.OPEN);
  });
});

describe('connections per address', () => {
  it('turns away connections beyond the per-address cap, and lets them in again later', async () => {
    await start({ limits: { maxConnectionsPerAddress: 2 } });
    const a = await join({ role: 'client' });
    await join({ role: 'client' });
    const third = await open();
    expect(await third.next('error')).toMatchObject({ code: 'rate-limited' });
    expect((await third.closed).code).toBe(1013);
    a.close();
    await a.closed;
    // The server drops a connection from its count after the peer saw it close; wait until it has.
    await expect.poll(() => scrape(server(), 'underpass_signaling_connections'), { timeout: 5_000 }).toBe(1);
    await join({ role: 'client' });
  });
});

describe('connections per address behind a trusted reverse proxy (issue 12)', () => {
  const viaProxy = (client: string) => open({ headers: { 'x-forwarded-for': client } });

  it('counts each client the proxy names, not the proxy', async () => {
    await start({ limits: { maxConnectionsPerAddress: 2 }, trustedProxies: ['127.0.0.1/32'] });
    await viaProxy('198.51.100.1');
    await viaProxy('198.51.100.1');
    const third = await viaProxy('198.51.100.1');
    expect(await third.next('error')).toMatchObject({ code: 'rate-limited' });
    // Another client of the same proxy still gets in: before, the proxy's address was one cap for everyone.
    const second = await viaProxy('198.51.100.2');
    second.send({ type: 'hello', v: 1, role: 'client' });
    expect(await second.next('welcome')).toMatchObject({ type: 'welcome' });
  });

  it('believes no header from a peer it was not told to trust', async () => {
    await start({ limits: { maxConnectionsPerAddress: 2 } });
    await viaProxy('198.51.100.1');
    await viaProxy('198.51.100.2');
    const third = await viaProxy('198.51.100.3');
    expect(await third.next('error')).toMatchObject({ code: 'rate-limited' });
  });
});

describe('slow readers', () => {
  it('drops a peer that provokes error frames but does not read them', async () => {
    await start({
      limits: {
        maxBufferedBytes: 64 * 1024,
        maxErrors: 1_000_000,
        messagesPerSecond: 1e6,
        messageBurst: 1e6,
      },
    });
    const reader = await join({ role: 'client' });
    // Stop reading: the server's answers pile up in its socket buffer once the kernel's buffers are full.
    const socket = (reader.ws as unknown as { _socket: { pause(): void } })._socket;
    socket.pause();
    const other = await join({ role: 'client' });
    const rejected = async () => {
      const text = await (await fetch(server().url.replace('ws://', 'http://') + 'metrics')).text();
      return /underpass_signaling_rejections_total\{reason="slow-reader"\} 1/.test(text);
    };
    // Every junk frame earns an error frame (the error budget is out of reach); the sender is the reader.
    for (let round = 0; round < 200 && !(await rejected()); round++) {
      for (let i = 0; i < 2_000; i++) reader.send('x');
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await rejected()).toBe(true);
    await other.sync();
  });
});

describe('floods', () => {
  it('keeps memory bounded through 10,000 junk messages, and keeps serving', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await start({
      limits: { messagesPerSecond: 1_000_000, messageBurst: 1_000_000, maxErrors: 1_000_000 },
    });
    const exitKey = newExitKey();
    await join({ role: 'exit', exitKey });
    const good = await join({ role: 'client' });
    gc();
    const before = process.memoryUsage().heapUsed;
    const bad = await join({ role: 'relay', capacity: 5 });
    const junk = [
      `{"type":"signal","linkId":"AAAAAAAAAAAAAAAAAAAAAA","data":{"x":"${'y'.repeat(2000)}"}}`,
      `{"junk":"${'z'.repeat(2000)}"`,
      JSON.stringify({ type: 'path-request', requestId: 'r', mode: 'two-hop' }),
      JSON.stringify({ type: 'hello', v: 1, role: 'client' }),
      JSON.stringify([1, 2, 3]),
    ];
    let answered = 0;
    bad.ws.on('message', () => answered++);
    for (let i = 0; i < 10_000; i++) {
      bad.send(junk[i % junk.length]);
      // Let the socket drain now and then, as a real attacker's kernel would.
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + 10_000;
    while (answered < 10_000 && bad.ws.readyState === WebSocket.OPEN && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    gc();
    const growth = process.memoryUsage().heapUsed - before;
    // Every one was read and answered with a typed error, and the connection survived it.
    expect(answered).toBe(10_000);
    expect(bad.ws.readyState).toBe(WebSocket.OPEN);
    expect(growth).toBeLessThan(16 * 1024 * 1024);
    good.send({ type: 'path-request', requestId: 'ok', mode: 'direct', exitKey });
    expect(await good.next('path')).toMatchObject({ requestId: 'ok' });
  });
});
