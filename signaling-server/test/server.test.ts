import { describe, expect, it } from 'vitest';
import { systemClock } from '@underpass/shared/clock';
import { proveExitKey } from '@underpass/shared/signaling';
import { exitSecretOf, newExitKey, scrape, serverUnderTest } from './helpers.js';

const { server, start, join, open } = serverUnderTest();

describe('handshake', () => {
  it('welcomes a peer with a fresh unguessable id', async () => {
    await start();
    const a = await join({ role: 'client' });
    const b = await join({ role: 'client' });
    expect(a.peerId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(b.peerId).not.toBe(a.peerId);
  });

  it('refuses anything before hello, and closes', async () => {
    await start();
    const p = await open();
    p.send({ type: 'load', load: 1 });
    const err = await p.next('error');
    expect(err.code).toBe('not-allowed');
    expect((await p.closed).code).toBe(1008);
  });

  it('answers a wrong version with unsupported-version and closes', async () => {
    await start();
    const p = await open();
    p.send({ type: 'hello', v: 2, role: 'client', someFutureField: true });
    const err = await p.next('error');
    expect(err.code).toBe('unsupported-version');
    expect(err.message).toMatch(/upgrade/);
    await p.closed;
  });

  it('rejects an invalid hello (relay without capacity) as malformed', async () => {
    await start();
    const p = await open();
    p.send({ type: 'hello', v: 1, role: 'relay' });
    const err = await p.next('error');
    expect(err.code).toBe('malformed');
    expect(err.message).toMatch(/capacity/);
    await p.closed;
  });

  it('rejects an exit key that is not 32 bytes of base64url', async () => {
    await start();
    const p = await open();
    p.send({ type: 'hello', v: 1, role: 'exit', capacity: 5, exitKey: 'A'.repeat(42) + '=' });
    expect((await p.next('error')).code).toBe('malformed');
    await p.closed;
  });

  it('closes a connection that never says hello', async () => {
    await start({ limits: { handshakeTimeoutMs: 200 } });
    const p = await open();
    const err = await p.next('error');
    expect(err.code).toBe('timeout');
    expect((await p.closed).code).toBe(1008);
  });

  it('gives an exit key to a second exit that proves it: the first is told replaced and closed', async () => {
    const srv = await start();
    const key = newExitKey();
    const first = await join({ role: 'exit', exitKey: key, policy: 'first' });
    // Holding the key proves this is the key's owner now: the first registration is stale (a socket not yet
    // seen closed) or a second process with the same key, and must not keep the exit away.
    const second = await join({ role: 'exit', exitKey: key, policy: 'second' });
    expect(await first.next('error')).toMatchObject({ code: 'replaced' });
    expect(await first.closed).toMatchObject({ code: 1008, reason: 'replaced' });
    const res = await fetch(srv.url.replace('ws://', 'http://') + 'v1/exits');
    expect(await res.json()).toEqual({
      exits: [{ peerId: second.peerId, exitKey: key, policy: 'second', load: 0 }],
    });
    expect(await scrape(srv, 'underpass_signaling_exit_takeovers_total')).toBe(1);
    // The first one's socket close came after: the second keeps the key.
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'd', mode: 'direct', exitKey: key });
    expect(await client.next('path')).toMatchObject({ exit: { peerId: second.peerId, exitKey: key } });
  });

  it('refuses an exit whose proof fails for a key another exit holds, which keeps it', async () => {
    const srv = await start();
    const key = newExitKey();
    const holder = await join({ role: 'exit', exitKey: key });
    const p = await open();
    p.send({ type: 'hello', v: 1, role: 'exit', exitKey: key });
    const challenge = await p.next('challenge');
    // A proof made with another secret: a claim to the key without holding it.
    p.send({ type: 'prove', proof: proveExitKey(exitSecretOf(newExitKey()), challenge) });
    expect(await p.next('error')).toMatchObject({ code: 'not-allowed' });
    expect((await p.closed).code).toBe(1008);
    await holder.sync();
    expect(holder.pending).toEqual([]);
    const res = await fetch(srv.url.replace('ws://', 'http://') + 'v1/exits');
    expect(((await res.json()) as { exits: { peerId: string }[] }).exits.map((e) => e.peerId)).toEqual([
      holder.peerId,
    ]);
    expect(await scrape(srv, 'underpass_signaling_exit_takeovers_total')).toBe(0);
  });

  it('refuses a second hello without closing', async () => {
    await start();
    const a = await join({ role: 'client' });
    a.send({ type: 'hello', v: 1, role: 'client' });
    expect((await a.next('error')).code).toBe('not-allowed');
    await a.sync();
  });

  it('turns peers away with an error frame when full', async () => {
    await start({ limits: { maxPeers: 2 } });
    await join({ role: 'client' });
    await join({ role: 'client' });
    const p = await open();
    expect((await p.next('error')).code).toBe('rate-limited');
    expect((await p.closed).code).toBe(1013);
  });
});

describe('paths', () => {
  it('matches a two-hop path through the relay with the most free capacity', async () => {
    await start();
    const exitKey = newExitKey();
    const exit = await join({ role: 'exit', exitKey, capacity: 100, policy: 'web ports only' });
    const small = await join({ role: 'relay', capacity: 2 });
    const big = await join({ role: 'relay', capacity: 3 });
    const client = await join({ role: 'client' });

    client.send({ type: 'path-request', requestId: 'r1', mode: 'two-hop' });
    const link = await big.next('link');
    const path = await client.next('path');
    expect(path).toEqual({
      type: 'path',
      requestId: 'r1',
      linkId: link.linkId,
      hop: { peerId: big.peerId, role: 'relay' },
      exit: { peerId: exit.peerId, exitKey },
    });
    expect(link).toEqual({
      type: 'link',
      linkId: path.linkId,
      initiator: false,
      peer: { peerId: client.peerId, role: 'client' },
      exit: { peerId: exit.peerId, exitKey },
    });
    expect(path.linkId).toMatch(/^[A-Za-z0-9_-]{22}$/);

    // big: 2 free, small: 2 free → tie goes to the relay registered first.
    client.send({ type: 'path-request', requestId: 'r2', mode: 'two-hop' });
    expect((await client.next('path')).hop.peerId).toBe(small.peerId);
    await small.next('link');
    expect(exit.pending).toEqual([]);
  });

  it('never matches a relay at capacity, and says no-relay-available when all are full', async () => {
    await start();
    await join({ role: 'exit', exitKey: newExitKey() });
    const relay = await join({ role: 'relay', capacity: 1 });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'a', mode: 'two-hop' });
    expect((await client.next('path')).hop.peerId).toBe(relay.peerId);
    client.send({ type: 'path-request', requestId: 'b', mode: 'two-hop' });
    const err = await client.next('error');
    expect(err).toMatchObject({ code: 'no-relay-available', requestId: 'b' });
  });

  it('frees relay capacity when a link is closed', async () => {
    await start();
    await join({ role: 'exit', exitKey: newExitKey() });
    const relay = await join({ role: 'relay', capacity: 1 });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'a', mode: 'two-hop' });
    const path = await client.next('path');
    await relay.next('link');
    relay.send({ type: 'link-closed', linkId: path.linkId });
    expect(await client.next('link-closed')).toEqual({ type: 'link-closed', linkId: path.linkId });
    client.send({ type: 'path-request', requestId: 'b', mode: 'two-hop' });
    expect((await client.next('path')).hop.peerId).toBe(relay.peerId);
  });

  it('matches a direct path to the exit itself, by key or least loaded', async () => {
    await start();
    const keyA = newExitKey();
    const keyB = newExitKey();
    const exitA = await join({ role: 'exit', exitKey: keyA });
    const exitB = await join({ role: 'exit', exitKey: keyB });
    exitA.send({ type: 'load', load: 10 });
    await exitA.sync();
    const client = await join({ role: 'client' });

    client.send({ type: 'path-request', requestId: 'x', mode: 'direct' });
    const path = await client.next('path');
    expect(path.hop).toEqual({ peerId: exitB.peerId, role: 'exit' });
    expect(path.exit).toEqual({ peerId: exitB.peerId, exitKey: keyB });
    expect(await exitB.next('link')).toMatchObject({
      linkId: path.linkId,
      initiator: false,
      peer: { peerId: client.peerId, role: 'client' },
    });

    client.send({ type: 'path-request', requestId: 'y', mode: 'direct', exitKey: keyA });
    const byKey = await client.next('path');
    expect(byKey.hop).toEqual({ peerId: exitA.peerId, role: 'exit' });
  });

  it('says no-exit-available and unknown-exit', async () => {
    await start();
    await join({ role: 'relay', capacity: 5 });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'n', mode: 'two-hop' });
    expect(await client.next('error')).toMatchObject({ code: 'no-exit-available', requestId: 'n' });
    await join({ role: 'exit', exitKey: newExitKey() });
    client.send({ type: 'path-request', requestId: 'u', mode: 'direct', exitKey: newExitKey() });
    expect(await client.next('error')).toMatchObject({ code: 'unknown-exit', requestId: 'u' });
  });

  it('limits the links one client may hold', async () => {
    await start({ limits: { maxLinksPerClient: 2 } });
    await join({ role: 'exit', exitKey: newExitKey() });
    const client = await join({ role: 'client' });
    for (const id of ['1', '2']) {
      client.send({ type: 'path-request', requestId: id, mode: 'direct' });
      await client.next('path');
    }
    client.send({ type: 'path-request', requestId: '3', mode: 'direct' });
    expect(await client.next('error')).toMatchObject({ code: 'rate-limited', requestId: '3' });
  });

  it('lets only clients request paths and only relays connect to exits', async () => {
    await start();
    const exitKey = newExitKey();
    const exit = await join({ role: 'exit', exitKey });
    const client = await join({ role: 'client' });
    exit.send({ type: 'path-request', requestId: 'p', mode: 'direct' });
    expect(await exit.next('error')).toMatchObject({ code: 'not-allowed', requestId: 'p' });
    client.send({ type: 'connect-exit', requestId: 'c', exitKey });
    expect(await client.next('error')).toMatchObject({ code: 'not-allowed', requestId: 'c' });
    client.send({ type: 'load', load: 3 });
    expect((await client.next('error')).code).toBe('not-allowed');
  });
});

describe('connect-exit', () => {
  it('links a relay to an exit, the relay initiating', async () => {
    await start();
    const exitKey = newExitKey();
    const exit = await join({ role: 'exit', exitKey });
    const relay = await join({ role: 'relay', capacity: 4 });
    relay.send({ type: 'connect-exit', requestId: 'ce', exitKey });
    const toExit = await exit.next('link');
    expect(toExit).toEqual({
      type: 'link',
      linkId: toExit.linkId,
      initiator: false,
      peer: { peerId: relay.peerId, role: 'relay' },
    });
    expect(await relay.next('link')).toEqual({
      type: 'link',
      linkId: toExit.linkId,
      requestId: 'ce',
      initiator: true,
      peer: { peerId: exit.peerId, role: 'exit' },
      exit: { peerId: exit.peerId, exitKey },
    });
    relay.send({ type: 'connect-exit', requestId: 'bad', exitKey: newExitKey() });
    expect(await relay.next('error')).toMatchObject({ code: 'unknown-exit', requestId: 'bad' });
  });
});

describe('signal routing', () => {
  it('forwards signals between the two members of a link only', async () => {
    await start();
    const exitKey = newExitKey();
    await join({ role: 'exit', exitKey });
    const relay = await join({ role: 'relay', capacity: 4 });
    const client = await join({ role: 'client' });
    const intruder = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'r', mode: 'two-hop' });
    const { linkId } = await client.next('path');
    await relay.next('link');

    const offer = { type: 'offer', sdp: 'v=0\r\n...' };
    client.send({ type: 'signal', linkId, data: offer });
    expect(await relay.next('signal')).toEqual({ type: 'signal', linkId, data: offer });
    const candidate = { candidate: { candidate: 'candidate:1 1 udp 1 x.local 5000 typ host', sdpMid: '0' } };
    relay.send({ type: 'signal', linkId, data: candidate });
    expect(await client.next('signal')).toEqual({ type: 'signal', linkId, data: candidate });

    intruder.send({ type: 'signal', linkId, data: { type: 'offer', sdp: 'evil' } });
    expect((await intruder.next('error')).code).toBe('unknown-link');
    intruder.send({ type: 'link-closed', linkId });
    expect((await intruder.next('error')).code).toBe('unknown-link');
    await relay.sync();
    await client.sync();
    expect(relay.pending).toEqual([]);
    expect(client.pending).toEqual([]);
  });

  it('rejects signal data larger than 16 KiB and data that is not an object', async () => {
    await start();
    await join({ role: 'exit', exitKey: newExitKey() });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'r', mode: 'direct' });
    const { linkId } = await client.next('path');
    client.send({ type: 'signal', linkId, data: { sdp: 'x'.repeat(17 * 1024) } });
    expect((await client.next('error')).code).toBe('malformed');
    client.send({ type: 'signal', linkId, data: ['not', 'an', 'object'] });
    expect((await client.next('error')).code).toBe('malformed');
  });

  it('closes a departed peer’s links and tells the other members', async () => {
    await start();
    const exitKey = newExitKey();
    const exit = await join({ role: 'exit', exitKey });
    const relay = await join({ role: 'relay', capacity: 1 });
    const client = await join({ role: 'client' });
    client.send({ type: 'path-request', requestId: 'r', mode: 'two-hop' });
    const { linkId } = await client.next('path');
    await relay.next('link');
    relay.send({ type: 'connect-exit', requestId: 'e', exitKey });
    const exitLink = await relay.next('link');
    await exit.next('link');

    relay.close();
    expect(await client.next('link-closed')).toEqual({ type: 'link-closed', linkId });
    expect(await exit.next('link-closed')).toEqual({ type: 'link-closed', linkId: exitLink.linkId });

    // The relay's slot is gone with it: nothing to match any more.
    client.send({ type: 'path-request', requestId: 'again', mode: 'two-hop' });
    expect(await client.next('error')).toMatchObject({ code: 'no-relay-available' });
    client.send({ type: 'signal', linkId, data: { type: 'offer' } });
    expect((await client.next('error')).code).toBe('unknown-link');
  });
});

describe('hostile input', () => {
  it('answers junk with typed errors and keeps serving', async () => {
    await start();
    const p = await join({ role: 'client' });
    p.send('this is not json');
    expect(await p.next('error')).toMatchObject({ code: 'malformed' });
    p.send('[1,2,3]');
    expect((await p.next('error')).code).toBe('malformed');
    p.send({ type: 'teleport', requestId: 'q' });
    expect(await p.next('error')).toMatchObject({ code: 'malformed', requestId: 'q' });
    p.send({ type: 'path-request', requestId: 'x'.repeat(65), mode: 'direct' });
    expect((await p.next('error')).code).toBe('malformed');
    p.send({ type: 'load', load: -1 });
    expect((await p.next('error')).code).toBe('malformed');
    p.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    expect(await p.next('error')).toMatchObject({
      code: 'malformed',
      message: expect.stringMatching(/binary/),
    });
    p.send(
      JSON.stringify({
        type: 'signal',
        linkId: 'AAAAAAAAAAAAAAAAAAAAAA',
        data: { pad: 'x'.repeat(70 * 1024) },
      }),
    );
    expect((await p.next('error')).code).toBe('too-large');
    await p.sync();
    expect(p.ws.readyState).toBe(p.ws.OPEN);
  });

  it('closes a junk-flooding connection while another client keeps working', async () => {
    await start();
    const exitKey = newExitKey();
    await join({ role: 'exit', exitKey });
    const good = await join({ role: 'client' });
    const bad = await join({ role: 'relay', capacity: 5 });
    for (let i = 0; i < 200; i++) bad.send(`{"junk":${i}`);
    const { code } = await bad.closed;
    expect(code).toBe(1008);
    const errors = bad.pending.filter((m) => m.type === 'error');
    expect(errors.length).toBeGreaterThanOrEqual(20);
    good.send({ type: 'path-request', requestId: 'still', mode: 'direct', exitKey });
    expect(await good.next('path')).toMatchObject({ requestId: 'still' });
    // The closed relay is gone from the registry, not left behind to be matched.
    good.send({ type: 'path-request', requestId: 'relay', mode: 'two-hop' });
    expect(await good.next('error')).toMatchObject({ code: 'no-relay-available', requestId: 'relay' });
  });

  it('rate-limits a connection that sends too fast', async () => {
    // Time stands still for the bucket: it never refills.
    const clock = { ...systemClock, now: () => 0 };
    await start({ limits: { messagesPerSecond: 1, messageBurst: 5, maxErrors: 1000 }, clock });
    const p = await join({ role: 'client' });
    for (let i = 0; i < 8; i++) p.send({ type: 'link-closed', linkId: 'AAAAAAAAAAAAAAAAAAAAAA' });
    const codes: string[] = [];
    for (let i = 0; i < 8; i++) {
      const m = await p.next('error');
      codes.push(m.code);
    }
    // hello took one token: 4 more pass, the rest are refused.
    expect(codes.filter((c) => c === 'unknown-link')).toHaveLength(4);
    expect(codes.filter((c) => c === 'rate-limited')).toHaveLength(4);
  });

  it('cuts a frame far beyond the message limit without reading it', async () => {
    await start();
    const p = await join({ role: 'client' });
    p.send('x'.repeat(1024 * 1024));
    expect((await p.closed).code).toBe(1009);
  });
});

describe('http', () => {
  it('answers /healthz, /v1/exits and 404', async () => {
    await start();
    const base = server().url.replace('ws://', 'http://');
    const health = await fetch(new URL('/healthz', base));
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ ok: true });

    const key = newExitKey();
    const exit = await join({ role: 'exit', exitKey: key, capacity: 50, policy: 'tcp 80,443' });
    exit.send({ type: 'load', load: 7 });
    await exit.sync();
    await join({ role: 'relay', capacity: 3 });
    const exits = await fetch(new URL('/v1/exits', base));
    expect(exits.status).toBe(200);
    expect(await exits.json()).toEqual({
      exits: [{ peerId: exit.peerId, exitKey: key, policy: 'tcp 80,443', load: 7 }],
    });

    for (const path of ['/', '/v1/exits/x', '/metricsx'])
      expect((await fetch(new URL(path, base))).status).toBe(404);
    expect((await fetch(new URL('/healthz', base), { method: 'POST' })).status).toBe(404);
  });
});

describe('shutdown', () => {
  it('tells every peer shutting-down and closes', async () => {
    await start();
    const a = await join({ role: 'client' });
    const b = await join({ role: 'relay', capacity: 1 });
    await server().close();
    expect((await a.next('error')).code).toBe('shutting-down');
    expect((await b.next('error')).code).toBe('shutting-down');
    expect((await a.closed).code).toBe(1001);
  });
});
