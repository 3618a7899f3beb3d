/**
 * The broker's directory of connected peers and the links between them. The broker only talks to the
 * `Registry` interface, whose operations are async and each atomic on its own (pick-and-assign happens in
 * one call), so a shared store such as Redis can implement it later without changing the broker.
 * `MemoryRegistry` is the single-process implementation.
 */
import type { ExitService, PeerRole } from '@underpass/shared/signaling';
import { LinkClaims, linkSides } from './link-claims.js';
import { RelayHeap, type HeapRelay } from './relay-heap.js';

export type NewPeer = {
  peerId: string;
  role: PeerRole;
  capacity?: number | undefined;
  exitKey?: string | undefined;
  policy?: string | undefined;
  /** (Exits) serves torrent streams; absent: it does not. */
  torrents?: boolean | undefined;
  /** (Exits) answers PING; absent: not known to. */
  pings?: boolean | undefined;
};

export type PeerEntry = {
  readonly peerId: string;
  readonly role: PeerRole;
  readonly capacity: number | undefined;
  readonly exitKey: string | undefined;
  readonly policy: string | undefined;
  /** (Exits) serves torrent streams; false for every other peer. */
  readonly torrents: boolean;
  /** (Exits) said it answers PING; false for every other peer, and for exits from before PING. */
  readonly pings: boolean;
  /** Clients served, as last reported by the peer itself. */
  readonly load: number;
  /** Links on which this peer is the hop (the serving side). */
  readonly assigned: number;
  /** (Exits) paths handed out since the exit last reported its load, so a burst does not all pick one exit. */
  readonly pending: number;
};

/** A link between two peers; `initiator` opens the WebRTC connection, `hop` is the side that serves it. */
export type LinkEntry = {
  readonly linkId: string;
  readonly initiator: string;
  readonly hop: string;
};

export type AddPeerOptions = {
  /**
   * The new peer proved it holds the secret of its exitKey (broker.ts, `admit`): a registration of that key by
   * another peer id is a stale one (a socket not yet noticed closed, a dead instance's) or a second process
   * with the same key, and is removed in the same atomic step, with its links and its claims.
   */
  takeOverExitKey?: boolean;
};

/** A peer removed because another proved its exitKey afresh, and the links it was a member of. */
export type ReplacedPeer = { peerId: string; links: LinkEntry[] };

export type AddPeerResult =
  { ok: true; replaced?: ReplacedPeer } | { ok: false; reason: 'duplicate-peer' | 'duplicate-exit-key' };

export type CreateLinkRequest = {
  linkId: string;
  initiator: string;
  /** A peer id, or 'best-relay' for the relay with the most free capacity. */
  hop: string | { bestRelay: true };
  /** The initiator may have at most this many links on which it is the initiator. */
  maxInitiatorLinks: number;
};

export type CreateLinkResult =
  | { ok: true; link: LinkEntry; hop: PeerEntry }
  | { ok: false; reason: 'initiator-gone' | 'hop-gone' | 'no-relay' | 'limit' };

/** A peer's claim of a link made through an earlier socket (`link-resume`). */
export type ClaimRequest = {
  linkId: string;
  peerId: string;
  /** How long an unpaired claim is kept, and how long a closed link's id is remembered for a late claimant. */
  ttlMs: number;
  /** Links a client may hold as initiator; a relay's exit links are bounded by its capacity, as when made. */
  maxClientLinks: number;
};

export type ClaimResult =
  /** Both members claimed it: the link is registered with their current peer ids. */
  | { status: 'paired'; link: LinkEntry }
  /** Kept until the other member claims it too (or its registered link is released, see linkGone). */
  | { status: 'pending' }
  /** The claimant is already a member of the registered link: nothing to do. */
  | { status: 'member' }
  /** The other member closed the link or left meanwhile: tell the claimant `link-closed`. */
  | { status: 'closed' }
  /**
   * mismatch: the claim cannot pair with the one waiting (same peer, roles that make no link, a third
   * claimant); limit: pairing would exceed the initiator's link limit; gone: the claimant is not registered.
   */
  | { status: 'refused'; reason: 'mismatch' | 'limit' | 'gone' };

/** A peer to be sent `link-closed` for a link id. */
export type LinkNotice = { peerId: string; linkId: string };

export type LinkGone =
  /** Closed by a member or by a member leaving: the link's claimants hear link-closed, and late ones too. */
  | { closed: true; ttlMs: number }
  /**
   * Forgotten without a word (its member's instance died, its exit key was taken over, or the server stops):
   * the link passes to its claimants, the surviving member (still registered) standing for its side. With no
   * claim to pair with yet, the survivor's side waits `ttlMs` as a claim of its own: the survivor holds the link
   * and has no reason to claim it, while the other member claims it from its new socket a moment later.
   */
  | { closed: false; survivor?: string | undefined; maxClientLinks: number; ttlMs: number };

export interface Registry {
  /** Registers a peer; an exitKey another peer registered is refused, or taken over (see AddPeerOptions). */
  addPeer(peer: NewPeer, options?: AddPeerOptions): Promise<AddPeerResult>;
  /**
   * Forgets the peer and every link it is a member of (fixing assigned counts); returns those links, or
   * undefined when the peer was not registered.
   */
  removePeer(peerId: string): Promise<LinkEntry[] | undefined>;
  getPeer(peerId: string): Promise<PeerEntry | undefined>;
  reportLoad(peerId: string, load: number): Promise<void>;
  listExits(): Promise<PeerEntry[]>;
  /**
   * The exit with this key, or the least-loaded exit, among those that offer `needs` (when given); counts a
   * pending assignment on it (a path for a client). A keyed exit that lacks `needs` is undefined, uncharged.
   */
  pickExit(exitKey?: string, needs?: ExitService): Promise<PeerEntry | undefined>;
  /**
   * The exit with this key, charging nothing: for a relay's link to an exit (which serves no client by itself
   * and must not skew the least-loaded choice) and for re-checking an exit a waiting request chose.
   */
  getExit(exitKey: string): Promise<PeerEntry | undefined>;
  /** Creates a link and increments the hop's assigned count, atomically with choosing the hop. */
  createLink(request: CreateLinkRequest): Promise<CreateLinkResult>;
  getLink(linkId: string): Promise<LinkEntry | undefined>;
  /** Forgets the link and decrements its hop's assigned count; undefined when there was no such link. */
  closeLink(linkId: string): Promise<LinkEntry | undefined>;
  /**
   * One member's claim of a link made through an earlier socket, paired atomically with the other's. A link
   * id registered with other members is never taken from them: the claim waits until they release it.
   */
  claimLink(request: ClaimRequest): Promise<ClaimResult>;
  /**
   * Withdraws a peer's claim of `linkId` (or all its claims). `closed`: the link is over (the peer said
   * link-closed, or left while the server runs): its other claimant is returned, to be told link-closed, and
   * the id is remembered for a late one. `had`: the peer had a claim of `linkId`.
   */
  dropClaims(
    peerId: string,
    options: { linkId?: string; closed: boolean; ttlMs: number },
  ): Promise<{ had: boolean; tell: LinkNotice[] }>;
  /** After closeLink or removePeer forgot a link: settles its claims (see LinkGone). */
  linkGone(linkId: string, how: LinkGone): Promise<{ tell: string[]; link?: LinkEntry }>;
}

type MutablePeer = { -readonly [K in keyof PeerEntry]: PeerEntry[K] };

/** Exits announce no capacity of their own by default; their load is compared against this. */
const DEFAULT_EXIT_CAPACITY = 1000;

export class MemoryRegistry implements Registry {
  private readonly peers = new Map<string, MutablePeer>();
  private readonly exitsByKey = new Map<string, string>();
  private readonly links = new Map<string, LinkEntry>();
  private readonly linksByPeer = new Map<string, Set<string>>();
  /** Exits in registration order (pickExit walks only these, not every peer). */
  private readonly exits = new Set<MutablePeer>();
  private readonly relayHeap = new RelayHeap<HeapRelay>();
  private readonly relayNodes = new Map<string, HeapRelay>();
  private seq = 0;
  private readonly claims: LinkClaims;

  /** `now`: the clock of claims' expiry; injected for tests. */
  constructor(options: { now?: () => number } = {}) {
    this.claims = new LinkClaims(options.now ?? Date.now);
  }

  async addPeer(peer: NewPeer, options: AddPeerOptions = {}): Promise<AddPeerResult> {
    if (this.peers.has(peer.peerId)) return { ok: false, reason: 'duplicate-peer' };
    const holder = peer.exitKey === undefined ? undefined : this.exitsByKey.get(peer.exitKey);
    if (holder !== undefined && !options.takeOverExitKey) return { ok: false, reason: 'duplicate-exit-key' };
    let replaced: ReplacedPeer | undefined;
    if (holder !== undefined) {
      // Its claims go silently: the new holder claims again whatever links are really its own.
      for (const linkId of this.claims.claimedBy(holder)) this.claims.withdraw(linkId, holder);
      replaced = { peerId: holder, links: this.remove(holder) ?? [] };
    }
    const entry: MutablePeer = {
      peerId: peer.peerId,
      role: peer.role,
      capacity: peer.capacity,
      exitKey: peer.exitKey,
      policy: peer.policy,
      torrents: peer.torrents === true,
      pings: peer.pings === true,
      load: 0,
      assigned: 0,
      pending: 0,
    };
    this.peers.set(peer.peerId, entry);
    if (peer.exitKey !== undefined) this.exitsByKey.set(peer.exitKey, peer.peerId);
    if (peer.role === 'exit') this.exits.add(entry);
    if (peer.role === 'relay') {
      const node: HeapRelay = { peerId: peer.peerId, seq: this.seq++, free: peer.capacity ?? 0 };
      this.relayNodes.set(peer.peerId, node);
      this.relayHeap.add(node);
    }
    return replaced ? { ok: true, replaced } : { ok: true };
  }

  async removePeer(peerId: string): Promise<LinkEntry[] | undefined> {
    return this.remove(peerId);
  }

  /** removePeer without a turn of the event loop, so addPeer's takeover stays one step. */
  private remove(peerId: string): LinkEntry[] | undefined {
    const peer = this.peers.get(peerId);
    if (!peer) return undefined;
    const dropped: LinkEntry[] = [];
    for (const linkId of [...(this.linksByPeer.get(peerId) ?? [])]) {
      const link = this.forgetLink(linkId);
      if (link) dropped.push(link);
    }
    this.linksByPeer.delete(peerId);
    this.peers.delete(peerId);
    this.claims.forgetPeer(peerId);
    this.exits.delete(peer);
    this.relayNodes.delete(peerId);
    this.relayHeap.remove(peerId);
    if (peer.exitKey !== undefined && this.exitsByKey.get(peer.exitKey) === peerId)
      this.exitsByKey.delete(peer.exitKey);
    return dropped;
  }

  async getPeer(peerId: string): Promise<PeerEntry | undefined> {
    return snapshot(this.peers.get(peerId));
  }

  async reportLoad(peerId: string, load: number): Promise<void> {
    const peer = this.peers.get(peerId);
    if (!peer) return;
    peer.load = load;
    peer.pending = 0;
    this.relayFree(peer);
  }

  async listExits(): Promise<PeerEntry[]> {
    return [...this.exits].map((p) => snapshot(p)!);
  }

  async pickExit(exitKey?: string, needs?: ExitService): Promise<PeerEntry | undefined> {
    let exit: MutablePeer | undefined;
    if (exitKey !== undefined) {
      const id = this.exitsByKey.get(exitKey);
      exit = id === undefined ? undefined : this.peers.get(id);
      if (exit && !offers(exit, needs)) exit = undefined;
    } else {
      let best = Infinity;
      for (const peer of this.exits) {
        if (!offers(peer, needs)) continue;
        const score = (peer.load + peer.pending) / (peer.capacity ?? DEFAULT_EXIT_CAPACITY);
        // Strictly less: ties go to the longest-registered exit (Set order), keeping the choice deterministic.
        if (score < best) {
          best = score;
          exit = peer;
        }
      }
    }
    if (!exit) return undefined;
    exit.pending++;
    return snapshot(exit);
  }

  async getExit(exitKey: string): Promise<PeerEntry | undefined> {
    const id = this.exitsByKey.get(exitKey);
    return id === undefined ? undefined : snapshot(this.peers.get(id));
  }

  async createLink(request: CreateLinkRequest): Promise<CreateLinkResult> {
    if (this.links.has(request.linkId)) throw new Error('link id collision');
    const initiator = this.peers.get(request.initiator);
    if (!initiator) return { ok: false, reason: 'initiator-gone' };
    let owned = 0;
    for (const linkId of this.linksByPeer.get(request.initiator) ?? []) {
      if (this.links.get(linkId)?.initiator === request.initiator) owned++;
    }
    if (owned >= request.maxInitiatorLinks) return { ok: false, reason: 'limit' };
    let hop: MutablePeer | undefined;
    if (typeof request.hop === 'string') {
      hop = this.peers.get(request.hop);
      if (!hop) return { ok: false, reason: 'hop-gone' };
    } else {
      hop = this.bestRelay(request.initiator);
      if (!hop) return { ok: false, reason: 'no-relay' };
    }
    const link: LinkEntry = { linkId: request.linkId, initiator: request.initiator, hop: hop.peerId };
    this.links.set(link.linkId, link);
    this.index(link.initiator, link.linkId);
    this.index(link.hop, link.linkId);
    hop.assigned++;
    this.relayFree(hop);
    return { ok: true, link, hop: snapshot(hop)! };
  }

  async getLink(linkId: string): Promise<LinkEntry | undefined> {
    return this.links.get(linkId);
  }

  async closeLink(linkId: string): Promise<LinkEntry | undefined> {
    return this.forgetLink(linkId);
  }

  async claimLink(request: ClaimRequest): Promise<ClaimResult> {
    const { linkId, peerId } = request;
    const peer = this.peers.get(peerId);
    if (!peer) return { status: 'refused', reason: 'gone' };
    const held = this.links.get(linkId);
    if (held && (held.initiator === peerId || held.hop === peerId)) return { status: 'member' };
    if (this.claims.takeClosed(linkId)) return { status: 'closed' };
    const waiting = this.claims.claimants(linkId);
    if (waiting.some((c) => c.peerId === peerId)) return { status: 'pending' };
    const other = waiting[0];
    if (waiting.length >= 2 || (other && !linkSides(other.role, peer.role)))
      return { status: 'refused', reason: 'mismatch' };
    if (!other || held) {
      this.claims.add(linkId, { peerId, role: peer.role }, request.ttlMs);
      return { status: 'pending' };
    }
    const link = this.attach(linkId, other.peerId, peerId, request.maxClientLinks);
    if (!link) return { status: 'refused', reason: 'limit' };
    this.claims.remove(linkId);
    return { status: 'paired', link };
  }

  async dropClaims(
    peerId: string,
    options: { linkId?: string; closed: boolean; ttlMs: number },
  ): Promise<{ had: boolean; tell: LinkNotice[] }> {
    const ids = options.linkId === undefined ? this.claims.claimedBy(peerId) : [options.linkId];
    let had = false;
    const tell: LinkNotice[] = [];
    for (const linkId of ids) {
      if (!this.claims.withdraw(linkId, peerId)) continue;
      had = true;
      if (!options.closed) continue;
      for (const c of this.claims.remove(linkId)) tell.push({ peerId: c.peerId, linkId });
      this.claims.markClosed(linkId, options.ttlMs);
    }
    return { had, tell };
  }

  async linkGone(linkId: string, how: LinkGone): Promise<{ tell: string[]; link?: LinkEntry }> {
    if (this.links.has(linkId)) return { tell: [] };
    if (how.closed) {
      const tell = this.claims.remove(linkId).map((c) => c.peerId);
      if (tell.length > 0) this.claims.markClosed(linkId, how.ttlMs);
      return { tell };
    }
    const waiting = this.claims.claimants(linkId);
    const survivor = how.survivor === undefined ? undefined : this.peers.get(how.survivor);
    const candidates: { peerId: string; role: PeerRole }[] = survivor ? [survivor] : [];
    candidates.push(...waiting.filter((c) => c.peerId !== how.survivor));
    // The survivor first: it still stands for its side; else the two claimants pair with each other.
    for (let i = 0; i < candidates.length; i++) {
      for (let j = i + 1; j < candidates.length; j++) {
        const a = candidates[i]!;
        const b = candidates[j]!;
        if (!linkSides(a.role, b.role)) continue;
        const link = this.attach(linkId, a.peerId, b.peerId, how.maxClientLinks);
        if (!link) continue;
        this.claims.withdraw(linkId, a.peerId);
        this.claims.withdraw(linkId, b.peerId);
        return { tell: [], link };
      }
    }
    if (survivor && waiting.length === 0)
      this.claims.add(linkId, { peerId: survivor.peerId, role: survivor.role }, how.ttlMs);
    return { tell: [] };
  }

  /**
   * Registers a resumed link between `a` and `b` (their roles decide who initiated), as createLink would:
   * the hop's assigned count and the initiator's link count grow, bounded as when links are made. The hop's
   * capacity is not checked: it serves the link already, and its reported load counts it (relayFreeOf takes
   * the larger of the two, so it is not counted twice).
   */
  private attach(linkId: string, a: string, b: string, maxClientLinks: number): LinkEntry | undefined {
    const peerA = this.peers.get(a);
    const peerB = this.peers.get(b);
    if (!peerA || !peerB || this.links.has(linkId)) return undefined;
    const sides = linkSides(peerA.role, peerB.role);
    if (!sides) return undefined;
    const [initiator, hop] = sides.initiator === 'a' ? [peerA, peerB] : [peerB, peerA];
    const max = initiator.role === 'client' ? maxClientLinks : (initiator.capacity ?? 1);
    let owned = 0;
    for (const id of this.linksByPeer.get(initiator.peerId) ?? []) {
      if (this.links.get(id)?.initiator === initiator.peerId) owned++;
    }
    if (owned >= max) return undefined;
    const link: LinkEntry = { linkId, initiator: initiator.peerId, hop: hop.peerId };
    this.links.set(linkId, link);
    this.index(link.initiator, linkId);
    this.index(link.hop, linkId);
    hop.assigned++;
    this.relayFree(hop);
    return link;
  }

  private bestRelay(exclude: string): MutablePeer | undefined {
    const node = this.relayHeap.best(exclude);
    return node && this.peers.get(node.peerId);
  }

  /** Keeps a relay's place in the heap in step with its assigned count and its own load (relayFreeOf). */
  private relayFree(peer: MutablePeer): void {
    const node = this.relayNodes.get(peer.peerId);
    if (!node) return;
    node.free = relayFreeOf(peer);
    this.relayHeap.update(node);
  }

  private index(peerId: string, linkId: string): void {
    let set = this.linksByPeer.get(peerId);
    if (!set) {
      set = new Set();
      this.linksByPeer.set(peerId, set);
    }
    set.add(linkId);
  }

  private forgetLink(linkId: string): LinkEntry | undefined {
    const link = this.links.get(linkId);
    if (!link) return undefined;
    this.links.delete(linkId);
    this.linksByPeer.get(link.initiator)?.delete(linkId);
    this.linksByPeer.get(link.hop)?.delete(linkId);
    const hop = this.peers.get(link.hop);
    if (hop) {
      hop.assigned = Math.max(0, hop.assigned - 1);
      this.relayFree(hop);
    }
    return link;
  }
}

/**
 * A relay's free capacity: its capacity less the clients it serves, counted as the larger of the links the
 * broker made to it and the load it reports. They differ after a signaling restart: the relay comes back with
 * clients whose links an earlier server (or socket) made, and its first `load` says so.
 */
export function relayFreeOf(peer: Pick<PeerEntry, 'capacity' | 'assigned' | 'load'>): number {
  return (peer.capacity ?? 0) - Math.max(peer.assigned, peer.load);
}

/** Whether an exit offers the service a path needs (anything, when it needs none). */
export function offers(exit: Pick<PeerEntry, 'torrents'>, needs: ExitService | undefined): boolean {
  switch (needs) {
    case undefined:
      return true;
    case 'torrent':
      return exit.torrents;
  }
}

function snapshot(peer: MutablePeer | undefined): PeerEntry | undefined {
  if (!peer) return undefined;
  return { ...peer };
}
