/**
 * Resumed links over real sockets: a server restarted on its port, whose peers come back with new ids and
 * claim the links an earlier server made; and two instances sharing a real redis-server, the members of one
 * link back on different instances, or one instance killed (SIGKILL) while the other keeps a member.
 */
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../bench/lib/redis-server.js';
import type { SignalingServer } from '../src/server.js';
import { RawPeer, newExitKey, scrape, startTestServer, spawnInstance } from './helpers.js';

let redis: RedisServer;
let prefixes = 0;
const servers: SignalingServer[] = [];
const peers: RawPeer[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});
afterEach(async () => {
  for (const p of peers.splice(0)) p.close();
  for (const s of servers.splice(0)) await s.close();
});

async function join(url: string, hello: Record<string, unknown>): Promise<RawPeer> {
  const peer = await RawPeer.join(url, hello);
  peers.push(peer);
  return peer;
}

/** Polls `check` until it holds (every 20 ms, at most `ms`). */
async function until(what: string, check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const paired = (server: SignalingServer) =>
  scrape(server, 'underpass_signaling_link_claims_total{outcome="paired"}');

describe('resumed links over real sockets', () => {
  it('after a restart, a relay that leaves is told to its client again, through a link the old server made', async () => {
    let server = await startTestServer();
    servers.push(server);
    const exitKey = newExitKey();
    await join(server.url, { role: 'exit', exitKey });
    let relay = await join(server.url, { role: 'relay', capacity: 2 });
    let client = await join(server.url, { role: 'client' });
    client.send({ type: 'path-request', requestId: 'p', mode: 'two-hop' });
    const path = await client.next('path');
    await relay.next('link');

    // The server restarts on its port; everyone comes back with a new peer id and claims the link.
    const port = Number(new URL(server.url).port);
    await server.close();
    servers.splice(0);
    server = await startTestServer({ port });
    servers.push(server);
    for (const p of peers.splice(0)) p.close();
    await join(server.url, { role: 'exit', exitKey });
    relay = await join(server.url, { role: 'relay', capacity: 2 });
    client = await join(server.url, { role: 'client' });
    relay.send({ type: 'load', load: 1 });
    relay.send({ type: 'link-resume', linkIds: [path.linkId] });
    await relay.sync();
    client.send({ type: 'link-resume', linkIds: [path.linkId] });
    await client.sync();
    expect(await paired(server)).toBe(1);

    client.send({ type: 'signal', linkId: path.linkId, data: { renegotiate: true } });
    expect(await relay.next('signal')).toEqual({
      type: 'signal',
      linkId: path.linkId,
      data: { renegotiate: true },
    });
    relay.close();
    expect(await client.next('link-closed')).toEqual({ type: 'link-closed', linkId: path.linkId });
  });

  it('refuses a malformed claim with a counted malformed error', async () => {
    const server = await startTestServer();
    servers.push(server);
    const relay = await join(server.url, { role: 'relay', capacity: 2 });
    relay.send({ type: 'link-resume', linkIds: ['../../etc'] });
    expect(await relay.next('error')).toMatchObject({ code: 'malformed' });
    relay.send({
      type: 'link-resume',
      linkIds: Array.from({ length: 257 }, (_, i) => `x${i}`.padEnd(22, 'x')),
    });
    expect(await relay.next('error')).toMatchObject({ code: 'malformed' });
  });
});

describe('resumed links with two instances sharing Redis', () => {
  async function twoInstances(): Promise<[SignalingServer, SignalingServer, string]> {
    const prefix = `resume${++prefixes}:`;
    const a = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 } });
    servers.push(a);
    const b = await startTestServer({ redis: { url: redis.url, prefix, expiryMs: 1_000 } });
    servers.push(b);
    return [a, b, prefix];
  }

  it('pairs a link whose members came back to different instances, once, however the claims race', async () => {
    const [a, b, prefix] = await twoInstances();
    const exit = await join(a.url, { role: 'exit', exitKey: newExitKey() });
    const relay = await join(b.url, { role: 'relay', capacity: 20 });
    const linkIds = Array.from({ length: 20 }, (_, i) => `earlier${i}`.padEnd(22, 'z'));
    // Both claim every link at once, through different instances: each link is registered exactly once.
    exit.send({ type: 'link-resume', linkIds });
    relay.send({ type: 'link-resume', linkIds });
    await Promise.all([exit.sync(), relay.sync()]);
    const admin = new Redis(redis.url);
    try {
      for (const linkId of linkIds)
        expect(await admin.hgetall(`${prefix}link:${linkId}`)).toEqual({ i: relay.peerId, h: exit.peerId });
      expect(await admin.hget(`${prefix}peer:${exit.peerId}`, 'asg')).toBe('20');
      expect(await admin.hget(`${prefix}peer:${relay.peerId}`, 'own')).toBe('20');
    } finally {
      await admin.quit();
    }
    expect(((await paired(a)) ?? 0) + ((await paired(b)) ?? 0)).toBe(20);
    // Signals and link-closed cross instances on a resumed link as on a made one.
    const [first] = linkIds;
    relay.send({ type: 'signal', linkId: first, data: { hello: 'exit' } });
    await until('the signal on A', async () => exit.pending.some((m) => m.type === 'signal'));
    exit.close();
    await until('link-closed on B', async () => relay.pending.some((m) => m.type === 'link-closed'));
  });

  it('an instance killed under one member: the link passes to its claim, the other member stays', async () => {
    const [a, , prefix] = await twoInstances();
    const { child, url } = await spawnInstance(redis.url, prefix);
    try {
      // The client is on the instance that will die; the relay stays on A throughout.
      await join(a.url, { role: 'exit', exitKey: newExitKey() });
      const relay = await join(a.url, { role: 'relay', capacity: 2 });
      const client = await RawPeer.join(url, { role: 'client' });
      peers.push(client);
      client.send({ type: 'path-request', requestId: 'p', mode: 'two-hop' });
      const path = await client.next('path');
      await relay.next('link');

      child.kill('SIGKILL');
      // The client is back on A at once, long before the dead instance is reaped: its claim waits.
      const client2 = await join(a.url, { role: 'client' });
      client2.send({ type: 'link-resume', linkIds: [path.linkId] });
      await client2.sync();
      const admin = new Redis(redis.url);
      try {
        await until(
          'the link handed to the new client',
          async () => (await admin.hget(`${prefix}link:${path.linkId}`, 'i')) === client2.peerId,
        );
        expect(await admin.hget(`${prefix}link:${path.linkId}`, 'h')).toBe(relay.peerId);
      } finally {
        await admin.quit();
      }
      // Nobody was told anything; and now the relay's loss is told to the client's new socket.
      expect(relay.pending).toEqual([]);
      expect(client2.pending).toEqual([]);
      relay.close();
      expect(await client2.next('link-closed')).toEqual({ type: 'link-closed', linkId: path.linkId });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
