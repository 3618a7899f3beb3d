/**
 * What lets several signaling instances serve one network through Redis: the shared registry, the routing
 * of messages to peers connected to another instance (pub/sub, one channel per instance), the news that
 * relay capacity was freed somewhere (so waiting requests are retried everywhere), and the liveness of
 * instances: each refreshes a key with an expiry, and the others remove the peers of one whose key expired.
 *
 * A peer's id starts with the id of the instance it is connected to, so routing needs no lookup.
 */
import { Redis } from 'ioredis';
import { randomBytes, toBase64Url } from '@underpass/shared/bytes';
import { randomId } from '@underpass/shared/signaling';
import { errorMessage } from '@underpass/shared/errors';
import { silentLogger, type Logger } from '@underpass/shared/logger';
import { DEFAULT_REDIS_PREFIX, RedisRegistry } from './redis-registry.js';

export type RedisClusterOptions = {
  /** redis:// or rediss:// URL. */
  url: string;
  /** An instance that stops refreshing its key for this long is dead; its peers are removed. Default 10 s. */
  expiryMs?: number;
  /** Prefix of every key and channel, so several networks can share one Redis. Default "underpass:". */
  prefix?: string;
  logger?: Logger;
};

/** An instance that stops refreshing its liveness key for this long is dead. */
export const DEFAULT_REDIS_EXPIRY_MS = 10_000;
/** Length of an instance id: base64url of 8 random bytes. */
const INSTANCE_ID_LENGTH = 11;
/** At most this often does an instance announce freed capacity to the others. */
const CAPACITY_ANNOUNCE_MS = 50;
const REAP_BATCH = 200;
/**
 * How long an instance's channel may have no subscriber before the instance is taken for dead. A message
 * forwarded to it that nobody received (PUBLISH answers 0) is the first sign: a killed instance's Redis
 * connections close at once, but its liveness key lives on until the expiry, and until then its peers stay
 * registered — ghosts that no message reaches, which the broker still hands out as relays and exits. A live
 * instance whose subscriber connection is being re-established is back within this.
 */
export const UNHEARD_GRACE_MS = 1_000;

export type ClusterHandlers = {
  /** A message for a peer on this instance arrived from another instance. */
  deliver(peerId: string, text: string): void;
  /** Another instance freed relay capacity (or a relay joined there). */
  capacity(): void;
  /** An exit connected here was replaced through another instance: tell it so and close its socket. */
  replaced(peerId: string): void;
  /** Removes a peer of a dead instance, telling the other members of its links (Broker.leave). */
  reap(peerId: string): Promise<void>;
  /**
   * The other instances took this one for dead (it could not refresh its key in time) and removed its
   * peers from the registry: they must reconnect to be registered again.
   */
  lost(): void;
};

export class RedisCluster {
  readonly instanceId = toBase64Url(randomBytes(8));
  readonly registry: RedisRegistry;
  private readonly prefix: string;
  private readonly expiryMs: number;
  private readonly logger: Logger;
  private handlers: ClusterHandlers | undefined;
  private heartbeat: ReturnType<typeof setInterval> | undefined;
  private lastAnnounce = 0;
  private announceTimer: ReturnType<typeof setTimeout> | undefined;
  private reaping = false;
  /** Instances a forwarded message did not reach, each with the timer that checks them again. */
  private readonly unheard = new Map<string, ReturnType<typeof setTimeout>>();
  private closed = false;
  private closing: Promise<void> | undefined;
  private registered = false;

  private constructor(
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    options: RedisClusterOptions,
  ) {
    this.prefix = options.prefix ?? DEFAULT_REDIS_PREFIX;
    this.expiryMs = options.expiryMs ?? DEFAULT_REDIS_EXPIRY_MS;
    this.logger = options.logger ?? silentLogger;
    this.registry = new RedisRegistry({ redis, instanceId: this.instanceId, prefix: this.prefix });
  }

  /** Connects both Redis connections; rejects if Redis cannot be reached. */
  static async connect(options: RedisClusterOptions): Promise<RedisCluster> {
    const common = { lazyConnect: true, maxRetriesPerRequest: 3, enableAutoPipelining: true } as const;
    const redis = new Redis(options.url, common);
    const subscriber = new Redis(options.url, { ...common, enableAutoPipelining: false });
    const logger = options.logger ?? silentLogger;
    for (const connection of [redis, subscriber])
      connection.on('error', (error: Error) => logger.warn({ err: error.message }, 'redis error'));
    try {
      await Promise.all([redis.connect(), subscriber.connect()]);
    } catch (error) {
      redis.disconnect();
      subscriber.disconnect();
      throw error;
    }
    return new RedisCluster(redis, subscriber, options);
  }

  /** Starts routing and heartbeats; call once, before peers join. */
  async start(handlers: ClusterHandlers): Promise<void> {
    this.handlers = handlers;
    const mine = this.channel(this.instanceId);
    const replaced = this.replacedChannel(this.instanceId);
    const capacity = `${this.prefix}capacity`;
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === capacity) {
        if (message !== this.instanceId) this.handlers?.capacity();
        return;
      }
      if (channel === replaced) {
        this.handlers?.replaced(message);
        return;
      }
      if (channel !== mine) return;
      const cut = message.indexOf('\n');
      if (cut <= 0) return;
      this.handlers?.deliver(message.slice(0, cut), message.slice(cut + 1));
    });
    await this.subscriber.subscribe(mine, replaced, capacity);
    await this.beat();
    this.heartbeat = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.expiryMs / 3)));
    this.heartbeat.unref();
  }

  /** A fresh peer id routed to this instance. */
  newPeerId(): string {
    return this.instanceId + randomId();
  }

  /** Sends `text` to a peer connected to another instance; false when the id is not another instance's. */
  forward(peerId: string, text: string): boolean {
    const instance = this.instanceOf(peerId);
    if (this.closed || instance === undefined || instance === this.instanceId) return false;
    this.redis.publish(this.channel(instance), `${peerId}\n${text}`).then(
      (receivers) => {
        if (receivers === 0) this.suspect(instance);
      },
      (error: unknown) => {
        this.logger.warn({ err: errorMessage(error) }, 'cannot forward a message to another instance');
      },
    );
    return true;
  }

  /**
   * Tells the instance a peer is connected to that its registration was taken over (Broker's onReplaced). A
   * peer of a dead instance hears nothing, and needs not: its registration is gone from the registry, and from
   * its instance's set of peers, so reaping that instance cannot touch the new holder.
   */
  tellReplaced(peerId: string): void {
    const instance = this.instanceOf(peerId);
    if (this.closed || instance === undefined || instance === this.instanceId) return;
    this.redis.publish(this.replacedChannel(instance), peerId).catch((error: unknown) => {
      this.logger.warn({ err: errorMessage(error) }, 'cannot tell another instance of a replaced exit');
    });
  }

  /** Tells the other instances that relay capacity was freed here; coalesced to one message per 50 ms. */
  announceCapacity(): void {
    if (this.closed || this.announceTimer) return;
    const wait = Math.max(0, this.lastAnnounce + CAPACITY_ANNOUNCE_MS - Date.now());
    this.announceTimer = setTimeout(() => {
      this.announceTimer = undefined;
      this.lastAnnounce = Date.now();
      this.redis.publish(`${this.prefix}capacity`, this.instanceId).catch(() => {});
    }, wait);
  }

  /**
   * Leaves the network: removes the peers still registered by this instance (those whose own removal failed
   * or had not finished), then this instance's liveness key, and closes both connections. Nobody reaps an
   * instance that left `instances`, so it leaves only once it holds no peers; if some could not be removed,
   * it stays listed with its liveness key gone, and the others reap those peers as for a dead instance.
   */
  async close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = (async () => {
      clearInterval(this.heartbeat);
      clearTimeout(this.announceTimer);
      for (const timer of this.unheard.values()) clearTimeout(timer);
      this.unheard.clear();
      // Still open for forwarding: the other members of the leftover peers' links hear link-closed.
      const clean = await this.removeOwnPeers();
      this.closed = true;
      try {
        await this.redis.del(this.aliveKey(this.instanceId));
        if (clean) await this.redis.srem(`${this.prefix}instances`, this.instanceId);
      } catch (error) {
        this.logger.warn({ err: errorMessage(error) }, 'cannot deregister this instance');
      }
      this.subscriber.disconnect();
      await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.closing;
  }

  /** Removes the peers this instance still has registered; false if some may be left behind. */
  private async removeOwnPeers(): Promise<boolean> {
    let clean = true;
    let removed = 0;
    try {
      for (;;) {
        const ids = await this.registry.takeInstancePeers(this.instanceId, REAP_BATCH);
        if (ids.length === 0) break;
        const failed: string[] = [];
        for (const id of ids) {
          try {
            if (this.handlers) await this.handlers.reap(id);
            else await this.registry.removePeer(id);
            removed++;
          } catch (error) {
            this.logger.warn(
              { peerId: id, err: errorMessage(error) },
              'cannot remove a peer of this instance',
            );
            failed.push(id);
          }
        }
        if (failed.length > 0) {
          // Back into the set, so whoever reaps this instance finds them; and no second round with them.
          await this.registry.returnInstancePeers(this.instanceId, failed);
          clean = false;
          break;
        }
      }
    } catch (error) {
      this.logger.warn({ err: errorMessage(error) }, 'cannot remove the peers of this instance');
      return false;
    }
    if (removed > 0) this.logger.info({ peers: removed }, 'removed the peers left on this instance');
    return clean;
  }

  /** The instance a peer id was given by (newPeerId); undefined for an id that is no instance's. */
  private instanceOf(peerId: string): string | undefined {
    return peerId.length === INSTANCE_ID_LENGTH + 22 ? peerId.slice(0, INSTANCE_ID_LENGTH) : undefined;
  }

  private channel(instanceId: string): string {
    return `${this.prefix}to:${instanceId}`;
  }

  /** Peer ids of this instance's exits replaced through another instance. */
  private replacedChannel(instanceId: string): string {
    return `${this.prefix}replaced:${instanceId}`;
  }

  private aliveKey(instanceId: string): string {
    return `${this.prefix}instance:${instanceId}`;
  }

  /** Refreshes this instance's liveness and removes the peers of instances whose liveness expired. */
  private async beat(): Promise<void> {
    if (this.closed) return;
    try {
      const alive = await this.redis.set(this.aliveKey(this.instanceId), '1', 'PX', this.expiryMs, 'GET');
      const listed = await this.redis.sadd(`${this.prefix}instances`, this.instanceId);
      // Our key had expired, or another instance already reaped us: our peers are gone from the registry.
      if (this.registered && (alive === null || listed === 1)) {
        this.logger.error(
          { instance: this.instanceId },
          'this instance was taken for dead; dropping its peers',
        );
        this.handlers?.lost();
      }
      this.registered = true;
      await this.reapOnce();
    } catch (error) {
      this.logger.warn({ err: errorMessage(error) }, 'redis heartbeat failed');
    }
  }

  /** A message forwarded to `instance` reached nobody: unless a subscriber is back in a moment, it is dead. */
  private suspect(instance: string): void {
    if (this.closed || this.unheard.has(instance)) return;
    const timer = setTimeout(() => {
      this.confirmDead(instance)
        .catch((error: unknown) => {
          this.logger.warn(
            { instance, err: errorMessage(error) },
            'cannot check an instance that did not answer',
          );
        })
        .finally(() => this.unheard.delete(instance));
    }, UNHEARD_GRACE_MS);
    timer.unref();
    this.unheard.set(instance, timer);
  }

  /**
   * Takes `instance` for dead if its channel still has no subscriber: its liveness key goes, so every instance
   * reaps it as one whose key expired — this one at once, or at its next heartbeat if a reaping is already under
   * way. Were it alive after all, it finds its key gone at its next heartbeat and has its peers reconnect, as
   * after any reaping.
   */
  private async confirmDead(instance: string): Promise<void> {
    if (this.closed) return;
    const [, subscribers] = (await this.redis.pubsub('NUMSUB', this.channel(instance))) as [string, number];
    if (Number(subscribers) !== 0) return;
    if ((await this.redis.del(this.aliveKey(instance))) === 0) return;
    this.logger.warn(
      { instance, unheardMs: UNHEARD_GRACE_MS },
      'another instance has nobody listening to its messages: taken for dead before its liveness expired',
    );
    await this.reapOnce();
  }

  /** Reaps dead instances, unless a reaping is under way already. */
  private async reapOnce(): Promise<void> {
    if (this.reaping || this.closed) return;
    this.reaping = true;
    try {
      await this.reapDead();
    } finally {
      this.reaping = false;
    }
  }

  private async reapDead(): Promise<void> {
    const instances = await this.redis.smembers(`${this.prefix}instances`);
    for (const instance of instances) {
      if (instance === this.instanceId || this.closed) continue;
      if ((await this.redis.exists(this.aliveKey(instance))) === 1) continue;
      let removed = 0;
      for (;;) {
        const ids = await this.registry.takeInstancePeers(instance, REAP_BATCH);
        if (ids.length === 0) break;
        for (const id of ids) await this.handlers?.reap(id);
        removed += ids.length;
      }
      await this.redis.srem(`${this.prefix}instances`, instance);
      this.logger.info({ instance, peers: removed }, 'removed the peers of an instance that stopped');
    }
  }
}
