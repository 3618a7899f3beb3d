/**
 * The broker's protocol logic, free of sockets: it takes already-validated messages from identified peers
 * and answers through a `send(peerId, msg)` callback. It decides what a peer may do before and after its
 * hello (the hello-first rule, an exit's proof of its key, then roles and link membership) and routes
 * signals between exactly the two members of a link. Making links is the Matchmaker's (matchmaker.ts).
 */
import { systemClock, type Clock } from '@underpass/shared/clock';
import { silentLogger, type LogFields, type Logger } from '@underpass/shared/logger';
import { issueExitKeyChallenge, verifyExitKeyProof, type IssuedChallenge } from '@underpass/shared/signaling';
import { decodeExitKey, randomId } from '@underpass/shared/signaling';
import {
  MAX_RESUME_IDS_PER_CONNECTION,
  SIGNALING_PROTOCOL_VERSION,
  type HelloMessage,
  type LinkResumeMessage,
  type PeerMessage,
  type ServerMessage,
  type SignalingErrorCode,
} from '@underpass/shared/signaling';
import { Matchmaker, type MatchObserver, type Member } from './matchmaker.js';
import type { LinkEntry, Registry, ReplacedPeer } from './registry.js';

/** Link memberships remembered locally; beyond this many, the oldest are forgotten (it is only a cache). */
const LINK_CACHE_SIZE = 50_000;
/**
 * How long a claim (`link-resume`) waits for the other member, and how long a closed link's id is kept for a
 * late claimant. Long enough for a peer's reconnect backoff (at most 8 s a step) after a redeploy.
 */
export const DEFAULT_CLAIM_TTL_MS = 60_000;
/** Claims made through this instance and not yet paired; beyond, `rate-limited` (see handleResume). */
export const DEFAULT_MAX_PENDING_CLAIMS = 50_000;

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
  logger?: Logger;
  observer?: MatchObserver;
  /** Called when relay capacity appears here (a relay joined, a link closed), e.g. to tell other instances. */
  onCapacityFreed?: () => void;
  /** `now` for match latencies, timers for requests waiting for a relay. Default: the system clock. */
  clock?: Clock;
  /** How long an unpaired claim of a link lives. Default DEFAULT_CLAIM_TTL_MS. */
  claimTtlMs?: number;
  /** Unpaired claims made through this instance at once. Default DEFAULT_MAX_PENDING_CLAIMS. */
  maxPendingClaims?: number;
  /** Told how each claimed link id fared, for the metrics. */
  onClaim?: (outcome: ClaimOutcome) => void;
  /**
   * An exit's registration was taken over by a connection that proved the same key afresh: the old peer, on
   * whichever instance, must be told `replaced` and its socket closed (the server's job: it holds the sockets).
   */
  onReplaced?: (peerId: string) => void;
};

/** What became of one claimed link id. */
export type ClaimOutcome = 'paired' | 'pending' | 'member' | 'closed' | 'refused';

/**
 * Where a connection stands in its handshake. The connection holds it; only `admit` moves it on.
 * 'proving': an exit said hello and owes the answer to `issued`. 'admitted' once its hello (and proof) were
 * accepted; the registration itself (`join`) runs in the connection's queue, so messages behind it wait.
 */
export type HandshakeStage =
  | { step: 'hello' }
  | { step: 'proving'; hello: HelloMessage; issued: IssuedChallenge }
  | { step: 'admitted' };

export const HANDSHAKE_START: HandshakeStage = { step: 'hello' };
const ADMITTED: HandshakeStage = { step: 'admitted' };

/** What the connection does with a message, as `admit` decided; `stage` is the connection's next one. */
export type Admission =
  /** A hello (with its proof, for an exit) was accepted: register it with `join`, in the queue. */
  | { action: 'join'; hello: HelloMessage; stage: HandshakeStage }
  /** The exit was sent its challenge; the message is done with. */
  | { action: 'prove'; stage: HandshakeStage }
  /** A joined peer's message: `handle` it, in the queue. */
  | { action: 'handle' }
  /** The broker sent `not-allowed`; the connection closes with 1008 and counts `why`. */
  | { action: 'refuse'; why: 'no-hello' | 'bad-proof'; closeReason: string };

/** 'violation' means the peer broke the protocol; the server counts these and closes repeat offenders. */
export type HandleOutcome = 'ok' | 'violation';

export type JoinResult =
  | { ok: true }
  | { ok: false; code: SignalingErrorCode; message: string; reason: 'duplicate-peer' | 'duplicate-exit-key' };

export type ExitSummary = {
  peerId: string;
  exitKey: string;
  policy: string;
  load: number;
  /** Present (true) only for an exit that serves torrent streams. */
  torrents?: true;
};

export class Broker {
  private readonly registry: Registry;
  private readonly send: BrokerOptions['send'];
  private readonly newId: () => string;
  private readonly logger: Logger;
  private readonly matchmaker: Matchmaker;
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
  private stopping = false;
  private readonly clock: Clock;
  private readonly claimTtlMs: number;
  private readonly maxPendingClaims: number;
  /** Link ids each joined peer of this instance claimed so far (bounded per connection). */
  private readonly claimsMade = new Map<string, number>();
  /** Unpaired claims made here ("peerId linkId" → when they expire), oldest first: the per-instance bound. */
  private readonly pendingClaims = new Map<string, number>();
  /** The keys of pendingClaims by peer, so a peer's claims stop counting as soon as it leaves. */
  private readonly pendingByPeer = new Map<string, Set<string>>();

  constructor(private readonly options: BrokerOptions) {
    this.registry = options.registry;
    this.send = options.send;
    this.newId = options.newId ?? randomId;
    this.logger = options.logger ?? silentLogger;
    this.clock = options.clock ?? systemClock;
    this.claimTtlMs = options.claimTtlMs ?? DEFAULT_CLAIM_TTL_MS;
    this.maxPendingClaims = options.maxPendingClaims ?? DEFAULT_MAX_PENDING_CLAIMS;
    this.matchmaker = new Matchmaker({
      registry: options.registry,
      send: options.send,
      newId: this.newId,
      remember: (link) => this.remember(link),
      maxLinksPerClient: options.maxLinksPerClient,
      matchWaitMs: options.matchWaitMs ?? 0,
      maxWaitingRequests: options.maxWaitingRequests ?? Infinity,
      clock: options.clock ?? systemClock,
      logger: this.logger,
      observer: options.observer,
    });
  }

  /** Requests waiting for a relay now. */
  get waitingRequests(): number {
    return this.matchmaker.waitingRequests;
  }

  /**
   * The handshake rules, decided before any registry work: the first message must be hello; an exit's hello
   * is answered with a challenge, and its next message must be a `prove` that verifies against the key it
   * announced. Everything after that is for `handle`. `who` goes into the log line of a failed proof.
   */
  admit(peerId: string, stage: HandshakeStage, msg: PeerMessage, who: LogFields = {}): Admission {
    switch (stage.step) {
      case 'hello':
        if (msg.type !== 'hello') {
          this.error(peerId, 'not-allowed', 'the first message must be hello');
          return { action: 'refuse', why: 'no-hello', closeReason: 'no hello' };
        }
        if (msg.role !== 'exit') return { action: 'join', hello: msg, stage: ADMITTED };
        return this.challenge(peerId, msg);
      case 'proving': {
        const exitKey = stage.hello.exitKey === undefined ? undefined : decodeExitKey(stage.hello.exitKey);
        if (msg.type !== 'prove' || !exitKey) {
          this.error(peerId, 'not-allowed', 'an exit must answer the challenge with prove');
          return { action: 'refuse', why: 'bad-proof', closeReason: 'no proof' };
        }
        if (!verifyExitKeyProof(stage.issued, exitKey, msg.proof)) {
          this.logger.info({ peerId, ...who }, 'an exit failed to prove its key');
          this.error(peerId, 'not-allowed', 'the proof does not match the announced exitKey');
          return { action: 'refuse', why: 'bad-proof', closeReason: 'bad proof' };
        }
        return { action: 'join', hello: stage.hello, stage: ADMITTED };
      }
      case 'admitted':
        return { action: 'handle' };
    }
  }

  /** Nobody may announce an exit key without holding its secret half (see exit-proof.ts). */
  private challenge(peerId: string, hello: HelloMessage): Admission {
    const issued = issueExitKeyChallenge();
    this.send(peerId, { type: 'challenge', ...issued.challenge });
    return { action: 'prove', stage: { step: 'proving', hello, issued } };
  }

  /** Registers a peer that said hello under the id the server gave its connection, and welcomes it. */
  async join(peerId: string, hello: HelloMessage): Promise<JoinResult> {
    const result = await this.registry.addPeer(
      {
        peerId,
        role: hello.role,
        capacity: hello.capacity,
        exitKey: hello.exitKey,
        policy: hello.policy,
        torrents: hello.torrents,
        pings: hello.pings,
      },
      // An exit gets here only with a verified proof (admit): it holds the key's secret, so another peer
      // registered with that key is its own stale registration (a socket not yet seen closed, a dead
      // instance's) or a second process with its key. Either way the proven one is who the key is now.
      { takeOverExitKey: hello.role === 'exit' },
    );
    if (!result.ok) {
      const message =
        result.reason === 'duplicate-exit-key'
          ? 'another connected exit already announced this exitKey'
          : 'peer id already in use';
      return { ok: false, code: 'not-allowed', message, reason: result.reason };
    }
    if (result.replaced) await this.replaced(result.replaced, peerId);
    this.members.set(peerId, { peerId, role: hello.role, capacity: hello.capacity });
    this.logger.info({ peerId, role: hello.role, capacity: hello.capacity }, 'peer joined');
    const welcome: ServerMessage = { type: 'welcome', v: SIGNALING_PROTOCOL_VERSION, peerId };
    if (this.options.heartbeatMs !== undefined) welcome.heartbeatMs = this.options.heartbeatMs;
    this.send(peerId, welcome);
    if (hello.role === 'relay') this.capacityChanged();
    return { ok: true };
  }

  /**
   * Forgets a peer and closes its links, telling the other member of each: a peer whose socket closed while
   * this server runs is taken as gone. Not so when the server itself is what goes away (shutdown, or another
   * instance reaping a dead one, `tellLinkMembers: false`): that says nothing of the peers, whose WebRTC links
   * do not need the server, and a `link-closed` would make the other member tear a working link down.
   */
  async leave(peerId: string, options: { tellLinkMembers?: boolean } = {}): Promise<void> {
    this.forgetLocally(peerId);
    const tell = options.tellLinkMembers !== false && !this.stopping;
    // Its pending claims: a peer gone while the server runs holds no link any more; one whose server went
    // away says nothing.
    const dropped = await this.registry.dropClaims(peerId, { closed: tell, ttlMs: this.claimTtlMs });
    for (const notice of dropped.tell)
      this.send(notice.peerId, { type: 'link-closed', linkId: notice.linkId });
    const links = await this.registry.removePeer(peerId);
    if (!links) return;
    await this.linksGone(peerId, links, tell);
    this.logger.info({ peerId, links: links.length }, 'peer left');
    if (links.length > 0) this.capacityChanged();
  }

  /**
   * The registry removed `old` (with its claims) for `by`, which proved the same exit key. Its links go as a
   * dead instance's peer's do, without `link-closed`: the likeliest `old` is this very exit's earlier socket,
   * whose WebRTC links are up and which it claims again right after welcome (link-resume); the surviving
   * member stands for its side. A second process's links die with it, and their members notice that.
   */
  private async replaced(old: ReplacedPeer, by: string): Promise<void> {
    this.forgetLocally(old.peerId);
    this.options.onReplaced?.(old.peerId);
    await this.linksGone(old.peerId, old.links, false);
    this.logger.info(
      { peerId: by, replaced: old.peerId, links: old.links.length },
      'an exit proved its key afresh and took over the registration of another connection',
    );
    if (old.links.length > 0) this.capacityChanged();
  }

  /** What this instance keeps about a peer, beyond the registry. */
  private forgetLocally(peerId: string): void {
    this.members.delete(peerId);
    this.claimsMade.delete(peerId);
    for (const key of this.pendingByPeer.get(peerId) ?? []) this.pendingClaims.delete(key);
    this.pendingByPeer.delete(peerId);
    this.matchmaker.forget(peerId);
  }

  /**
   * After the registry forgot `peerId` and its `links`: with `tell`, their other members hear `link-closed`;
   * without, each link passes to the claims made for it (see leave()).
   */
  private async linksGone(peerId: string, links: readonly LinkEntry[], tell: boolean): Promise<void> {
    for (const link of links) {
      this.linkCache.delete(link.linkId);
      const other = link.initiator === peerId ? link.hop : link.initiator;
      if (tell) {
        this.send(other, { type: 'link-closed', linkId: link.linkId });
        await this.closedForClaimants(link.linkId);
      } else {
        // A member of a dead (or stopping) instance: the link passes to the claims its members made from new
        // sockets, to other instances (with Redis; a lone server's registry goes away with it).
        const gone = await this.registry.linkGone(link.linkId, {
          closed: false,
          survivor: other,
          maxClientLinks: this.options.maxLinksPerClient,
          ttlMs: this.claimTtlMs,
        });
        if (gone.link) this.resumed(gone.link);
      }
    }
  }

  /**
   * Retries the waiting requests, oldest first: called when a relay joins or a link closes here, and by
   * the server when another instance says capacity was freed there.
   */
  capacityFreed(): void {
    this.matchmaker.capacityFreed();
  }

  private capacityChanged(): void {
    this.options.onCapacityFreed?.();
    this.matchmaker.capacityFreed();
  }

  /**
   * Drops the waiting requests without answering them: on shutdown their sockets are closing anyway. From now
   * on peers leave without their links' other members being told (see leave()).
   */
  stop(): void {
    this.stopping = true;
    this.matchmaker.stop();
  }

  async handle(peerId: string, msg: PeerMessage): Promise<HandleOutcome> {
    const peer = this.members.get(peerId) ?? (await this.registry.getPeer(peerId));
    if (!peer) return 'ok';
    switch (msg.type) {
      case 'hello':
        return this.refuse(peerId, 'hello may be sent once, as the first message');
      case 'path-request':
        if (peer.role !== 'client') return this.refuse(peerId, 'only clients request paths', msg.requestId);
        await this.matchmaker.pathRequest(peer.peerId, msg);
        return 'ok';
      case 'connect-exit':
        if (peer.role !== 'relay') return this.refuse(peerId, 'only relays connect to exits', msg.requestId);
        await this.matchmaker.connectExit(peer, msg);
        return 'ok';
      case 'signal': {
        const other = await this.otherMember(peerId, msg.linkId);
        if (other === undefined) return this.unknownLink(peerId, msg.linkId);
        this.send(other, { type: 'signal', linkId: msg.linkId, data: msg.data });
        return 'ok';
      }
      case 'link-closed': {
        const other = await this.otherMember(peerId, msg.linkId);
        if (other !== undefined) {
          // Another close may have won the race between the lookup and here; only the winner forwards.
          this.linkCache.delete(msg.linkId);
          if (await this.registry.closeLink(msg.linkId)) {
            this.send(other, { type: 'link-closed', linkId: msg.linkId });
            await this.closedForClaimants(msg.linkId);
            this.capacityChanged();
            return 'ok';
          }
        }
        // A link this peer only claimed (link-resume) and gave up before the other member claimed it.
        const dropped = await this.registry.dropClaims(peerId, {
          linkId: msg.linkId,
          closed: true,
          ttlMs: this.claimTtlMs,
        });
        this.unpend(peerId, msg.linkId);
        for (const notice of dropped.tell)
          this.send(notice.peerId, { type: 'link-closed', linkId: notice.linkId });
        if (!dropped.had && other === undefined) return this.unknownLink(peerId, msg.linkId);
        return 'ok';
      }
      case 'link-resume':
        await this.resume(peer, msg);
        return 'ok';
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

  /**
   * A peer's claims of links made through its earlier sockets (PROTOCOL.md §1, Reconnecting). Each id is
   * paired with the other member's claim in the registry, atomically; refused ids get one error frame per
   * kind (not counted: a claim is a well-formed request, and the other member may have closed the link).
   */
  private async resume(peer: Member, msg: LinkResumeMessage): Promise<void> {
    const { peerId } = peer;
    const ids = [...new Set(msg.linkIds)];
    const made = this.claimsMade.get(peerId) ?? 0;
    const allowed = Math.max(0, Math.min(ids.length, MAX_RESUME_IDS_PER_CONNECTION - made));
    this.claimsMade.set(peerId, made + allowed);
    const refused: string[] = [];
    const limited: string[] = ids.slice(allowed);
    for (const linkId of ids.slice(0, allowed)) {
      if (this.pendingCount() >= this.maxPendingClaims) {
        limited.push(linkId);
        continue;
      }
      const result = await this.registry.claimLink({
        linkId,
        peerId,
        ttlMs: this.claimTtlMs,
        maxClientLinks: this.options.maxLinksPerClient,
      });
      this.options.onClaim?.(result.status);
      switch (result.status) {
        case 'paired':
          this.resumed(result.link);
          break;
        case 'pending':
          this.pend(peerId, linkId);
          break;
        case 'member':
          break;
        case 'closed':
          this.send(peerId, { type: 'link-closed', linkId });
          break;
        case 'refused':
          if (result.reason === 'limit') limited.push(linkId);
          else if (result.reason === 'mismatch') refused.push(linkId);
          break;
      }
    }
    if (refused.length > 0)
      this.error(peerId, 'unknown-link', `cannot resume ${describeIds(refused)}: not a link of yours`);
    if (limited.length > 0)
      this.error(
        peerId,
        'rate-limited',
        `cannot resume ${describeIds(limited)}: too many links or claims (at most ${MAX_RESUME_IDS_PER_CONNECTION} claims per connection)`,
      );
  }

  /** A link registered again from its members' claims: signals on it need no lookup now. */
  private resumed(link: LinkEntry): void {
    this.remember(link);
    for (const id of [link.initiator, link.hop]) this.unpend(id, link.linkId);
    // Not the link id: it is the capability to claim the link (PROTOCOL.md §1, Reconnecting).
    this.logger.info({ initiator: link.initiator, hop: link.hop }, 'link resumed');
  }

  private pend(peerId: string, linkId: string): void {
    const key = `${peerId} ${linkId}`;
    this.pendingClaims.delete(key);
    this.pendingClaims.set(key, this.clock.now() + this.claimTtlMs);
    let mine = this.pendingByPeer.get(peerId);
    if (!mine) {
      mine = new Set();
      this.pendingByPeer.set(peerId, mine);
    }
    mine.add(key);
  }

  private unpend(peerId: string, linkId: string): void {
    const key = `${peerId} ${linkId}`;
    this.pendingClaims.delete(key);
    this.pendingByPeer.get(peerId)?.delete(key);
  }

  /** Unpaired claims made here that have not expired (those that did are dropped, oldest first). */
  private pendingCount(): number {
    const now = this.clock.now();
    for (const [key, expiresAt] of this.pendingClaims) {
      if (expiresAt > now) break;
      this.pendingClaims.delete(key);
      this.pendingByPeer.get(key.slice(0, key.indexOf(' ')))?.delete(key);
    }
    return this.pendingClaims.size;
  }

  /** A link was closed: whoever claimed it from a new socket is told too. */
  private async closedForClaimants(linkId: string): Promise<void> {
    const gone = await this.registry.linkGone(linkId, { closed: true, ttlMs: this.claimTtlMs });
    for (const claimant of gone.tell) this.send(claimant, { type: 'link-closed', linkId });
  }

  async listExits(): Promise<ExitSummary[]> {
    const exits = await this.registry.listExits();
    return exits.map((e) => ({
      peerId: e.peerId,
      exitKey: e.exitKey ?? '',
      policy: e.policy ?? '',
      load: e.load,
      ...(e.torrents ? { torrents: true as const } : {}),
    }));
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

/** The first few ids of a list and how many there are, for an error message (at most 1024 characters). */
function describeIds(ids: readonly string[]): string {
  const shown = ids.slice(0, 3).join(', ');
  return ids.length <= 3 ? `link ${shown}` : `${ids.length} links (${shown}, …)`;
}
