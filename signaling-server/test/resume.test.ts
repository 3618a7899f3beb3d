/**
 * Resumed links (`link-resume`), without sockets: the broker pairs the two members' claims in the registry,
 * refuses claims that make no link, never takes a link from live members, bounds and expires claims. Runs
 * against both registries (in memory, and a real redis-server), which must behave the same.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, type RedisServer } from '../../bench/lib/redis-server.js';
import {
  MAX_RESUME_IDS_PER_CONNECTION,
  type HelloMessage,
  type ServerMessage,
} from '@underpass/shared/signaling';
import { Broker } from '../src/broker.js';
import { linkSides } from '../src/link-claims.js';
import { RedisRegistry } from '../src/redis-registry.js';
import { MemoryRegistry, relayFreeOf, type Registry } from '../src/registry.js';
import { ManualClock } from '../../test/manual-clock.js';
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

const id = (name: string) => name.padEnd(22, '0');
/** A link id an earlier server made (22 characters, like any). */
const L1 = 'LinkOne'.padEnd(22, 'x');
const L2 = 'LinkTwo'.padEnd(22, 'x');

describe('linkSides', () => {
  it('knows the pairs a broker makes, and which member initiated', () => {
    expect(linkSides('client', 'relay')).toEqual({ initiator: 'a' });
    expect(linkSides('relay', 'client')).toEqual({ initiator: 'b' });
    expect(linkSides('client', 'exit')).toEqual({ initiator: 'a' });
    expect(linkSides('exit', 'client')).toEqual({ initiator: 'b' });
    expect(linkSides('relay', 'exit')).toEqual({ initiator: 'a' });
    expect(linkSides('exit', 'relay')).toEqual({ initiator: 'b' });
    for (const role of ['client', 'relay', 'exit'] as const) expect(linkSides(role, role)).toBeUndefined();
  });
});

const registries: [string, (now: () => number) => Registry][] = [
  ['memory', (now) => new MemoryRegistry({ now })],
  // A fresh key prefix per test: a fresh network in the same Redis. Its claims expire on Redis's own clock.
  ['redis', () => new RedisRegistry({ redis: redis!, instanceId: 'test', prefix: `r${++prefixes}:` })],
];

describe.each(registries)('link-resume with the %s registry', (name, makeRegistry) => {
  function setup(
    options: { maxLinksPerClient?: number; claimTtlMs?: number; maxPendingClaims?: number } = {},
  ) {
    const outbox = new Map<string, ServerMessage[]>();
    const clock = new ManualClock();
    const registry = makeRegistry(() => clock.now());
    let n = 0;
    const broker = new Broker({
      registry,
      maxLinksPerClient: options.maxLinksPerClient ?? 8,
      newId: () => `made-${String(++n).padStart(17, '0')}`,
      clock,
      ...(options.claimTtlMs !== undefined ? { claimTtlMs: options.claimTtlMs } : {}),
      ...(options.maxPendingClaims !== undefined ? { maxPendingClaims: options.maxPendingClaims } : {}),
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
    const join = async (name: string, hello: Omit<HelloMessage, 'type' | 'v'>) => {
      await broker.join(id(name), { type: 'hello', v: 1, ...hello } as HelloMessage);
      take(id(name));
      return id(name);
    };
    const claim = (peer: string, ...linkIds: string[]) =>
      broker.handle(peer, { type: 'link-resume', linkIds });
    return { broker, registry, take, join, claim, clock };
  }

  it('registers a link once both members claimed it; signals and link-closed then work as for a made one', async () => {
    const { broker, registry, take, join, claim } = setup();
    const relay = await join('relay2', { role: 'relay', capacity: 3 });
    const client = await join('client2', { role: 'client' });

    expect(await claim(relay, L1)).toBe('ok');
    expect(await registry.getLink(L1)).toBeUndefined();
    await broker.handle(relay, { type: 'signal', linkId: L1, data: { early: true } });
    expect(take(relay)).toEqual([{ type: 'error', code: 'unknown-link', message: `no link ${L1} of yours` }]);

    expect(await claim(client, L1)).toBe('ok');
    // The roles say who initiated: the client, to its hop.
    expect(await registry.getLink(L1)).toEqual({ linkId: L1, initiator: client, hop: relay });
    expect(take(client)).toEqual([]);
    expect(take(relay)).toEqual([]);
    await broker.handle(client, { type: 'signal', linkId: L1, data: { candidate: 'x' } });
    expect(take(relay)).toEqual([{ type: 'signal', linkId: L1, data: { candidate: 'x' } }]);

    // Counted as a hop link the relay serves, once: its own load (which counts this client) does not add.
    await broker.handle(relay, { type: 'load', load: 1 });
    const entry = await registry.getPeer(relay);
    expect(entry).toMatchObject({ assigned: 1, load: 1 });
    expect(relayFreeOf(entry!)).toBe(2);

    // The relay leaving while the server runs: its client hears it at once, as for a link the broker made.
    await broker.leave(relay);
    expect(take(client)).toEqual([{ type: 'link-closed', linkId: L1 }]);
    expect(await registry.getLink(L1)).toBeUndefined();
  });

  it('pairs a relay with an exit and a client with an exit (direct), whichever claims first', async () => {
    const { registry, join, claim } = setup();
    const exit = await join('exit2', { role: 'exit', exitKey: newExitKey() });
    const relay = await join('relay2', { role: 'relay', capacity: 2 });
    const client = await join('client2', { role: 'client' });
    await claim(exit, L1);
    await claim(relay, L1);
    await claim(exit, L2);
    await claim(client, L2);
    expect(await registry.getLink(L1)).toEqual({ linkId: L1, initiator: relay, hop: exit });
    expect(await registry.getLink(L2)).toEqual({ linkId: L2, initiator: client, hop: exit });
    expect((await registry.getPeer(exit))?.assigned).toBe(2);
    // A repeated claim by a member changes nothing.
    await claim(client, L2);
    expect((await registry.getPeer(exit))?.assigned).toBe(2);
  });

  it('refuses claims that make no link, and the waiting claim still pairs with the right member', async () => {
    const { registry, take, join, claim } = setup();
    const client = await join('client2', { role: 'client' });
    const otherClient = await join('client3', { role: 'client' });
    const relay = await join('relay2', { role: 'relay', capacity: 2 });
    const otherRelay = await join('relay3', { role: 'relay', capacity: 2 });
    await claim(relay, L1);
    // The same peer again: still one claim, nothing paired.
    await claim(relay, L1, L1);
    expect(await registry.getLink(L1)).toBeUndefined();
    // Two relays make no link.
    await claim(otherRelay, L1);
    expect(take(otherRelay)).toEqual([
      { type: 'error', code: 'unknown-link', message: `cannot resume link ${L1}: not a link of yours` },
    ]);
    await claim(client, L1);
    expect(await registry.getLink(L1)).toEqual({ linkId: L1, initiator: client, hop: relay });
    // Two clients make no link either, and a third claimant of a pending link is refused.
    await claim(client, L2);
    await claim(otherClient, L2);
    expect(take(otherClient)).toMatchObject([{ type: 'error', code: 'unknown-link' }]);
    await claim(relay, L2);
    expect(await registry.getLink(L2)).toEqual({ linkId: L2, initiator: client, hop: relay });
    expect(take(relay)).toEqual([]);
  });

  it('never takes a link the broker knows with live members', async () => {
    const { broker, registry, take, join, claim } = setup();
    const exit = await join('exit', { role: 'exit', exitKey: newExitKey() });
    const relay = await join('relay', { role: 'relay', capacity: 2 });
    const client = await join('client', { role: 'client' });
    await broker.handle(client, { type: 'path-request', requestId: 'r', mode: 'two-hop' });
    const [path] = take(client);
    if (path?.type !== 'path') throw new Error('no path');
    const made = { linkId: path.linkId, initiator: client, hop: relay };
    take(relay);
    void exit;

    // Someone holding the id (it is the capability) claims it from two new sockets: it stays the members'.
    const strangerClient = await join('stranger-c', { role: 'client' });
    const strangerRelay = await join('stranger-r', { role: 'relay', capacity: 2 });
    await claim(strangerClient, path.linkId);
    await claim(strangerRelay, path.linkId);
    expect(await registry.getLink(path.linkId)).toEqual(made);
    await broker.handle(strangerClient, { type: 'signal', linkId: path.linkId, data: { x: 1 } });
    expect(take(strangerClient)).toMatchObject([{ type: 'error', code: 'unknown-link' }]);
    expect(take(relay)).toEqual([]);
    await broker.handle(client, { type: 'signal', linkId: path.linkId, data: { y: 2 } });
    expect(take(relay)).toEqual([{ type: 'signal', linkId: path.linkId, data: { y: 2 } }]);

    // The members close it: the claimants are told too (a claim of a closed link can only be stale).
    await broker.handle(client, { type: 'link-closed', linkId: path.linkId });
    expect(take(relay)).toEqual([{ type: 'link-closed', linkId: path.linkId }]);
    expect(take(strangerClient)).toEqual([{ type: 'link-closed', linkId: path.linkId }]);
    expect(take(strangerRelay)).toEqual([{ type: 'link-closed', linkId: path.linkId }]);
    expect(await registry.getLink(path.linkId)).toBeUndefined();
  });

  it('tells a late claimant when the other member left or gave the link up meanwhile', async () => {
    const { broker, registry, take, join, claim } = setup();
    const exit = await join('exit2', { role: 'exit', exitKey: newExitKey() });
    const relay = await join('relay2', { role: 'relay', capacity: 2 });
    const client = await join('client2', { role: 'client' });
    await claim(exit, L1);
    // The exit dies (its socket closes while the server runs) before the relay is back.
    await broker.leave(exit);
    await claim(relay, L1);
    expect(take(relay)).toEqual([{ type: 'link-closed', linkId: L1 }]);
    expect(await registry.getLink(L1)).toBeUndefined();

    // A claimant's own link-closed withdraws its claim, and the other member hears it when it claims.
    await claim(relay, L2);
    await broker.handle(relay, { type: 'link-closed', linkId: L2 });
    expect(take(relay)).toEqual([]);
    await claim(client, L2);
    expect(take(client)).toEqual([{ type: 'link-closed', linkId: L2 }]);
    expect(await registry.getLink(L2)).toBeUndefined();
    // A link-closed for an id it neither holds nor claims is still unknown-link.
    await broker.handle(client, { type: 'link-closed', linkId: L2 });
    expect(take(client)).toMatchObject([{ type: 'error', code: 'unknown-link' }]);
  });

  it('passes a link on when a member is removed silently (its instance died): to its claims', async () => {
    const { broker, registry, take, join, claim } = setup();
    await join('exit', { role: 'exit', exitKey: newExitKey() });
    const relay = await join('relay', { role: 'relay', capacity: 2 });
    const client = await join('client', { role: 'client' });
    await broker.handle(client, { type: 'path-request', requestId: 'r', mode: 'two-hop' });
    const [path] = take(client);
    if (path?.type !== 'path') throw new Error('no path');
    take(relay);

    // Both were on an instance that died; the client is back first (on another instance) and claims.
    const client2 = await join('client2', { role: 'client' });
    await claim(client2, path.linkId);
    expect(await registry.getLink(path.linkId)).toMatchObject({ initiator: client });
    // The dead instance's client is reaped: the link passes to its claim, the relay standing for its side.
    await broker.leave(client, { tellLinkMembers: false });
    expect(await registry.getLink(path.linkId)).toEqual({
      linkId: path.linkId,
      initiator: client2,
      hop: relay,
    });
    const relay2 = await join('relay2', { role: 'relay', capacity: 2 });
    await claim(relay2, path.linkId);
    await broker.leave(relay, { tellLinkMembers: false });
    expect(await registry.getLink(path.linkId)).toEqual({
      linkId: path.linkId,
      initiator: client2,
      hop: relay2,
    });
    expect((await registry.getPeer(relay2))?.assigned).toBe(1);
    // Nobody was told anything along the way.
    for (const peer of [client, client2, relay, relay2]) expect(take(peer)).toEqual([]);
    // And the link works as any: the relay leaving now is told to the client.
    await broker.leave(relay2);
    expect(take(client2)).toEqual([{ type: 'link-closed', linkId: path.linkId }]);
  });

  it('bounds a resumed link by the initiator’s link limit, as a made one', async () => {
    const { registry, take, join, claim } = setup({ maxLinksPerClient: 1 });
    const relay = await join('relay2', { role: 'relay', capacity: 4 });
    const client = await join('client2', { role: 'client' });
    await claim(relay, L1, L2);
    await claim(client, L1, L2);
    expect(await registry.getLink(L1)).toBeDefined();
    expect(await registry.getLink(L2)).toBeUndefined();
    expect(take(client)).toEqual([
      {
        type: 'error',
        code: 'rate-limited',
        message: `cannot resume link ${L2}: too many links or claims (at most ${MAX_RESUME_IDS_PER_CONNECTION} claims per connection)`,
      },
    ]);
  });

  it('bounds the claims per connection and per instance', async () => {
    const { broker, take, join, claim } = setup({ maxPendingClaims: 2 });
    const relay = await join('relay2', { role: 'relay', capacity: 4 });
    const ids = Array.from({ length: 3 }, (_, i) => `pending${i}`.padEnd(22, 'x'));
    await claim(relay, ...ids);
    expect(take(relay)).toMatchObject([{ type: 'error', code: 'rate-limited' }]);
    // A peer's claims stop counting when it leaves: another can claim as many again.
    await broker.leave(relay);
    const exit2 = await join('exit2', { role: 'exit', exitKey: newExitKey() });
    await claim(exit2, ...Array.from({ length: 2 }, (_, i) => `other${i}`.padEnd(22, 'x')));
    expect(take(exit2)).toEqual([]);

    const { take: take2, join: join2, claim: claim2 } = setup();
    const exit = await join2('exit3', { role: 'exit', exitKey: newExitKey() });
    const many = Array.from({ length: MAX_RESUME_IDS_PER_CONNECTION + 1 }, (_, i) => `c${i}`.padEnd(22, 'y'));
    for (let i = 0; i < many.length; i += 256) await claim2(exit, ...many.slice(i, i + 256));
    const errors = take2(exit);
    expect(errors).toEqual([
      {
        type: 'error',
        code: 'rate-limited',
        message: `cannot resume link ${many.at(-1)}: too many links or claims (at most ${MAX_RESUME_IDS_PER_CONNECTION} claims per connection)`,
      },
    ]);
  });

  it('lets an unpaired claim expire without telling anyone', async () => {
    const { registry, take, join, claim, clock } = setup({ claimTtlMs: 200 });
    const relay = await join('relay2', { role: 'relay', capacity: 2 });
    const client = await join('client2', { role: 'client' });
    await claim(relay, L1);
    if (name === 'memory') clock.advance(200);
    else {
      // Redis expires the claim on its own clock: wait until it has.
      const key = `${(registry as RedisRegistry).prefix}claim:${L1}`;
      for (let i = 0; i < 200 && (await redis!.exists(key)) === 1; i++)
        await new Promise((r) => setTimeout(r, 10));
    }
    await claim(client, L1);
    expect(await registry.getLink(L1)).toBeUndefined();
    expect(take(relay)).toEqual([]);
    expect(take(client)).toEqual([]);
  });
});
