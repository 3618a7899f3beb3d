/**
 * The Registry in Redis, shared by every instance of one network. Each operation is one Lua script, so it is
 * atomic across instances exactly as MemoryRegistry's are within one process: the relay with the most free
 * capacity is chosen and charged in the same step. Relays live in a sorted set scored by free capacity (the
 * heap of Snowflake's broker); each instance keeps a set of the peers connected to it, so that when an
 * instance dies the others can remove its peers (see RedisCluster). Plain Redis, not Redis Cluster: the
 * scripts touch keys they compute.
 */
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { ExitService, PeerRole } from '@underpass/shared/signaling';
import type {
  AddPeerOptions,
  AddPeerResult,
  ClaimRequest,
  ClaimResult,
  LinkGone,
  LinkNotice,
  CreateLinkRequest,
  CreateLinkResult,
  LinkEntry,
  NewPeer,
  PeerEntry,
  Registry,
} from './registry.js';

const COMMON = `
local p = ARGV[1]
local FIELDS = {'role', 'cap', 'key', 'pol', 'load', 'asg', 'pend', 'tor', 'png'}
local function fields(id)
  local f = redis.call('HMGET', p .. 'peer:' .. id, unpack(FIELDS))
  if not f[1] then return false end
  -- 'tor' and 'png' are missing (false) for peers an older instance registered: sent as '' (no torrents, and
  -- PING not known to be answered).
  return {id, f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8] or '', f[9] or ''}
end
-- Whether exit id offers what a path needs ('' = nothing in particular).
local function offers(id, needs)
  return needs == '' or (needs == 'torrent' and redis.call('HGET', p .. 'peer:' .. id, 'tor') == '1')
end
-- A relay's score in the relays set: capacity less the larger of its assigned links and its reported load
-- (relayFreeOf in registry.ts).
local function rescore(id)
  local f = redis.call('HMGET', p .. 'peer:' .. id, 'role', 'cap', 'asg', 'load')
  if f[1] ~= 'relay' then return end
  redis.call('ZADD', p .. 'relays', tonumber(f[2]) - math.max(tonumber(f[3]), tonumber(f[4])), id)
end
local function forget(lid)
  local lk = p .. 'link:' .. lid
  local l = redis.call('HMGET', lk, 'i', 'h')
  if not l[1] then return false end
  redis.call('DEL', lk)
  redis.call('SREM', p .. 'links:' .. l[1], lid)
  redis.call('SREM', p .. 'links:' .. l[2], lid)
  local hk = p .. 'peer:' .. l[2]
  if redis.call('EXISTS', hk) == 1 then
    local asg = redis.call('HINCRBY', hk, 'asg', -1)
    if asg < 0 then redis.call('HSET', hk, 'asg', 0) end
    rescore(l[2])
  end
  local ik = p .. 'peer:' .. l[1]
  if redis.call('EXISTS', ik) == 1 then redis.call('HINCRBY', ik, 'own', -1) end
  return {lid, l[1], l[2]}
end
-- Which of roles a and b initiated a link between them (linkSides in link-claims.ts): 'a', 'b' or false.
local function sides(a, b)
  if a == 'client' and (b == 'relay' or b == 'exit') then return 'a' end
  if b == 'client' and (a == 'relay' or a == 'exit') then return 'b' end
  if a == 'relay' and b == 'exit' then return 'a' end
  if a == 'exit' and b == 'relay' then return 'b' end
  return false
end
-- Registers resumed link lid between peers a and b as createLink would (MemoryRegistry.attach): false when
-- one is gone, the roles make no link, or the initiator is at its link limit (maxc for a client, its
-- capacity for a relay). The hop's capacity is not checked: it already serves the link.
local function attach(lid, a, b, maxc)
  if redis.call('EXISTS', p .. 'link:' .. lid) == 1 then return false end
  local ra = redis.call('HMGET', p .. 'peer:' .. a, 'role', 'cap', 'own')
  local rb = redis.call('HMGET', p .. 'peer:' .. b, 'role', 'cap', 'own')
  if not ra[1] or not rb[1] then return false end
  local s = sides(ra[1], rb[1])
  if not s then return false end
  local init, hop, ri = a, b, ra
  if s == 'b' then init, hop, ri = b, a, rb end
  local max = tonumber(maxc)
  if ri[1] ~= 'client' then max = tonumber(ri[2]) or 1 end
  if (tonumber(ri[3]) or 0) >= max then return false end
  redis.call('HINCRBY', p .. 'peer:' .. hop, 'asg', 1)
  rescore(hop)
  redis.call('HINCRBY', p .. 'peer:' .. init, 'own', 1)
  redis.call('HSET', p .. 'link:' .. lid, 'i', init, 'h', hop)
  redis.call('SADD', p .. 'links:' .. init, lid)
  redis.call('SADD', p .. 'links:' .. hop, lid)
  return {lid, init, hop}
end
-- The claims of link lid: a hash claimant -> role (expiring), each also in its claimant's set claims:<id>.
local function unclaim(lid, id)
  redis.call('HDEL', p .. 'claim:' .. lid, id)
  redis.call('SREM', p .. 'claims:' .. id, lid)
end
-- Forgets every claim of lid; returns the claimants.
local function unclaimAll(lid)
  local ids = redis.call('HKEYS', p .. 'claim:' .. lid)
  for _, id in ipairs(ids) do redis.call('SREM', p .. 'claims:' .. id, lid) end
  redis.call('DEL', p .. 'claim:' .. lid)
  return ids
end
-- Forgets peer id, its links (returned, as forget gives them) and its place in every index; false if unknown.
local function remove(id)
  local pk = p .. 'peer:' .. id
  if redis.call('EXISTS', pk) == 0 then return false end
  local out = {}
  for _, lid in ipairs(redis.call('SMEMBERS', p .. 'links:' .. id)) do
    local l = forget(lid)
    if l then table.insert(out, l) end
  end
  redis.call('DEL', p .. 'links:' .. id)
  local f = redis.call('HMGET', pk, 'role', 'key', 'inst')
  redis.call('DEL', pk)
  if f[1] == 'relay' then redis.call('ZREM', p .. 'relays', id) end
  if f[1] == 'exit' then
    redis.call('ZREM', p .. 'exits', id)
    if redis.call('HGET', p .. 'exitkeys', f[2]) == id then redis.call('HDEL', p .. 'exitkeys', f[2]) end
  end
  if f[3] then redis.call('SREM', p .. 'instpeers:' .. f[3], id) end
  return out
end
`;

const SCRIPTS = {
  // ARGV: prefix, id, role, cap, key, policy, instance, torrents ('1' or ''), take over the exit key ('1' or ''),
  // answers PING ('1' or '')
  addPeer: `
local id, role, cap, key = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local pk = p .. 'peer:' .. id
if redis.call('EXISTS', pk) == 1 then return {'duplicate-peer'} end
local holder = key ~= '' and redis.call('HGET', p .. 'exitkeys', key)
local replaced = false
if holder then
  if ARGV[9] ~= '1' then return {'duplicate-exit-key'} end
  -- The holder's claims go silently (the new holder claims again what is really its own), then the holder.
  for _, lid in ipairs(redis.call('SMEMBERS', p .. 'claims:' .. holder)) do unclaim(lid, holder) end
  redis.call('DEL', p .. 'claims:' .. holder)
  replaced = {holder, remove(holder) or {}}
end
local seq = redis.call('INCR', p .. 'seq')
redis.call('HSET', pk, 'role', role, 'cap', cap, 'key', key, 'pol', ARGV[6], 'load', 0, 'asg', 0,
  'pend', 0, 'own', 0, 'inst', ARGV[7], 'tor', ARGV[8], 'png', ARGV[10])
if role == 'relay' then redis.call('ZADD', p .. 'relays', tonumber(cap), id) end
if role == 'exit' then
  redis.call('ZADD', p .. 'exits', seq, id)
  redis.call('HSET', p .. 'exitkeys', key, id)
end
redis.call('SADD', p .. 'instpeers:' .. ARGV[7], id)
if replaced then return {'ok', replaced} end
return {'ok'}`,
  // ARGV: prefix, id
  removePeer: `
local out = remove(ARGV[2])
if not out then return false end
return {'ok', out}`,
  // ARGV: prefix, id
  getPeer: `return fields(ARGV[2])`,
  // ARGV: prefix, id, load
  reportLoad: `
local pk = p .. 'peer:' .. ARGV[2]
if redis.call('EXISTS', pk) == 1 then
  redis.call('HSET', pk, 'load', ARGV[3], 'pend', 0)
  rescore(ARGV[2])
end
return 'ok'`,
  // ARGV: prefix
  listExits: `
local out = {}
for _, id in ipairs(redis.call('ZRANGE', p .. 'exits', 0, -1)) do
  local f = fields(id)
  if f then table.insert(out, f) end
end
return out`,
  // ARGV: prefix, exitKey or '', needs ('torrent' or '')
  pickExit: `
local id = false
if ARGV[2] ~= '' then
  id = redis.call('HGET', p .. 'exitkeys', ARGV[2])
  if id and not offers(id, ARGV[3]) then id = false end
else
  local best = nil
  for _, e in ipairs(redis.call('ZRANGE', p .. 'exits', 0, -1)) do
    local f = redis.call('HMGET', p .. 'peer:' .. e, 'load', 'pend', 'cap')
    if f[1] and offers(e, ARGV[3]) then
      local score = (tonumber(f[1]) + tonumber(f[2])) / (tonumber(f[3]) or 1000)
      if best == nil or score < best then best = score; id = e end
    end
  end
end
if not id then return false end
redis.call('HINCRBY', p .. 'peer:' .. id, 'pend', 1)
return fields(id)`,
  // ARGV: prefix, exitKey
  getExit: `
local id = redis.call('HGET', p .. 'exitkeys', ARGV[2])
if not id then return false end
return fields(id)`,
  // ARGV: prefix, linkId, initiator, hop ('' = best relay), maxInitiatorLinks
  createLink: `
local lid, init, hop = ARGV[2], ARGV[3], ARGV[4]
if redis.call('EXISTS', p .. 'link:' .. lid) == 1 then return {'collision'} end
local ik = p .. 'peer:' .. init
if redis.call('EXISTS', ik) == 0 then return {'initiator-gone'} end
if tonumber(redis.call('HGET', ik, 'own')) >= tonumber(ARGV[5]) then return {'limit'} end
if hop == '' then
  hop = false
  local top = redis.call('ZREVRANGE', p .. 'relays', 0, 1, 'WITHSCORES')
  for i = 1, #top, 2 do
    if top[i] ~= init and tonumber(top[i + 1]) > 0 then hop = top[i]; break end
  end
  if not hop then return {'no-relay'} end
elseif redis.call('EXISTS', p .. 'peer:' .. hop) == 0 then
  return {'hop-gone'}
end
local hk = p .. 'peer:' .. hop
redis.call('HINCRBY', hk, 'asg', 1)
rescore(hop)
redis.call('HINCRBY', ik, 'own', 1)
redis.call('HSET', p .. 'link:' .. lid, 'i', init, 'h', hop)
redis.call('SADD', p .. 'links:' .. init, lid)
redis.call('SADD', p .. 'links:' .. hop, lid)
return {'ok', fields(hop)}`,
  // ARGV: prefix, linkId
  getLink: `
local l = redis.call('HMGET', p .. 'link:' .. ARGV[2], 'i', 'h')
if not l[1] then return false end
return {ARGV[2], l[1], l[2]}`,
  // ARGV: prefix, linkId
  closeLink: `return forget(ARGV[2])`,
  // ARGV: prefix, linkId, peerId, ttlMs, maxClientLinks
  claimLink: `
local lid, id, ttl = ARGV[2], ARGV[3], ARGV[4]
local role = redis.call('HGET', p .. 'peer:' .. id, 'role')
if not role then return {'gone'} end
local l = redis.call('HMGET', p .. 'link:' .. lid, 'i', 'h')
if l[1] == id or l[2] == id then return {'member'} end
if redis.call('DEL', p .. 'closed:' .. lid) == 1 then return {'closed'} end
local ck = p .. 'claim:' .. lid
local waiting = redis.call('HGETALL', ck)
for i = 1, #waiting, 2 do
  if waiting[i] == id then return {'pending'} end
end
if #waiting >= 4 or (#waiting == 2 and not sides(waiting[2], role)) then return {'mismatch'} end
if #waiting == 0 or l[1] then
  redis.call('HSET', ck, id, role)
  redis.call('PEXPIRE', ck, ttl)
  redis.call('SADD', p .. 'claims:' .. id, lid)
  redis.call('PEXPIRE', p .. 'claims:' .. id, ttl)
  return {'pending'}
end
local link = attach(lid, waiting[1], id, ARGV[5])
if not link then return {'limit'} end
unclaimAll(lid)
return {'paired', link}`,
  // ARGV: prefix, peerId, linkId ('' = all of the peer's claims), closed ('1' or ''), ttlMs
  dropClaims: `
local id, ttl = ARGV[2], ARGV[5]
local lids = {ARGV[3]}
if ARGV[3] == '' then lids = redis.call('SMEMBERS', p .. 'claims:' .. id) end
local had, tell = 0, {}
for _, lid in ipairs(lids) do
  if redis.call('HEXISTS', p .. 'claim:' .. lid, id) == 1 then
    had = 1
    unclaim(lid, id)
    if ARGV[4] == '1' then
      for _, other in ipairs(unclaimAll(lid)) do table.insert(tell, {other, lid}) end
      redis.call('SET', p .. 'closed:' .. lid, '1', 'PX', ttl)
    end
  end
end
if ARGV[3] == '' then redis.call('DEL', p .. 'claims:' .. id) end
return {had, tell}`,
  // ARGV: prefix, linkId, closed ('1' or ''), ttlMs, survivor ('' = none), maxClientLinks
  linkGone: `
local lid = ARGV[2]
if redis.call('EXISTS', p .. 'link:' .. lid) == 1 then return {'none'} end
if ARGV[3] == '1' then
  local tell = unclaimAll(lid)
  if #tell > 0 then redis.call('SET', p .. 'closed:' .. lid, '1', 'PX', ARGV[4]) end
  return {'closed', tell}
end
local candidates = {}
if ARGV[5] ~= '' and redis.call('EXISTS', p .. 'peer:' .. ARGV[5]) == 1 then
  table.insert(candidates, ARGV[5])
end
for _, id in ipairs(redis.call('HKEYS', p .. 'claim:' .. lid)) do
  if id ~= ARGV[5] then table.insert(candidates, id) end
end
for i = 1, #candidates do
  for j = i + 1, #candidates do
    local link = attach(lid, candidates[i], candidates[j], ARGV[6])
    if link then
      unclaim(lid, candidates[i])
      unclaim(lid, candidates[j])
      return {'paired', link}
    end
  end
end
-- No claim to pair with yet: the survivor's side waits as a claim of its own (LinkGone in registry.ts).
local ck = p .. 'claim:' .. lid
if #candidates == 1 and candidates[1] == ARGV[5] and redis.call('EXISTS', ck) == 0 then
  redis.call('HSET', ck, ARGV[5], redis.call('HGET', p .. 'peer:' .. ARGV[5], 'role'))
  redis.call('PEXPIRE', ck, ARGV[4])
  redis.call('SADD', p .. 'claims:' .. ARGV[5], lid)
  redis.call('PEXPIRE', p .. 'claims:' .. ARGV[5], ARGV[4])
end
return {'none'}`,
} as const;

type ScriptName = keyof typeof SCRIPTS;
type Script = { lua: string; sha: string };

const COMPILED = Object.fromEntries(
  Object.entries(SCRIPTS).map(([name, body]) => {
    const lua = COMMON + body;
    return [name, { lua, sha: createHash('sha1').update(lua).digest('hex') }];
  }),
) as Record<ScriptName, Script>;

/** Prefix of every key and channel unless configured: several networks can share one Redis. */
export const DEFAULT_REDIS_PREFIX = 'underpass:';

export type RedisRegistryOptions = {
  redis: Redis;
  /** The instance that registers peers through this object; recorded so others can reap them. */
  instanceId: string;
  /** Prefix of every key. Default "underpass:". */
  prefix?: string;
};

function text(value: unknown): string {
  return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString() : String(value);
}

function toPeer(row: unknown): PeerEntry | undefined {
  if (!Array.isArray(row) || row.length < 10) return undefined;
  const [id, role, cap, key, pol, load, asg, pend, tor, png] = row.map(text) as [
    string,
    PeerRole,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  return {
    peerId: id,
    role,
    capacity: cap === '' ? undefined : Number(cap),
    exitKey: key === '' ? undefined : key,
    policy: pol === '' ? undefined : pol,
    torrents: tor === '1',
    pings: png === '1',
    load: Number(load),
    assigned: Number(asg),
    pending: Number(pend),
  };
}

function toLink(row: unknown): LinkEntry | undefined {
  if (!Array.isArray(row) || row.length < 3) return undefined;
  return { linkId: text(row[0]), initiator: text(row[1]), hop: text(row[2]) };
}

function toLinks(rows: unknown): LinkEntry[] {
  return Array.isArray(rows) ? rows.map(toLink).filter((l): l is LinkEntry => l !== undefined) : [];
}

export class RedisRegistry implements Registry {
  readonly prefix: string;
  private readonly redis: Redis;
  private readonly instanceId: string;

  constructor(options: RedisRegistryOptions) {
    this.redis = options.redis;
    this.instanceId = options.instanceId;
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
  }

  /** Runs a script by hash, loading it on the first NOSCRIPT (after a restart or a SCRIPT FLUSH). */
  private async run(name: ScriptName, ...args: (string | number)[]): Promise<unknown> {
    const script = COMPILED[name];
    try {
      return await this.redis.evalsha(script.sha, 0, this.prefix, ...args);
    } catch (error) {
      if (!String(error).includes('NOSCRIPT')) throw error;
      return this.redis.eval(script.lua, 0, this.prefix, ...args);
    }
  }

  async addPeer(peer: NewPeer, options: AddPeerOptions = {}): Promise<AddPeerResult> {
    const result = await this.run(
      'addPeer',
      peer.peerId,
      peer.role,
      peer.capacity ?? '',
      peer.exitKey ?? '',
      peer.policy ?? '',
      this.instanceId,
      peer.torrents === true ? '1' : '',
      options.takeOverExitKey === true ? '1' : '',
      peer.pings === true ? '1' : '',
    );
    if (!Array.isArray(result)) throw new Error('unexpected reply from addPeer');
    const status = text(result[0]);
    if (status === 'duplicate-peer' || status === 'duplicate-exit-key') return { ok: false, reason: status };
    if (status !== 'ok') throw new Error(`unexpected reply from addPeer: ${status}`);
    const replaced: unknown = result[1];
    if (!Array.isArray(replaced)) return { ok: true };
    return { ok: true, replaced: { peerId: text(replaced[0]), links: toLinks(replaced[1]) } };
  }

  async removePeer(peerId: string): Promise<LinkEntry[] | undefined> {
    const result = await this.run('removePeer', peerId);
    if (!Array.isArray(result)) return undefined;
    return toLinks(result[1]);
  }

  async getPeer(peerId: string): Promise<PeerEntry | undefined> {
    return toPeer(await this.run('getPeer', peerId));
  }

  async reportLoad(peerId: string, load: number): Promise<void> {
    await this.run('reportLoad', peerId, load);
  }

  async listExits(): Promise<PeerEntry[]> {
    const rows = await this.run('listExits');
    return Array.isArray(rows) ? rows.map(toPeer).filter((p): p is PeerEntry => p !== undefined) : [];
  }

  async pickExit(exitKey?: string, needs?: ExitService): Promise<PeerEntry | undefined> {
    return toPeer(await this.run('pickExit', exitKey ?? '', needs ?? ''));
  }

  async getExit(exitKey: string): Promise<PeerEntry | undefined> {
    return toPeer(await this.run('getExit', exitKey));
  }

  async createLink(request: CreateLinkRequest): Promise<CreateLinkResult> {
    const hop = typeof request.hop === 'string' ? request.hop : '';
    const result = await this.run(
      'createLink',
      request.linkId,
      request.initiator,
      hop,
      request.maxInitiatorLinks,
    );
    if (!Array.isArray(result)) throw new Error('unexpected reply from createLink');
    const status = text(result[0]);
    if (status === 'collision') throw new Error('link id collision');
    if (status !== 'ok')
      return { ok: false, reason: status as 'initiator-gone' | 'hop-gone' | 'no-relay' | 'limit' };
    const hopEntry = toPeer(result[1]);
    if (!hopEntry) throw new Error('unexpected reply from createLink');
    return {
      ok: true,
      link: { linkId: request.linkId, initiator: request.initiator, hop: hopEntry.peerId },
      hop: hopEntry,
    };
  }

  async getLink(linkId: string): Promise<LinkEntry | undefined> {
    return toLink(await this.run('getLink', linkId));
  }

  async closeLink(linkId: string): Promise<LinkEntry | undefined> {
    return toLink(await this.run('closeLink', linkId));
  }

  async claimLink(request: ClaimRequest): Promise<ClaimResult> {
    const { linkId, peerId, ttlMs, maxClientLinks } = request;
    const result = await this.run('claimLink', linkId, peerId, ttlMs, maxClientLinks);
    if (!Array.isArray(result)) throw new Error('unexpected reply from claimLink');
    const status = text(result[0]);
    switch (status) {
      case 'paired': {
        const link = toLink(result[1]);
        if (!link) throw new Error('unexpected reply from claimLink');
        return { status, link };
      }
      case 'pending':
      case 'member':
      case 'closed':
        return { status };
      case 'mismatch':
      case 'limit':
      case 'gone':
        return { status: 'refused', reason: status };
      default:
        throw new Error(`unexpected reply from claimLink: ${status}`);
    }
  }

  async dropClaims(
    peerId: string,
    options: { linkId?: string; closed: boolean; ttlMs: number },
  ): Promise<{ had: boolean; tell: LinkNotice[] }> {
    const result = await this.run(
      'dropClaims',
      peerId,
      options.linkId ?? '',
      options.closed ? '1' : '',
      options.ttlMs,
    );
    if (!Array.isArray(result)) throw new Error('unexpected reply from dropClaims');
    const rows: unknown = result[1];
    const tell: LinkNotice[] = [];
    if (Array.isArray(rows))
      for (const row of rows)
        if (Array.isArray(row) && row.length >= 2) tell.push({ peerId: text(row[0]), linkId: text(row[1]) });
    return { had: Number(result[0]) === 1, tell };
  }

  async linkGone(linkId: string, how: LinkGone): Promise<{ tell: string[]; link?: LinkEntry }> {
    const result = how.closed
      ? await this.run('linkGone', linkId, '1', how.ttlMs, '', 0)
      : await this.run('linkGone', linkId, '', how.ttlMs, how.survivor ?? '', how.maxClientLinks);
    if (!Array.isArray(result)) throw new Error('unexpected reply from linkGone');
    const status = text(result[0]);
    const rows: unknown = result[1];
    if (status === 'closed') return { tell: Array.isArray(rows) ? rows.map(text) : [] };
    if (status === 'paired') {
      const link = toLink(rows);
      return link ? { tell: [], link } : { tell: [] };
    }
    return { tell: [] };
  }

  /** Puts peer ids taken with takeInstancePeers back, when their removal failed. */
  async returnInstancePeers(instanceId: string, ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.redis.sadd(`${this.prefix}instpeers:${instanceId}`, ...ids);
  }

  /** Peer ids registered by `instanceId`, up to `count` at a time, removed from its set (for reaping). */
  async takeInstancePeers(instanceId: string, count: number): Promise<string[]> {
    const ids = await this.redis.spop(`${this.prefix}instpeers:${instanceId}`, count);
    return ids.map(text);
  }
}
