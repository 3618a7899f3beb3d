/**
 * The broker's directory of connected peers and the links between them. The broker only talks to the
 * `Registry` interface, whose operations are async and each atomic on its own (pick-and-assign happens in
 * one call), so a shared store such as Redis can implement it later without changing the broker.
 * `MemoryRegistry` is the single-process implementation.
 */
import type { ExitService, PeerRole } from '@underpass/shared/signaling';
import { RelayHeap, type HeapRelay } from './relay-heap.js';

export type NewPeer = {
  peerId: string;
  role: PeerRole;
  capacity?: number | undefined;
  exitKey?: string | undefined;
  policy?: string | undefined;
  /** (Exits) serves torrent streams; absent: it does not. */
  torrents?: boolean | undefined;
};

export type PeerEntry = {
  readonly peerId: string;
  readonly role: PeerRole;
  readonly capacity: number | undefined;
  readonly exitKey: string | undefined;
  readonly policy: string | undefined;
  /** (Exits) serves torrent streams; false for every other peer. */
  readonly torrents: boolean;
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

export type AddPeerResult = { ok: true } | { ok: false; reason: 'duplicate-peer' | 'duplicate-exit-key' };

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

export interface Registry {
  addPeer(peer: NewPeer): Promise<AddPeerResult>;
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

  async addPeer(peer: NewPeer): Promise<AddPeerResult> {
    if (this.peers.has(peer.peerId)) return { ok: false, reason: 'duplicate-peer' };
    if (peer.exitKey !== undefined && this.exitsByKey.has(peer.exitKey))
      return { ok: false, reason: 'duplicate-exit-key' };
    const entry: MutablePeer = {
      peerId: peer.peerId,
      role: peer.role,
      capacity: peer.capacity,
      exitKey: peer.exitKey,
      policy: peer.policy,
      torrents: peer.torrents === true,
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
    return { ok: true };
  }

  async removePeer(peerId: string): Promise<LinkEntry[] | undefined> {
    const peer = this.peers.get(peerId);
    if (!peer) return undefined;
    const dropped: LinkEntry[] = [];
    for (const linkId of [...(this.linksByPeer.get(peerId) ?? [])]) {
      const link = this.forgetLink(linkId);
      if (link) dropped.push(link);
    }
    this.linksByPeer.delete(peerId);
    this.peers.delete(peerId);
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
