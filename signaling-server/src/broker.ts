/**
 * The broker's protocol logic, free of sockets: it takes already-validated messages from identified peers
 * and answers through a `send(peerId, msg)` callback. It decides who may do what (roles, link membership),
 * matches paths and routes signals between exactly the two members of a link.
 */
import { randomId } from '../../shared/src/signaling/ids.js';
import {
  SIGNALING_PROTOCOL_VERSION,
  type ConnectExitMessage,
  type HelloMessage,
  type LinkMessage,
  type PathRequestMessage,
  type PeerMessage,
  type ServerMessage,
  type SignalingErrorCode,
} from '../../shared/src/signaling/messages.js';
import { silentLogger, type SignalingLogger } from './logger.js';
import type { LinkEntry, PeerEntry, Registry } from './registry.js';

/** Link memberships remembered locally; beyond this many, the oldest are forgotten (it is only a cache). */
const LINK_CACHE_SIZE = 50_000;

/** What the broker reports about its work; the server turns these into Prometheus metrics. */
export interface BrokerObserver {
  /** A path was handed out `latencyMs` after its request arrived (including any wait for a relay). */
  matched(mode: 'two-hop' | 'direct', latencyMs: number): void;
  /** A path request ended without a path. */
  unmatched(code: SignalingErrorCode): void;
}

export type BrokerOptions = {
  registry: Registry;
  /** Delivers a message to a connected peer; must ignore peers that are gone. */
  send: (peerId: string, msg: ServerMessage) => void;
  maxLinksPerClient: number;
  /** How long a two-hop request waits for a relay with free capacity before `no-relay-available`. 0: not at all. */
  matchWaitMs?: number;
  /** Requests waiting for a relay at once, over all clients; beyond it, `no-relay-available` at once. */
  maxWaitingRequests?: number;
  /** Welcome's `heartbeatMs`: how often a peer must send something. */
  heartbeatMs?: number;
  newId?: () => string;
  logger?: SignalingLogger;
  observer?: BrokerObserver;
  /** Called when relay capacity appears here (a relay joined, a link closed), e.g. to tell other instances. */
  onCapacityFreed?: () => void;
  /** Monotonic milliseconds, for latencies. Default performance.now. */
  clock?: () => number;
};

/** What the broker needs to know about the sender of a message. */
type Member = Pick<PeerEntry, 'peerId' | 'role' | 'capacity'>;

type Waiter = {
  client: string;
  msg: PathRequestMessage;
  /** The exit chosen on arrival; re-checked on every retry (see retry()). */
  exit: PeerEntry;
  started: number;
  timer: ReturnType<typeof setTimeout>;
};

/** 'violation' means the peer broke the protocol; the server counts these and closes repeat offenders. */
export type HandleOutcome = 'ok' | 'violation';

export type JoinResult =
  | { ok: true }
  | { ok: false; code: SignalingErrorCode; message: string; reason: 'duplicate-peer' | 'duplicate-exit-key' };

export type ExitSummary = { peerId: string; exitKey: string; policy: string; load: number };

export class Broker {
  private readonly registry: Registry;
  private readonly send: BrokerOptions['send'];
  private readonly newId: () => string;
  private readonly logger: SignalingLogger;
  private readonly clock: () => number;
  /** Two-hop requests waiting for relay capacity, oldest first. */
  private readonly waiting = new Set<Waiter>();
  private retrying: Promise<void> | undefined;
  private retryAgain = false;
  /**
   * Peers that joined through this broker: their role and capacity never change, so messages from them
   * need no registry lookup (a round trip to Redis saved per message).
   */
  private readonly members = new Map<string, Member>();
  /**
   * Who the two members of a link are never changes, so it is cached: signals need no registry lookup.
   * Closing stays the registry's call (closeLink is atomic). With several instances, a link closed on
   * another instance may stay cached here for a while; signals on it then reach a peer that already
   * dropped it (and ignores them) instead of earning `unknown-link` — never a peer outside the link.
   */
  private readonly linkCache = new Map<string, LinkEntry>();

  constructor(private readonly options: BrokerOptions) {
    this.registry = options.registry;
    this.send = options.send;
    this.newId = options.newId ?? randomId;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? (() => performance.now());
  }

  /** Requests waiting for a relay now. */
  get waitingRequests(): number {
    return this.waiting.size;
  }

  /** Registers a peer that said hello under the id the server gave its connection, and welcomes it. */
  async join(peerId: string, hello: HelloMessage): Promise<JoinResult> {
    const result = await this.registry.addPeer({
      peerId,
      role: hello.role,
      capacity: hello.capacity,
      exitKey: hello.exitKey,
      policy: hello.policy,
    });
    if (!result.ok) {
      const message =
        result.reason === 'duplicate-exit-key'
          ? 'another connected exit already announced this exitKey'
          : 'peer id already in use';
      return { ok: false, code: 'not-allowed', message, reason: result.reason };
    }
    this.members.set(peerId, { peerId, role: hello.role, capacity: hello.capacity });
    this.logger.info({ peerId, role: hello.role, capacity: hello.capacity }, 'peer joined');
    const welcome: ServerMessage = { type: 'welcome', v: SIGNALING_PROTOCOL_VERSION, peerId };
    if (this.options.heartbeatMs !== undefined) welcome.heartbeatMs = this.options.heartbeatMs;
    this.send(peerId, welcome);
    if (hello.role === 'relay') this.capacityChanged();
    return { ok: true };
  }

  /** Forgets a peer and closes its links, telling the other member of each. */
  async leave(peerId: string): Promise<void> {
    this.members.delete(peerId);
    for (const waiter of this.waiting) {
      if (waiter.client !== peerId) continue;
      clearTimeout(waiter.timer);
      this.waiting.delete(waiter);
    }
    const links = await this.registry.removePeer(peerId);
    if (!links) return;
    for (const link of links) {
      this.linkCache.delete(link.linkId);
      const other = link.initiator === peerId ? link.hop : link.initiator;
      this.send(other, { type: 'link-closed', linkId: link.linkId });
    }
    this.logger.info({ peerId, links: links.length }, 'peer left');
    if (links.length > 0) this.capacityChanged();
  }

  /**
   * Retries the waiting requests, oldest first: called when a relay joins or a link closes here, and by
   * the server when another instance says capacity was freed there.
   */
  capacityFreed(): void {
    if (this.waiting.size === 0) return;
    if (this.retrying) {
      this.retryAgain = true;
      return;
    }
    this.retrying = (async () => {
      do {
        this.retryAgain = false;
        for (const waiter of [...this.waiting]) {
          if (!this.waiting.has(waiter)) continue;
          const outcome = await this.retry(waiter);
          if (outcome === 'no-relay') break;
          clearTimeout(waiter.timer);
          this.waiting.delete(waiter);
        }
      } while (this.retryAgain && this.waiting.size > 0);
    })()
      .catch((error: unknown) => this.logger.error({ err: String(error) }, 'error while retrying requests'))
      .finally(() => {
        this.retrying = undefined;
      });
  }

  /**
   * One more attempt for a waiting request. The exit it chose on arrival may have left during the wait: it is
   * looked up again, and a request that named no exit gets the least-loaded one of now.
   */
  private async retry(waiter: Waiter): Promise<'done' | 'no-relay'> {
    const { client, msg, started } = waiter;
    // An exit that reconnected under the same key is the same exit: its new connection serves the request.
    let exit =
      waiter.exit.exitKey === undefined ? undefined : await this.registry.getExit(waiter.exit.exitKey);
    if (!exit && msg.exitKey === undefined) exit = await this.registry.pickExit();
    if (!exit || exit.exitKey === undefined) {
      if (msg.exitKey !== undefined)
        this.fail(
          client,
          'unknown-exit',
          'the exit left while the request waited for a relay',
          msg.requestId,
        );
      else this.fail(client, 'no-exit-available', 'no exit is connected', msg.requestId);
      return 'done';
    }
    waiter.exit = exit;
    return this.tryMatch(client, msg, exit, started);
  }

  private capacityChanged(): void {
    this.options.onCapacityFreed?.();
    this.capacityFreed();
  }

  /** Drops the waiting requests without answering them: on shutdown their sockets are closing anyway. */
  stop(): void {
    for (const waiter of this.waiting) clearTimeout(waiter.timer);
    this.waiting.clear();
  }

  async handle(peerId: string, msg: PeerMessage): Promise<HandleOutcome> {
    const peer = this.members.get(peerId) ?? (await this.registry.getPeer(peerId));
    if (!peer) return 'ok';
    switch (msg.type) {
      case 'hello':
        return this.refuse(peerId, 'hello may be sent once, as the first message');
      case 'path-request':
        if (peer.role !== 'client') return this.refuse(peerId, 'only clients request paths', msg.requestId);
        await this.pathRequest(peer, msg);
        return 'ok';
      case 'connect-exit':
        if (peer.role !== 'relay') return this.refuse(peerId, 'only relays connect to exits', msg.requestId);
        await this.connectExit(peer, msg);
        return 'ok';
      case 'signal': {
        const other = await this.otherMember(peerId, msg.linkId);
        if (other === undefined) return this.unknownLink(peerId, msg.linkId);
        this.send(other, { type: 'signal', linkId: msg.linkId, data: msg.data });
        return 'ok';
      }
      case 'link-closed': {
        const other = await this.otherMember(peerId, msg.linkId);
        if (other === undefined) return this.unknownLink(peerId, msg.linkId);
        // Another close may have won the race between the lookup and here; only the winner forwards.
        this.linkCache.delete(msg.linkId);
        if (await this.registry.closeLink(msg.linkId)) {
          this.send(other, { type: 'link-closed', linkId: msg.linkId });
          this.capacityChanged();
        }
        return 'ok';
      }
      case 'heartbeat':
      case 'prove':
        // Heartbeats only reset the idle timer (the server did that); a late prove is harmless.
        return 'ok';
      case 'load':
        if (peer.role === 'client') return this.refuse(peerId, 'only relays and exits report load');
        await this.registry.reportLoad(peerId, msg.load);
        return 'ok';
    }
  }

  async listExits(): Promise<ExitSummary[]> {
    const exits = await this.registry.listExits();
    return exits.map((e) => ({
      peerId: e.peerId,
      exitKey: e.exitKey ?? '',
      policy: e.policy ?? '',
      load: e.load,
    }));
  }

  private async pathRequest(client: Member, msg: PathRequestMessage): Promise<void> {
    const { requestId } = msg;
    const started = this.clock();
    const exit = await this.registry.pickExit(msg.exitKey);
    if (!exit || exit.exitKey === undefined) {
      if (msg.exitKey !== undefined)
        this.fail(client.peerId, 'unknown-exit', 'no connected exit has this exitKey', requestId);
      else this.fail(client.peerId, 'no-exit-available', 'no exit is connected', requestId);
      return;
    }
    const outcome = await this.tryMatch(client.peerId, msg, exit, started);
    if (outcome !== 'no-relay') return;
    const waitMs = this.options.matchWaitMs ?? 0;
    const full = this.waiting.size >= (this.options.maxWaitingRequests ?? Infinity);
    let mine = 0;
    for (const w of this.waiting) if (w.client === client.peerId) mine++;
    if (waitMs <= 0 || full || mine >= this.options.maxLinksPerClient) {
      this.fail(client.peerId, 'no-relay-available', 'no relay has free capacity', requestId);
      return;
    }
    // The connection keeps being served while this request waits: nothing here blocks its queue.
    const waiter: Waiter = {
      client: client.peerId,
      msg,
      exit,
      started,
      timer: setTimeout(() => {
        if (!this.waiting.delete(waiter)) return;
        this.fail(
          client.peerId,
          'no-relay-available',
          `no relay had free capacity within ${waitMs} ms`,
          requestId,
        );
      }, waitMs),
    };
    this.waiting.add(waiter);
  }

  /** One attempt at a path; 'no-relay' leaves the request unanswered (the caller may wait and retry). */
  private async tryMatch(
    clientId: string,
    msg: PathRequestMessage,
    exit: PeerEntry,
    started: number,
  ): Promise<'done' | 'no-relay'> {
    const { requestId } = msg;
    const exitKey = exit.exitKey ?? '';
    const linkId = this.newId();
    const result = await this.registry.createLink({
      linkId,
      initiator: clientId,
      hop: msg.mode === 'direct' ? exit.peerId : { bestRelay: true },
      maxInitiatorLinks: this.options.maxLinksPerClient,
    });
    if (result.ok) this.remember(result.link);
    else {
      switch (result.reason) {
        case 'no-relay':
          return 'no-relay';
        case 'limit':
          this.fail(
            clientId,
            'rate-limited',
            `a client may hold ${this.options.maxLinksPerClient} links; close one first`,
            requestId,
          );
          return 'done';
        case 'hop-gone':
          this.fail(clientId, 'no-exit-available', 'the exit left while the path was being made', requestId);
          return 'done';
        case 'initiator-gone':
          // Nobody to answer if the client left; if it is still here, the registry lost it (see lost()).
          this.fail(clientId, 'unavailable', 'you are not registered any more; reconnect', requestId);
          return 'done';
      }
    }
    const hop = result.hop;
    const hopRole = hop.role === 'exit' ? 'exit' : 'relay';
    const exitRef = { peerId: exit.peerId, exitKey };
    this.send(hop.peerId, {
      type: 'link',
      linkId,
      initiator: false,
      peer: { peerId: clientId, role: 'client' },
      exit: exitRef,
    });
    this.send(clientId, {
      type: 'path',
      requestId,
      linkId,
      hop: { peerId: hop.peerId, role: hopRole },
      exit: exitRef,
    });
    this.options.observer?.matched(msg.mode, this.clock() - started);
    this.logger.debug(
      { linkId, client: clientId, hop: hop.peerId, exit: exit.peerId, mode: msg.mode },
      'path',
    );
    return 'done';
  }

  /** An error answering a path request: counted as unmatched. */
  private fail(peerId: string, code: SignalingErrorCode, message: string, requestId: string): void {
    this.options.observer?.unmatched(code);
    this.error(peerId, code, message, requestId);
  }

  private async connectExit(relay: Member, msg: ConnectExitMessage): Promise<void> {
    const { requestId } = msg;
    // Not pickExit: a relay's link to an exit is no client path, so it must not count as a pending one.
    const exit = await this.registry.getExit(msg.exitKey);
    if (!exit || exit.exitKey === undefined) {
      this.error(relay.peerId, 'unknown-exit', 'no connected exit has this exitKey', requestId);
      return;
    }
    const linkId = this.newId();
    const result = await this.registry.createLink({
      linkId,
      initiator: relay.peerId,
      hop: exit.peerId,
      // A relay multiplexes circuits over its exit links, so its capacity is a generous bound on them.
      maxInitiatorLinks: relay.capacity ?? 1,
    });
    if (result.ok) this.remember(result.link);
    else {
      if (result.reason === 'limit')
        this.error(
          relay.peerId,
          'rate-limited',
          'too many exit links for this relay; close one first',
          requestId,
        );
      else if (result.reason !== 'initiator-gone')
        this.error(relay.peerId, 'unknown-exit', 'the exit left while the link was being made', requestId);
      return;
    }
    const exitRef = { peerId: exit.peerId, exitKey: exit.exitKey };
    this.send(exit.peerId, {
      type: 'link',
      linkId,
      initiator: false,
      peer: { peerId: relay.peerId, role: 'relay' },
    });
    const reply: LinkMessage = {
      type: 'link',
      linkId,
      requestId,
      initiator: true,
      peer: { peerId: exit.peerId, role: 'exit' },
      exit: exitRef,
    };
    this.send(relay.peerId, reply);
    this.logger.debug({ linkId, relay: relay.peerId, exit: exit.peerId }, 'exit link');
  }

  private remember(link: LinkEntry): void {
    if (this.linkCache.size >= LINK_CACHE_SIZE) {
      const oldest = this.linkCache.keys().next();
      if (!oldest.done) this.linkCache.delete(oldest.value);
    }
    this.linkCache.set(link.linkId, link);
  }

  private async otherMember(peerId: string, linkId: string): Promise<string | undefined> {
    let link = this.linkCache.get(linkId);
    if (!link) {
      link = await this.registry.getLink(linkId);
      if (!link) return undefined;
      this.remember(link);
    }
    if (link.initiator === peerId) return link.hop;
    if (link.hop === peerId) return link.initiator;
    return undefined;
  }

  private unknownLink(peerId: string, linkId: string): HandleOutcome {
    // Not a violation: a trailing ICE candidate after the other side closed the link is normal.
    this.error(peerId, 'unknown-link', `no link ${linkId} of yours`);
    return 'ok';
  }

  private refuse(peerId: string, message: string, requestId?: string): HandleOutcome {
    this.error(peerId, 'not-allowed', message, requestId);
    return 'violation';
  }

  private error(peerId: string, code: SignalingErrorCode, message: string, requestId?: string): void {
    const msg: ServerMessage = { type: 'error', code, message };
    if (requestId !== undefined) msg.requestId = requestId;
    this.send(peerId, msg);
  }
}
