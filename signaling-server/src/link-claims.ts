/**
 * The pending halves of resumed links (`link-resume`, PROTOCOL.md §1 Reconnecting), for MemoryRegistry: who
 * claimed which link id and is still waiting for the other member, and the link ids whose link is known to be
 * closed (so a late claimant hears `link-closed`). Both expire; nothing here sends anything. The Redis registry
 * keeps the same state in Redis with the same rules (redis-registry.ts).
 */
import type { PeerRole } from '@underpass/shared/signaling';

/** The two roles of a link's members, as the broker makes links: which of them is the initiator. */
export type LinkSides = { initiator: 'a' | 'b' };

/**
 * Whether peers of roles `a` and `b` can be the two members of one link, and which one initiated it: a client
 * initiates to a relay (its hop) or to an exit (a direct path); a relay initiates to an exit. Any other pair
 * (two clients, two relays, a relay and … ) was never made by a broker.
 */
export function linkSides(a: PeerRole, b: PeerRole): LinkSides | undefined {
  if (a === 'client' && (b === 'relay' || b === 'exit')) return { initiator: 'a' };
  if (b === 'client' && (a === 'relay' || a === 'exit')) return { initiator: 'b' };
  if (a === 'relay' && b === 'exit') return { initiator: 'a' };
  if (a === 'exit' && b === 'relay') return { initiator: 'b' };
  return undefined;
}

export type Claimant = { readonly peerId: string; readonly role: PeerRole };

type Claim = { claimants: Claimant[]; expiresAt: number };

/** At most this many link ids with claims (and as many closed ones) at once; the oldest go first. */
export const MAX_CLAIMED_LINKS = 100_000;

export class LinkClaims {
  private readonly claims = new Map<string, Claim>();
  private readonly closed = new Map<string, number>();
  private readonly byPeer = new Map<string, Set<string>>();

  constructor(private readonly now: () => number) {}

  /** The live claimants of a link id (at most two: one per member). */
  claimants(linkId: string): readonly Claimant[] {
    const claim = this.claims.get(linkId);
    if (!claim) return [];
    if (claim.expiresAt <= this.now()) {
      this.remove(linkId);
      return [];
    }
    return claim.claimants;
  }

  add(linkId: string, claimant: Claimant, ttlMs: number): void {
    this.sweep();
    const claim = this.claims.get(linkId);
    const expiresAt = this.now() + ttlMs;
    if (claim) {
      claim.claimants.push(claimant);
      claim.expiresAt = expiresAt;
    } else {
      if (this.claims.size >= MAX_CLAIMED_LINKS) this.removeOldest();
      this.claims.set(linkId, { claimants: [claimant], expiresAt });
    }
    let mine = this.byPeer.get(claimant.peerId);
    if (!mine) {
      mine = new Set();
      this.byPeer.set(claimant.peerId, mine);
    }
    mine.add(linkId);
  }

  /** Removes one peer's claim of a link id; true if it had one. */
  withdraw(linkId: string, peerId: string): boolean {
    const claim = this.claims.get(linkId);
    const index = claim?.claimants.findIndex((c) => c.peerId === peerId) ?? -1;
    if (!claim || index < 0) return false;
    claim.claimants.splice(index, 1);
    this.byPeer.get(peerId)?.delete(linkId);
    if (claim.claimants.length === 0) this.claims.delete(linkId);
    return true;
  }

  /** Removes every claim of a link id; returns the claimants that were still waiting. */
  remove(linkId: string): Claimant[] {
    const claim = this.claims.get(linkId);
    if (!claim) return [];
    this.claims.delete(linkId);
    for (const c of claim.claimants) this.byPeer.get(c.peerId)?.delete(linkId);
    return claim.expiresAt > this.now() ? claim.claimants : [];
  }

  /** The link ids a peer claims now. */
  claimedBy(peerId: string): string[] {
    return [...(this.byPeer.get(peerId) ?? [])];
  }

  forgetPeer(peerId: string): void {
    this.byPeer.delete(peerId);
  }

  /** Remembers that a link id's link is closed, so a member that claims it later is told. */
  markClosed(linkId: string, ttlMs: number): void {
    this.sweep();
    if (this.closed.size >= MAX_CLAIMED_LINKS) {
      const oldest = this.closed.keys().next();
      if (!oldest.done) this.closed.delete(oldest.value);
    }
    this.closed.delete(linkId);
    this.closed.set(linkId, this.now() + ttlMs);
  }

  /** True (once) if the link id was marked closed and has not expired. */
  takeClosed(linkId: string): boolean {
    const expiresAt = this.closed.get(linkId);
    if (expiresAt === undefined) return false;
    this.closed.delete(linkId);
    return expiresAt > this.now();
  }

  get size(): number {
    return this.claims.size;
  }

  /** Drops what expired, oldest first (insertion order is nearly expiry order: the ttl is one constant). */
  private sweep(): void {
    const now = this.now();
    for (const [linkId, claim] of this.claims) {
      if (claim.expiresAt > now) break;
      this.remove(linkId);
    }
    for (const [linkId, expiresAt] of this.closed) {
      if (expiresAt > now) break;
      this.closed.delete(linkId);
    }
  }

  private removeOldest(): void {
    const oldest = this.claims.keys().next();
    if (!oldest.done) this.remove(oldest.value);
  }
}
