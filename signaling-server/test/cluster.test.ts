/**
 * Several instances serving one network through a real redis-server: matching across instances, signals
 * and link-closed crossing over pub/sub, waiting requests woken by another instance, a real WebRTC link
 * between a client on A and a relay on B, and the peers of a killed instance expiring.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { WebSocket } from 'ws';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { startRedisServer, type RedisServer } from '../../bench/lib/redis-server.js';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import type { LinkMessage } from '@underpass/shared/signaling';
import { RedisRegistry } from '../src/redis-registry.js';
import type { SignalingServer } from '../src/server.js';
import { RawPeer, exitSecretOf, newExitKey, startTestServer, spawnInstance } from './helpers.js';

let redis: RedisServer;
let prefixes = 0;
const servers: SignalingServer[] = [];
const peers: RawPeer[] = [];
const clients: SignalingClient[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const c of clients.splice(0)) c.close();
  for (const s of servers.splice(0)) await s.close();
});

/** Two instances of one fresh network. */
async function twoInstances(
  limits: Record<string, number> = {},
): Promise<[SignalingServer, SignalingServer]> {
  const prefix = `c${++prefixes}:`;
  const a = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 }, limits });
  servers.push(a);
  const b = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 }, limits });
  servers.push(b);
  return [a, b];
}
async function join(server: SignalingServer, hello: Record<string, unknown>): Promise<RawPeer> {
  const peer = await RawPeer.join(server.url, hello);
  peers.push(peer);
  return peer;
}
/** simple-peer throws on signal() once destroyed; a trailing candidate may come that late. */
function signalUnlessDestroyed(peer: { signal(data: unknown): void }, data: unknown): void {
  try {
    peer.signal(data);
  } catch {
    // destroyed: nothing to do
  }
}
const http = (server: SignalingServer, path: string) => server.url.replace('ws://', 'http://') + path;

describe('two instances sharing Redis', () => {
  it('matches a client on A with a relay on B, and carries signals and link-closed across', async () => {
    const [a, b] = await twoInstances();
    const exitKey = newExitKey();
    const exit = await join(a, { role: 'exit', exitKey, policy: 'web' });
    const relay = await join(b, { role: 'relay', capacity: 2 });
    const client = await join(a, { role: 'client' });
    expect(relay.peerId).not.toBe(client.peerId);

    client.send({ type: 'path-request', requestId: 'x', mode: 'two-hop' });
    const link = await relay.next('link');
    expect(link).toMatchObject({ peer: { peerId: client.peerId, role: 'client' }, exit: { exitKey } });
    const path = await client.next('path');
    expect(path).toMatchObject({ linkId: link.linkId, hop: { peerId: relay.peerId, role: 'relay' } });

    client.send({ type: 'signal', linkId: path.linkId, data: { type: 'offer', sdp: 'o' } });
    expect(await relay.next('signal')).toEqual({
      type: 'signal',
      linkId: path.linkId,
      data: { type: 'offer', sdp: 'o' },
    });
    relay.send({ type: 'signal', linkId: path.linkId, data: { type: 'answer', sdp: 'a' } });
    expect((await client.next('signal')).data).toEqual({ type: 'answer', sdp: 'a' });

    // The relay on B links to the exit on A.
    relay.send({ type: 'connect-exit', requestId: 'e', exitKey });
    expect(await relay.next('link')).toMatchObject({ requestId: 'e', initiator: true });
    expect(await exit.next('link')).toMatchObject({ peer: { peerId: relay.peerId, role: 'relay' } });

    // Both instances list the exit; B's metrics count B's peers only.
    for (const server of [a, b]) {
      const exits = (await (await fetch(http(server, 'v1/exits'))).json()) as { exits: unknown[] };
      expect(exits.exits).toEqual([{ peerId: exit.peerId, exitKey, policy: 'web', load: 0 }]);
    }

    client.send({ type: 'link-closed', linkId: path.linkId });
    expect(await relay.next('link-closed')).toEqual({ type: 'link-closed', linkId: path.linkId });
    // A peer of A cannot signal on a link between peers of B and A it does not belong to.
    const intruder = await join(a, { role: 'client' });
    intruder.send({ type: 'signal', linkId: link.linkId, data: {} });
    expect((await intruder.next('error')).code).toBe('unknown-link');
  });

  it('wakes a request waiting on A when a relay joins B, and spreads load over relays everywhere', async () => {
    const [a, b] = await twoInstances({ matchWaitMs: 3_000 });
    await join(a, { role: 'exit', exitKey: newExitKey() });
    const client = await join(a, { role: 'client' });
    client.send({ type: 'path-request', requestId: 'w', mode: 'two-hop' });
    await client.sync();
    const relay = await join(b, { role: 'relay', capacity: 1 });
    expect(await client.next('path')).toMatchObject({ requestId: 'w', hop: { peerId: relay.peerId } });
    // B's relay is now full; the next request waits until the link on A closes… then B's slot is free again.
    const other = await join(b, { role: 'client' });
    other.send({ type: 'path-request', requestId: 'v', mode: 'two-hop' });
    await other.sync();
    expect(other.pending).toEqual([]);
    const first = await relay.next('link');
    client.send({ type: 'link-closed', linkId: first.linkId });
    expect(await other.next('path')).toMatchObject({ requestId: 'v', hop: { peerId: relay.peerId } });
  });

  it('brings up a real WebRTC link between a client on A and a relay on B', async () => {
    const [a, b] = await twoInstances();
    const WS = WebSocket as unknown as WebSocketConstructorLike;
    const exitKey = newExitKey();
    const exit = new SignalingClient({
      url: a.url,
      WebSocket: WS,
      hello: { role: 'exit', exitKey },
      exitSecretKey: exitSecretOf(exitKey),
    });
    const relay = new SignalingClient({ url: b.url, WebSocket: WS, hello: { role: 'relay', capacity: 4 } });
    const client = new SignalingClient({ url: a.url, WebSocket: WS, hello: { role: 'client' } });
    clients.push(exit, relay, client);
    await Promise.all([exit.connect(), relay.connect(), client.connect()]);

    const createPeer = nodePeerFactory();
    const made: ReturnType<typeof createPeer>[] = [];
    const relayGot = new Promise<string>((resolve, reject) => {
      relay.on('link', (offer: LinkMessage) => {
        const peer = createPeer({ initiator: false });
        made.push(peer);
        peer.on('signal', (data) => relay.signal(offer.linkId, data as Record<string, unknown>));
        relay.on('signal', (linkId, data) => {
          if (linkId === offer.linkId) signalUnlessDestroyed(peer, data);
        });
        peer.on('data', (data) => {
          resolve(Buffer.from(data).toString());
          peer.send(new TextEncoder().encode('pong'));
        });
        peer.on('error', reject);
      });
    });
    const path = await client.requestPath({ mode: 'two-hop' });
    const peer = createPeer({ initiator: true });
    made.push(peer);
    peer.on('signal', (data) => client.signal(path.linkId, data as Record<string, unknown>));
    client.on('signal', (linkId, data) => {
      if (linkId === path.linkId) signalUnlessDestroyed(peer, data);
    });
    const clientGot = new Promise<string>((resolve, reject) => {
      peer.on('data', (data) => resolve(Buffer.from(data).toString()));
      peer.on('error', reject);
    });
    await new Promise<void>((resolve) => peer.on('connect', resolve));
    peer.send(new TextEncoder().encode('ping'));
    expect(await relayGot).toBe('ping');
    expect(await clientGot).toBe('pong');
    // Signaling first, so no trailing candidate reaches a destroyed peer.
    for (const c of [exit, relay, client]) c.close();
    for (const p of made) p.destroy();
  });

  it('removes the peers of an instance that dies, within the expiry', async () => {
    const prefix = `c${++prefixes}:`;
    const a = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 } });
    servers.push(a);
    const { child, url } = await spawnInstance(redis.url, prefix);
    try {
      const exitKey = newExitKey();
      const exit = await RawPeer.join(url, { role: 'exit', exitKey });
      peers.push(exit);
      const client = await join(a, { role: 'client' });
      client.send({ type: 'path-request', requestId: 'd', mode: 'direct' });
      const path = await client.next('path');
      let exits = (await (await fetch(http(a, 'v1/exits'))).json()) as { exits: unknown[] };
      expect(exits.exits).toHaveLength(1);

      child.kill('SIGKILL');
      // The dead instance's exit is gone from the directory within the expiry (1 s) plus one heartbeat
      // period of A (1/3 s); the 5 s bound leaves slack for a loaded machine.
      const deadline = Date.now() + 5_000;
      while (exits.exits.length > 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        exits = (await (await fetch(http(a, 'v1/exits'))).json()) as { exits: unknown[] };
      }
      expect(exits.exits).toEqual([]);
      // Its link with the client is forgotten, but the client is not told: an instance dying says nothing
      // about the exit, whose WebRTC link with the client does not need any signaling server.
      await client.sync();
      const admin = new Redis(redis.url);
      try {
        expect(await admin.exists(`${prefix}link:${path.linkId}`)).toBe(0);
      } finally {
        await admin.quit();
      }
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('takes a killed instance for dead once a message to its peers reaches nobody, long before its expiry', async () => {
    const prefix = `c${++prefixes}:`;
    const a = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 60_000 } });
    servers.push(a);
    const { child, url } = await spawnInstance(redis.url, prefix, { expiryMs: 60_000 });
    const admin = new Redis(redis.url);
    try {
      await join(a, { role: 'exit', exitKey: newExitKey() });
      const relay = await RawPeer.join(url, { role: 'relay', capacity: 2 });
      peers.push(relay);
      const dead = relay.peerId.slice(0, 11);
      child.kill('SIGKILL');
      await relay.closed;
      // Its liveness key has a minute to live: until then its relay is a ghost the broker still hands out.
      expect(await admin.exists(`${prefix}instance:${dead}`)).toBe(1);
      const client = await join(a, { role: 'client' });
      client.send({ type: 'path-request', requestId: 'g', mode: 'two-hop' });
      const path = await client.next('path');
      expect(path.hop).toEqual({ peerId: relay.peerId, role: 'relay' });

      // The link offer forwarded to the ghost reached no one: a second later its instance is reaped.
      await expect
        .poll(() => admin.sismember(`${prefix}instances`, dead), { timeout: 5_000, interval: 50 })
        .toBe(0);
      expect(await admin.exists(`${prefix}instance:${dead}`)).toBe(0);
      expect(await admin.exists(`${prefix}peer:${relay.peerId}`)).toBe(0);
      // A's own liveness is untouched: it hears its messages.
      expect(await admin.exists(`${prefix}instance:${client.peerId.slice(0, 11)}`)).toBe(1);
    } finally {
      child.kill('SIGKILL');
      await admin.quit();
    }
  });

  it('lets an exit of a killed instance take its key back at once on another, listed once, ghost-free after reaping', async () => {
    const prefix = `c${++prefixes}:`;
    const b = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 } });
    servers.push(b);
    // A long expiry: the killed instance stays unreaped (its key alive) for the whole takeover.
    const { child, url } = await spawnInstance(redis.url, prefix, { expiryMs: 60_000 });
    const admin = new Redis(redis.url);
    try {
      const exitKey = newExitKey();
      const old = await RawPeer.join(url, { role: 'exit', exitKey, policy: 'web' });
      peers.push(old);
      const relay = await join(b, { role: 'relay', capacity: 2 });
      relay.send({ type: 'connect-exit', requestId: 'e', exitKey });
      const link = await relay.next('link');
      child.kill('SIGKILL');
      await old.closed;
      const dead = old.peerId.slice(0, 11);

      // The same exit, reconnecting to B: let in at once, though the dead instance is not reaped yet.
      const fresh = await join(b, { role: 'exit', exitKey, policy: 'web' });
      expect(await admin.exists(`${prefix}instance:${dead}`)).toBe(1);
      const listed = async () =>
        ((await (await fetch(http(b, 'v1/exits'))).json()) as { exits: { peerId: string }[] }).exits.map(
          (e) => e.peerId,
        );
      expect(await listed()).toEqual([fresh.peerId]);
      // The relay's WebRTC link to the exit is up: nobody says link-closed, the new socket claims it back.
      fresh.send({ type: 'link-resume', linkIds: [link.linkId] });
      await fresh.sync();
      await relay.sync();
      // The relay's side waited for that claim: the link is known again, with the exit's new peer id.
      expect(await admin.hgetall(`${prefix}link:${link.linkId}`)).toEqual({
        i: relay.peerId,
        h: fresh.peerId,
      });

      // The dead instance is reaped now (as B does once its key expires): the new registration stays.
      await admin.del(`${prefix}instance:${dead}`);
      await expect
        .poll(() => admin.sismember(`${prefix}instances`, dead), { timeout: 5_000, interval: 50 })
        .toBe(0);
      expect(await listed()).toEqual([fresh.peerId]);
      expect(await admin.hget(`${prefix}exitkeys`, exitKey)).toBe(fresh.peerId);
      await fresh.sync();
      expect(fresh.pending).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await admin.quit();
    }
  });

  it('tells an exit on another live instance that it was replaced, and closes it there', async () => {
    const [a, b] = await twoInstances();
    const exitKey = newExitKey();
    const first = await join(a, { role: 'exit', exitKey });
    const second = await join(b, { role: 'exit', exitKey });
    expect(await first.next('error')).toMatchObject({ code: 'replaced' });
    expect(await first.closed).toMatchObject({ code: 1008, reason: 'replaced' });
    const exits = (await (await fetch(http(a, 'v1/exits'))).json()) as { exits: { peerId: string }[] };
    expect(exits.exits.map((e) => e.peerId)).toEqual([second.peerId]);
    await second.sync();
    expect(second.pending).toEqual([]);
  });

  it('removes its leftover peers on shutdown when their own removal failed or hung', async () => {
    const prefix = `c${++prefixes}:`;
    const a = await startTestServer({
      redis: { url: redis.url, prefix, expiryMs: 1_000 },
      limits: { shutdownGraceMs: 200 },
    });
    const b = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 } });
    servers.push(b);
    const exitKey = newExitKey();
    await join(a, { role: 'exit', exitKey });
    await join(a, { role: 'relay', capacity: 3 });
    const client = await join(a, { role: 'client' });
    const onB = await join(b, { role: 'client' });
    onB.send({ type: 'path-request', requestId: 'd', mode: 'two-hop' });
    const path = await onB.next('path');
    expect(path.hop.peerId).not.toBe(client.peerId);
    // The first removal fails (as on a Redis error), the second never finishes; the third goes through.
    const removePeer = vi.spyOn(RedisRegistry.prototype, 'removePeer');
    removePeer
      .mockImplementationOnce(() => Promise.reject(new Error('injected failure')))
      .mockImplementationOnce(() => new Promise(() => {}));
    try {
      await a.close();
    } finally {
      removePeer.mockRestore();
    }
    // A left no trace in Redis; B's client is not told its link to A's relay closed (A going away says nothing
    // of the relay, and their WebRTC link does not need A): sync() fails on any frame before its answer.
    await onB.sync();
    const admin = new Redis(redis.url);
    try {
      const keys = await admin.keys(`${prefix}*`);
      const left = keys.filter(
        (k) => /:(peer|instpeers|instance):/.test(k) && !k.includes(onB.peerId.slice(0, 11)),
      );
      expect(left).toEqual([]);
      expect(await admin.hlen(`${prefix}exitkeys`)).toBe(0);
      expect(await admin.zcard(`${prefix}relays`)).toBe(0);
      expect(await admin.zcard(`${prefix}exits`)).toBe(0);
      expect(await admin.scard(`${prefix}instances`)).toBe(1);
    } finally {
      await admin.quit();
    }
    const exits = (await (await fetch(http(b, 'v1/exits'))).json()) as { exits: unknown[] };
    expect(exits.exits).toEqual([]);
  });

  it('stays listed for reaping, liveness key gone, when it cannot remove its leftover peers', async () => {
    const prefix = `c${++prefixes}:`;
    const a = await startTestServer({
      redis: { url: redis.url, prefix, expiryMs: 1_000 },
      limits: { shutdownGraceMs: 200 },
    });
    await join(a, { role: 'exit', exitKey: newExitKey() });
    const b = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 } });
    servers.push(b);
    const removePeer = vi
      .spyOn(RedisRegistry.prototype, 'removePeer')
      .mockImplementation(() => Promise.reject(new Error('injected failure')));
    try {
      await a.close();
    } finally {
      removePeer.mockRestore();
    }
    // B reaps A as a dead instance on its next heartbeat (every expiry / 3).
    const exits = async () =>
      ((await (await fetch(http(b, 'v1/exits'))).json()) as { exits: unknown[] }).exits;
    await expect.poll(exits, { timeout: 5_000, interval: 100 }).toEqual([]);
  });

  it('drops its peers (to reconnect) when the others took it for dead and reaped it', async () => {
    const prefix = `c${++prefixes}:`;
    const a = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 } });
    servers.push(a);
    const client = await join(a, { role: 'client' });
    // What another instance does to an instance whose key expired.
    const admin = new Redis(redis.url);
    try {
      const [instance] = await admin.smembers(`${prefix}instances`);
      await admin.del(`${prefix}instance:${instance}`);
      await admin.srem(`${prefix}instances`, instance!);
    } finally {
      await admin.quit();
    }
    expect(await client.next('error', 3_000)).toMatchObject({ code: 'unavailable' });
    expect((await client.closed).code).toBe(1013);
  });
});
