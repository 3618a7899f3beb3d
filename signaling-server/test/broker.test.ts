/**
 * The broker's logic driven directly, without sockets: a fake `send` records what each peer would get. Runs
 * against both registries (in memory, and in a real redis-server), which must behave the same.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../bench/lib/redis-server.js';
import type { ServerMessage } from '@underpass/shared/signaling';
import { Broker } from '../src/broker.js';
import { RedisRegistry } from '../src/redis-registry.js';
import { MemoryRegistry, type Registry } from '../src/registry.js';
import { newExitKey } from './helpers.js';

let redisServer: RedisServer | undefined;
let redis: Redis | undefined;
let prefixes = 0;

beforeAll(async () => {
  redisServer = await startRedisServer();
  redis = new Redis(redisServer.url);
});

afterAll(async () => {
  await redis?.quit();
  await redisServer?.stop();
});

const registries: [string, () => Registry][] = [
  ['memory', () => new MemoryRegistry()],
  // A fresh key prefix per test: a fresh network in the same Redis.
  ['redis', () => new RedisRegistry({ redis: redis!, instanceId: 'test', prefix: `t${++prefixes}:` })],
];

describe.each(registries)('Broker with the %s registry', (_name, makeRegistry) => {
  function setup(maxLinksPerClient = 8, matchWaitMs = 0) {
    const outbox = new Map<string, ServerMessage[]>();
    const replaced: string[] = [];
    let n = 0;
    const registry = makeRegistry();
    const broker = new Broker({
      registry,
      maxLinksPerClient,
      matchWaitMs,
      onReplaced: (peerId) => replaced.push(peerId),
      newId: () => `link-${String(++n).padStart(16, '0')}`,
      send: (peerId, msg) => {
        const box = outbox.get(peerId) ?? [];
        box.push(msg);
        outbox.set(peerId, box);
      },
    });
    const take = (peerId: string): ServerMessage[] => {
      const box = outbox.get(peerId) ?? [];
      outbox.set(peerId, []);
      return box;
    };
    return { broker, registry, take, replaced };
  }

  const id = (name: string) => name.padEnd(22, '0');

  describe('Broker', () => {
    it('counts assignments per relay and releases them on link-closed and on leave', async () => {
      const { broker, registry, take } = setup();
      const exitKey = newExitKey();
      await broker.join(id('exit'), { type: 'hello', v: 1, role: 'exit', exitKey });
      await broker.join(id('relay'), { type: 'hello', v: 1, role: 'relay', capacity: 2 });
      await broker.join(id('c1'), { type: 'hello', v: 1, role: 'client' });
      await broker.join(id('c2'), { type: 'hello', v: 1, role: 'client' });
      take(id('c1'));
      take(id('c2'));

      await broker.handle(id('c1'), { type: 'path-request', requestId: 'a', mode: 'two-hop' });
      await broker.handle(id('c2'), { type: 'path-request', requestId: 'b', mode: 'two-hop' });
      expect((await registry.getPeer(id('relay')))?.assigned).toBe(2);
      const [pathA] = take(id('c1'));
      expect(pathA?.type).toBe('path');

      await broker.handle(id('c2'), { type: 'path-request', requestId: 'c', mode: 'two-hop' });
      expect(take(id('c2'))).toEqual([
        {
          type: 'path',
          requestId: 'b',
          linkId: 'link-0000000000000002',
          hop: { peerId: id('relay'), role: 'relay' },
          exit: { peerId: id('exit'), exitKey },
        },
        { type: 'error', code: 'no-relay-available', message: 'no relay has free capacity', requestId: 'c' },
      ]);

      await broker.handle(id('c1'), { type: 'link-closed', linkId: 'link-0000000000000001' });
      expect((await registry.getPeer(id('relay')))?.assigned).toBe(1);
      await broker.leave(id('c2'));
      expect((await registry.getPeer(id('relay')))?.assigned).toBe(0);
      expect(take(id('relay')).filter((m) => m.type === 'link-closed')).toHaveLength(2);
    });

    it('spreads a burst of paths over exits before they report load', async () => {
      const { broker, take } = setup();
      await broker.join(id('e1'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
      await broker.join(id('e2'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      take(id('c'));
      for (const r of ['1', '2', '3', '4'])
        await broker.handle(id('c'), { type: 'path-request', requestId: r, mode: 'direct' });
      const hops = take(id('c')).map((m) => (m.type === 'path' ? m.hop.peerId : m.type));
      expect(hops).toEqual([id('e1'), id('e2'), id('e1'), id('e2')]);
    });

    it('treats a link-closed race as one close', async () => {
      const { broker, take } = setup();
      await broker.join(id('e'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      await broker.handle(id('c'), { type: 'path-request', requestId: 'r', mode: 'direct' });
      take(id('c'));
      take(id('e'));
      const linkId = 'link-0000000000000001';
      await Promise.all([
        broker.handle(id('c'), { type: 'link-closed', linkId }),
        broker.handle(id('e'), { type: 'link-closed', linkId }),
      ]);
      const all = [...take(id('c')), ...take(id('e'))];
      expect(all.filter((m) => m.type === 'link-closed')).toHaveLength(1);
    });

    it('picks the relay with the most free capacity, never one at capacity', async () => {
      const { broker, registry, take } = setup(100);
      await broker.join(id('e'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
      await broker.join(id('small'), { type: 'hello', v: 1, role: 'relay', capacity: 1 });
      await broker.join(id('big'), { type: 'hello', v: 1, role: 'relay', capacity: 3 });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      take(id('c'));
      for (let i = 0; i < 5; i++)
        await broker.handle(id('c'), { type: 'path-request', requestId: `r${i}`, mode: 'two-hop' });
      const hops = take(id('c')).map((m) => (m.type === 'path' ? m.hop.peerId : m.type));
      // big (3 free) → big (2) → then 1 free each: either; then none.
      expect(hops.slice(0, 2)).toEqual([id('big'), id('big')]);
      expect(new Set(hops.slice(2, 4))).toEqual(new Set([id('big'), id('small')]));
      expect(hops[4]).toBe('error');
      expect((await registry.getPeer(id('small')))?.assigned).toBe(1);
      expect((await registry.getPeer(id('big')))?.assigned).toBe(3);
    });

    it('counts a relay that comes back with clients (its load) against its capacity, not only its links', async () => {
      const { broker, registry, take } = setup(100);
      await broker.join(id('e'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
      // A relay re-announced after a signaling restart: 2 clients whose links an earlier server made.
      await broker.join(id('back'), { type: 'hello', v: 1, role: 'relay', capacity: 3 });
      await broker.handle(id('back'), { type: 'load', load: 2 });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      take(id('c'));
      await broker.handle(id('c'), { type: 'path-request', requestId: '1', mode: 'two-hop' });
      expect(take(id('c')).map((m) => m.type)).toEqual(['path']);
      expect((await registry.getPeer(id('back')))?.assigned).toBe(1);
      // That client's link came up: 3 of 3.
      await broker.handle(id('back'), { type: 'load', load: 3 });
      await broker.handle(id('c'), { type: 'path-request', requestId: '2', mode: 'two-hop' });
      expect(take(id('c')).map((m) => m.type)).toEqual(['error']);
      // One of the old clients left: room for one more.
      await broker.handle(id('back'), { type: 'load', load: 2 });
      await broker.handle(id('c'), { type: 'path-request', requestId: '3', mode: 'two-hop' });
      expect(take(id('c')).map((m) => m.type)).toEqual(['path']);
    });

    it('tells no link member when the server, not the peer, goes away (reaping, shutdown)', async () => {
      const { broker, take } = setup();
      await broker.join(id('e'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
      await broker.join(id('relay'), { type: 'hello', v: 1, role: 'relay', capacity: 4 });
      await broker.join(id('c1'), { type: 'hello', v: 1, role: 'client' });
      await broker.join(id('c2'), { type: 'hello', v: 1, role: 'client' });
      await broker.handle(id('c1'), { type: 'path-request', requestId: 'a', mode: 'two-hop' });
      await broker.handle(id('c2'), { type: 'path-request', requestId: 'b', mode: 'two-hop' });
      take(id('relay'));
      await broker.leave(id('c1'), { tellLinkMembers: false });
      expect(take(id('relay'))).toEqual([]);
      broker.stop();
      await broker.leave(id('c2'));
      expect(take(id('relay'))).toEqual([]);
    });

    it('gives an exit key to the exit that proved it last: the old registration goes at once, listed once', async () => {
      const { broker, registry, take, replaced } = setup();
      const exitKey = newExitKey();
      const hello = { type: 'hello', v: 1, role: 'exit', exitKey, policy: 'web' } as const;
      expect(await broker.join(id('old'), hello)).toEqual({ ok: true });
      // The same exit on a new socket while its old one is not yet known to be gone (or a second process).
      expect(await broker.join(id('new'), hello)).toEqual({ ok: true });
      expect(replaced).toEqual([id('old')]);
      expect((await registry.listExits()).map((e) => [e.peerId, e.policy])).toEqual([[id('new'), 'web']]);
      expect((await registry.pickExit(exitKey))?.peerId).toBe(id('new'));
      expect(take(id('new')).map((m) => m.type)).toEqual(['welcome']);
      // The old socket's close, or its dead instance's reaping, comes later and must not touch the new one.
      await broker.leave(id('old'));
      await broker.leave(id('old'), { tellLinkMembers: false });
      expect((await registry.listExits()).map((e) => e.peerId)).toEqual([id('new')]);
      // Its messages, if any still come, are a stranger's.
      expect(await broker.handle(id('old'), { type: 'load', load: 5 })).toBe('ok');
      expect((await registry.getExit(exitKey))?.load).toBe(0);
    });

    it("passes the replaced exit's links to claims without link-closed: the new socket resumes them", async () => {
      const { broker, registry, take, replaced } = setup();
      const exitKey = newExitKey();
      const hello = { type: 'hello', v: 1, role: 'exit', exitKey } as const;
      await broker.join(id('e1'), hello);
      await broker.join(id('r1'), { type: 'hello', v: 1, role: 'relay', capacity: 2 });
      take(id('r1'));
      await broker.handle(id('r1'), { type: 'connect-exit', requestId: 'x', exitKey });
      const [link] = take(id('r1'));
      if (link?.type !== 'link') throw new Error(`expected a link, got ${JSON.stringify(link)}`);
      take(id('e1'));
      // Both came back on new sockets (their instance died): the relay claims first, the exit takes its key.
      await broker.join(id('r2'), { type: 'hello', v: 1, role: 'relay', capacity: 2 });
      await broker.handle(id('r2'), { type: 'link-resume', linkIds: [link.linkId] });
      await broker.join(id('e2'), hello);
      expect(replaced).toEqual([id('e1')]);
      // Nobody was told the link closed: its WebRTC link is up, only the sockets to the broker changed.
      expect(take(id('r1'))).toEqual([]);
      expect(take(id('r2')).map((m) => m.type)).toEqual(['welcome']);
      expect(await registry.getLink(link.linkId)).toBeUndefined();
      await broker.handle(id('e2'), { type: 'link-resume', linkIds: [link.linkId] });
      expect(await registry.getLink(link.linkId)).toEqual({
        linkId: link.linkId,
        initiator: id('r2'),
        hop: id('e2'),
      });
      expect(take(id('e2')).map((m) => m.type)).toEqual(['welcome']);
    });

    it("keeps a surviving member's side of a forgotten link waiting for the other's claim", async () => {
      const { broker, registry, take } = setup();
      const exitKey = newExitKey();
      const hello = { type: 'hello', v: 1, role: 'exit', exitKey } as const;
      await broker.join(id('e1'), hello);
      await broker.join(id('r'), { type: 'hello', v: 1, role: 'relay', capacity: 2 });
      take(id('r'));
      for (const requestId of ['x', 'y'])
        await broker.handle(id('r'), { type: 'connect-exit', requestId, exitKey });
      const [first, second] = take(id('r')).map((m) => (m.type === 'link' ? m.linkId : ''));
      // The exit's new socket takes its key over; the relay, on a live instance, has no reason to claim.
      await broker.join(id('e2'), hello);
      await broker.handle(id('e2'), { type: 'link-resume', linkIds: [first!, second!] });
      expect(await registry.getLink(first!)).toEqual({ linkId: first, initiator: id('r'), hop: id('e2') });
      // Known again: when this exit goes, the relay hears it at once instead of waiting for its keepalive.
      await broker.handle(id('e2'), { type: 'link-closed', linkId: second! });
      expect(take(id('r'))).toEqual([{ type: 'link-closed', linkId: second }]);
      // Reaping (the exit's instance died) leaves the relay's side waiting likewise.
      await broker.leave(id('e2'), { tellLinkMembers: false });
      expect(take(id('r'))).toEqual([]);
      await broker.join(id('e3'), hello);
      await broker.handle(id('e3'), { type: 'link-resume', linkIds: [first!] });
      expect(await registry.getLink(first!)).toEqual({ linkId: first, initiator: id('r'), hop: id('e3') });
      await broker.leave(id('e3'));
      expect(take(id('r'))).toEqual([{ type: 'link-closed', linkId: first }]);
    });

    it("drops the replaced exit's pending claims without a word", async () => {
      const { broker, registry, take } = setup();
      const exitKey = newExitKey();
      const hello = { type: 'hello', v: 1, role: 'exit', exitKey } as const;
      await broker.join(id('e1'), hello);
      const linkId = 'L'.repeat(22);
      await broker.handle(id('e1'), { type: 'link-resume', linkIds: [linkId] });
      await broker.join(id('e2'), hello);
      // e2 claims the same link afresh: e1's claim is gone, so this one waits for the relay's, not a mismatch.
      await broker.handle(id('e2'), { type: 'link-resume', linkIds: [linkId] });
      await broker.join(id('r'), { type: 'hello', v: 1, role: 'relay', capacity: 2 });
      await broker.handle(id('r'), { type: 'link-resume', linkIds: [linkId] });
      expect(await registry.getLink(linkId)).toEqual({ linkId, initiator: id('r'), hop: id('e2') });
      expect(take(id('r')).map((m) => m.type)).toEqual(['welcome']);
      expect(take(id('e1')).map((m) => m.type)).toEqual(['welcome']);
    });

    it('links a relay to an exit without counting a pending path on it (least-loaded stays fair)', async () => {
      const { broker, registry, take } = setup();
      const e1Key = newExitKey();
      await broker.join(id('e1'), { type: 'hello', v: 1, role: 'exit', exitKey: e1Key });
      await broker.join(id('e2'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
      await broker.join(id('relay'), { type: 'hello', v: 1, role: 'relay', capacity: 5 });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      take(id('c'));
      take(id('relay'));
      for (const r of ['x', 'y'])
        await broker.handle(id('relay'), { type: 'connect-exit', requestId: r, exitKey: e1Key });
      expect(take(id('relay')).map((m) => m.type)).toEqual(['link', 'link']);
      expect((await registry.getPeer(id('e1')))?.pending).toBe(0);
      // Both exits are equally loaded, so the first registered one (e1) is chosen.
      await broker.handle(id('c'), { type: 'path-request', requestId: 'p', mode: 'direct' });
      expect(take(id('c'))).toMatchObject([{ type: 'path', hop: { peerId: id('e1') } }]);
      expect((await registry.getPeer(id('e1')))?.pending).toBe(1);
    });

    /** Waits until `peerId` has been sent something (the broker retries waiting requests in the background). */
    async function until(
      take: (peerId: string) => ServerMessage[],
      peerId: string,
    ): Promise<ServerMessage[]> {
      for (let i = 0; i < 200; i++) {
        const got = take(peerId);
        if (got.length > 0) return got;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`nothing sent to ${peerId}`);
    }

    it('re-picks the exit of a waiting request when the exit it chose left during the wait', async () => {
      const { broker, take } = setup(8, 10_000);
      try {
        await broker.join(id('e1'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
        await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
        take(id('c'));
        await broker.handle(id('c'), { type: 'path-request', requestId: 'w', mode: 'two-hop' });
        expect(broker.waitingRequests).toBe(1);
        await broker.leave(id('e1'));
        const e2Key = newExitKey();
        await broker.join(id('e2'), { type: 'hello', v: 1, role: 'exit', exitKey: e2Key });
        await broker.join(id('relay'), { type: 'hello', v: 1, role: 'relay', capacity: 1 });
        take(id('relay'));
        const exit = { peerId: id('e2'), exitKey: e2Key };
        expect(await until(take, id('c'))).toMatchObject([{ type: 'path', requestId: 'w', exit }]);
        expect(take(id('relay'))).toMatchObject([{ type: 'link', exit }]);
      } finally {
        broker.stop();
      }
    });

    it('answers unknown-exit to a waiting request whose named exit left, and follows one that came back', async () => {
      const { broker, take } = setup(8, 10_000);
      try {
        const gone = newExitKey();
        const back = newExitKey();
        await broker.join(id('gone'), { type: 'hello', v: 1, role: 'exit', exitKey: gone });
        await broker.join(id('back1'), { type: 'hello', v: 1, role: 'exit', exitKey: back });
        await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
        take(id('c'));
        await broker.handle(id('c'), {
          type: 'path-request',
          requestId: 'g',
          mode: 'two-hop',
          exitKey: gone,
        });
        await broker.handle(id('c'), {
          type: 'path-request',
          requestId: 'b',
          mode: 'two-hop',
          exitKey: back,
        });
        expect(broker.waitingRequests).toBe(2);
        await broker.leave(id('gone'));
        await broker.leave(id('back1'));
        await broker.join(id('back2'), { type: 'hello', v: 1, role: 'exit', exitKey: back });
        await broker.join(id('relay'), { type: 'hello', v: 1, role: 'relay', capacity: 1 });
        const got = await until(take, id('c'));
        if (got.length < 2) got.push(...(await until(take, id('c'))));
        expect(got).toMatchObject([
          { type: 'error', code: 'unknown-exit', requestId: 'g' },
          { type: 'path', requestId: 'b', exit: { peerId: id('back2'), exitKey: back } },
        ]);
      } finally {
        broker.stop();
      }
    });

    it('says why a join was refused: a duplicate peer id; the registry alone keeps an exit key', async () => {
      const { broker, registry } = setup();
      const exitKey = newExitKey();
      await broker.join(id('p'), { type: 'hello', v: 1, role: 'exit', exitKey });
      expect(await broker.join(id('p'), { type: 'hello', v: 1, role: 'client' })).toMatchObject({
        ok: false,
        reason: 'duplicate-peer',
      });
      // Without a proof to take it over (the broker only joins exits that proved their key), a key is kept.
      expect(await registry.addPeer({ peerId: id('q'), role: 'exit', exitKey })).toEqual({
        ok: false,
        reason: 'duplicate-exit-key',
      });
      expect((await registry.listExits()).map((e) => e.peerId)).toEqual([id('p')]);
    });

    it('ignores messages from peers it does not know', async () => {
      const { broker, take } = setup();
      expect(await broker.handle(id('ghost'), { type: 'load', load: 1 })).toBe('ok');
      expect(take(id('ghost'))).toEqual([]);
    });

    it('sends a path that needs torrents only to an exit that serves them, and says so in the path and the directory', async () => {
      const { broker, registry, take } = setup();
      const plainKey = newExitKey();
      const torrentKey = newExitKey();
      await broker.join(id('plain'), { type: 'hello', v: 1, role: 'exit', exitKey: plainKey });
      await broker.join(id('tor'), {
        type: 'hello',
        v: 1,
        role: 'exit',
        exitKey: torrentKey,
        torrents: true,
      });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      for (const peer of ['c', 'plain', 'tor']) take(id(peer));
      expect((await registry.getPeer(id('tor')))?.torrents).toBe(true);
      expect((await registry.getPeer(id('plain')))?.torrents).toBe(false);

      // Three torrent paths all go to the one torrent exit although it is then the most loaded; a path that
      // needs nothing goes to the least-loaded exit, which serves none.
      for (const r of ['t1', 't2'])
        await broker.handle(id('c'), {
          type: 'path-request',
          requestId: r,
          mode: 'direct',
          needs: 'torrent',
        });
      await broker.handle(id('c'), { type: 'path-request', requestId: 'any', mode: 'direct' });
      await broker.handle(id('c'), {
        type: 'path-request',
        requestId: 't3',
        mode: 'direct',
        needs: 'torrent',
      });
      const paths = take(id('c'));
      const torrentExit = { peerId: id('tor'), exitKey: torrentKey, torrents: true };
      expect(paths.map((m) => (m.type === 'path' ? [m.requestId, m.exit] : m))).toEqual([
        ['t1', torrentExit],
        ['t2', torrentExit],
        ['any', { peerId: id('plain'), exitKey: plainKey }],
        ['t3', torrentExit],
      ]);
      expect(take(id('tor'))).toMatchObject([{ type: 'link', exit: torrentExit }, {}, {}]);
      expect(await broker.listExits()).toEqual([
        { peerId: id('plain'), exitKey: plainKey, policy: '', load: 0 },
        { peerId: id('tor'), exitKey: torrentKey, policy: '', load: 0, torrents: true },
      ]);
    });

    it('says in a path and in the exit side of its link that the exit answers PING, when the exit said so', async () => {
      const { broker, registry, take } = setup();
      const pingKey = newExitKey();
      const oldKey = newExitKey();
      await broker.join(id('pinging'), { type: 'hello', v: 1, role: 'exit', exitKey: pingKey, pings: true });
      await broker.join(id('old'), { type: 'hello', v: 1, role: 'exit', exitKey: oldKey });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      for (const peer of ['c', 'pinging', 'old']) take(id(peer));
      expect((await registry.getPeer(id('pinging')))?.pings).toBe(true);
      expect((await registry.getPeer(id('old')))?.pings).toBe(false);
      for (const [requestId, exitKey] of [
        ['p', pingKey],
        ['o', oldKey],
      ] as const)
        await broker.handle(id('c'), { type: 'path-request', requestId, mode: 'direct', exitKey });
      expect(take(id('c')).map((m) => (m.type === 'path' ? [m.requestId, m.exit] : m))).toEqual([
        ['p', { peerId: id('pinging'), exitKey: pingKey, pings: true }],
        ['o', { peerId: id('old'), exitKey: oldKey }],
      ]);
      expect(take(id('pinging'))).toMatchObject([
        { type: 'link', exit: { peerId: id('pinging'), exitKey: pingKey, pings: true } },
      ]);
    });

    it('refuses a torrent path when no exit serves torrents, or the pinned one does not, charging none', async () => {
      const { broker, registry, take } = setup();
      const plainKey = newExitKey();
      await broker.join(id('plain'), {
        type: 'hello',
        v: 1,
        role: 'exit',
        exitKey: plainKey,
        torrents: false,
      });
      await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
      take(id('c'));
      take(id('plain'));
      const ask = (requestId: string, exitKey?: string) =>
        broker.handle(id('c'), {
          type: 'path-request',
          requestId,
          mode: 'direct',
          needs: 'torrent',
          ...(exitKey ? { exitKey } : {}),
        });
      await ask('any');
      await ask('pinned', plainKey);
      await ask('unknown', newExitKey());
      expect(take(id('c'))).toEqual([
        {
          type: 'error',
          code: 'no-exit-available',
          message: 'no connected exit serves torrents',
          requestId: 'any',
        },
        {
          type: 'error',
          code: 'no-exit-available',
          message: 'the exit with this exitKey does not serve torrents',
          requestId: 'pinned',
        },
        {
          type: 'error',
          code: 'unknown-exit',
          message: 'no connected exit has this exitKey',
          requestId: 'unknown',
        },
      ]);
      expect(take(id('plain'))).toEqual([]);
      expect((await registry.getPeer(id('plain')))?.pending).toBe(0);
    });

    it('re-picks a torrent exit for a waiting torrent path whose exit left', async () => {
      const { broker, take } = setup(8, 10_000);
      try {
        await broker.join(id('tor1'), {
          type: 'hello',
          v: 1,
          role: 'exit',
          exitKey: newExitKey(),
          torrents: true,
        });
        await broker.join(id('c'), { type: 'hello', v: 1, role: 'client' });
        take(id('c'));
        await broker.handle(id('c'), {
          type: 'path-request',
          requestId: 'w',
          mode: 'two-hop',
          needs: 'torrent',
        });
        expect(broker.waitingRequests).toBe(1);
        await broker.leave(id('tor1'));
        // Registered first and unloaded, the plain exit would win if the need were forgotten.
        await broker.join(id('plain'), { type: 'hello', v: 1, role: 'exit', exitKey: newExitKey() });
        const tor2Key = newExitKey();
        await broker.join(id('tor2'), {
          type: 'hello',
          v: 1,
          role: 'exit',
          exitKey: tor2Key,
          torrents: true,
        });
        await broker.join(id('relay'), { type: 'hello', v: 1, role: 'relay', capacity: 1 });
        expect(await until(take, id('c'))).toMatchObject([
          { type: 'path', requestId: 'w', exit: { peerId: id('tor2'), exitKey: tor2Key, torrents: true } },
        ]);
      } finally {
        broker.stop();
      }
    });
  });
});

describe('RedisRegistry and exits registered before the torrents field', () => {
  it('reads an exit whose record has no torrents field as serving none, and never picks it for torrents', async () => {
    const prefix = `t${++prefixes}:`;
    const registry = new RedisRegistry({ redis: redis!, instanceId: 'test', prefix });
    const exitKey = newExitKey();
    const peerId = 'old-exit'.padEnd(22, '0');
    expect(await registry.addPeer({ peerId, role: 'exit', exitKey, torrents: true })).toEqual({ ok: true });
    // What an instance that predates the field would have written: no 'tor'.
    await redis!.hdel(`${prefix}peer:${peerId}`, 'tor');
    expect(await registry.getPeer(peerId)).toMatchObject({ peerId, torrents: false });
    expect(await registry.pickExit(undefined, 'torrent')).toBeUndefined();
    expect(await registry.pickExit(exitKey, 'torrent')).toBeUndefined();
    expect(await registry.pickExit(exitKey)).toMatchObject({ peerId, torrents: false });
  });

  it('reads an exit whose record has no pings field as not known to answer PING', async () => {
    const prefix = `t${++prefixes}:`;
    const registry = new RedisRegistry({ redis: redis!, instanceId: 'test', prefix });
    const peerId = 'old-exit'.padEnd(22, '0');
    expect(await registry.addPeer({ peerId, role: 'exit', exitKey: newExitKey(), pings: true })).toEqual({
      ok: true,
    });
    expect(await registry.getPeer(peerId)).toMatchObject({ peerId, pings: true });
    // What an instance that predates the field would have written: no 'png'.
    await redis!.hdel(`${prefix}peer:${peerId}`, 'png');
    expect(await registry.getPeer(peerId)).toMatchObject({ peerId, pings: false });
  });
});
