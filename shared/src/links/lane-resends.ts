/**
 * Resends on a striped link (StripedLink, with receipts and resends agreed): which lane has stalled, and the
 * copies a lane keeps of what it carries so that another lane can send it again.
 */

/**
 * A lane is stalled once its receipts have not moved for this many of its shortest round trips plus
 * STALL_SLACK_MS while it has messages out and another lane's receipts did move. SCTP repairs a single loss in
 * about two round trips; after losing a burst, libwebrtc's crawls for seconds to tens of seconds (bench:wan), and
 * ordered delivery holds every other lane's messages behind it.
 */
export const STALL_ROUND_TRIPS = 4;
export const STALL_SLACK_MS = 200;
/** A lane not yet timed is judged as if its round trip were this long. */
export const UNTIMED_ROUND_TRIP_MS = 500;
/** How often a link with messages out looks for a stalled lane. */
export const STALL_CHECK_MS = 50;
/**
 * Most bytes a lane keeps copies of, to resend: what is in flight is bounded by the circuits' windows, so an honest
 * far end's receipts keep it far below; a far end that withholds receipts must not make us hold all we send.
 * Past it, the lane keeps none until everything it carried is receipted, and a stall there is not repaired.
 */
export const MAX_RESEND_BYTES = 4 * 1024 * 1024;

/** The copies one lane keeps of the messages it carries that the far end has not yet receipted. */
export class LaneCopies {
  /** Each framed message with the lane's sent count once it was out; null once they outgrew MAX_RESEND_BYTES. */
  private copies: { framed: Uint8Array; end: number }[] | null = [];

  /** Whether it holds everything not yet receipted (false past MAX_RESEND_BYTES, until `restart`). */
  get complete(): boolean {
    return this.copies !== null;
  }

  /** The lane has nothing in flight: it keeps copies again, whatever it outgrew before. */
  restart(): void {
    this.copies = [];
  }

  /** `framed` went out; the lane's sent count is now `end`, of which `inFlight` bytes are not yet receipted. */
  keep(framed: Uint8Array, end: number, inFlight: number): void {
    if (this.copies && inFlight > MAX_RESEND_BYTES) this.copies = null;
    this.copies?.push({ framed, end });
  }

  /** The far end has receipted `receipted` bytes of the lane: the copies they cover are no longer needed. */
  release(receipted: number): void {
    const copies = this.copies;
    if (!copies) return;
    let covered = 0;
    while (covered < copies.length && copies[covered]!.end <= receipted) covered++;
    copies.splice(0, covered);
  }

  /** Every copy, in the order sent, for another lane to carry; this lane keeps copies of what it sends next. */
  takeAll(): Uint8Array[] {
    const taken = (this.copies ?? []).map(({ framed }) => framed);
    this.copies = [];
    return taken;
  }
}

/** What the stall check needs to know of a lane. */
export interface LaneProgress {
  /** Framed bytes sent on it, and of those, what the far end's latest receipt says arrived. */
  readonly sent: number;
  readonly receipted: number;
  /** Since when its receipts have not moved (or since it last went from idle to busy). */
  readonly progressAt: number;
  readonly shortestRoundTripMs: number | undefined;
  /** What it carried was resent elsewhere; it gets nothing new until all of it is receipted. */
  readonly suspended: boolean;
  readonly ended: boolean;
  readonly copies: LaneCopies;
}

/**
 * The lane to resend `lane`'s copies on, if `lane` has stalled (STALL_ROUND_TRIPS) and another lane can take
 * them: the one with the least in flight among those whose receipts moved since, or that are idle (light traffic
 * keeps to one lane, and it is that one that stalls). None while no other lane's receipts moved: a far end that
 * is merely slow to read stalls every lane at once, and copies would only add to its load.
 */
export function resendTarget<L extends LaneProgress>(
  lane: L,
  lanes: readonly L[],
  now: number,
): L | undefined {
  if (lane.suspended || lane.ended || !lane.copies.complete || lane.sent === lane.receipted) return undefined;
  const roundTrip = lane.shortestRoundTripMs ?? UNTIMED_ROUND_TRIP_MS;
  if (now - lane.progressAt < STALL_ROUND_TRIPS * roundTrip + STALL_SLACK_MS) return undefined;
  const movedSince = (other: L) => other !== lane && other.progressAt > lane.progressAt;
  if (!lanes.some(movedSince)) return undefined;
  const inFlight = (other: L) => other.sent - other.receipted;
  let target: L | undefined;
  for (const other of lanes) {
    if (other === lane || other.suspended || other.ended) continue;
    if (!movedSince(other) && inFlight(other) !== 0) continue;
    if (target === undefined || inFlight(other) < inFlight(target)) target = other;
  }
  return target;
}
