import { errorMessage, SessionError, toUnderpassError } from '../errors.js';
import { withDeadline } from '../deadline.js';
import type { Link } from './link.js';
import { DEFAULT_LINK_GOODBYE_WAIT_MS } from './link-goodbye.js';
import { DEFAULT_LANE_SILENCE_LIMIT_MS, DEFAULT_LINK_SILENCE_LIMIT_MS } from './link-keepalive.js';
import { onPeerGone, PeerLink, type PeerFactory, type SimplePeerLike } from './peer-link.js';
import { StripedLink } from './striped-link.js';
import {
  MAX_LANES,
  namedLaneCount,
  namesReceipts,
  namesResends,
  readLaneSignal,
  writeLaneSignal,
} from './lane-signals.js';

/** The slice of the signaling client that link setup needs. */
export interface SignalingChannel {
  signal(linkId: string, data: unknown): void;
  linkClosed(linkId: string): void;
  on(event: 'signal', listener: (linkId: string, data: unknown) => void): unknown;
  on(event: 'link-closed', listener: (linkId: string) => void): unknown;
}

export interface PeerConnectorOptions {
  signaling: SignalingChannel;
  createPeer: PeerFactory;
  connectTimeoutMs?: number;
  /** See DEFAULT_ANSWER_TIMEOUT_MS. */
  answerTimeoutMs?: number;
  /**
   * Lanes per link (StripedLink, lane-signals.ts): how many an initiator asks for, and how many a responder
   * agrees to at most (DEFAULT_LINK_LANES). 1 makes plain links, as peers before lanes did.
   */
  lanes?: number;
  /**
   * Whether this end names receipts (StripedLink) on its offer or answer; on by default. With them, bench:wan
   * measured page loads a tenth shorter, eight streams two-hop faster and one stream at 1 % loss ~1.6 × as fast
   * (bench/wan/README.md). They were off while real-WebRTC tests failed with them under load: lost last
   * messages on any close (fixed: link-goodbye.ts), one lane's silence ending the whole link (now judged over all
   * lanes: DEFAULT_LANE_SILENCE_LIMIT_MS), and 20 MB transfers that stalled: once before a full lane stopped
   * getting more (StripedLink's `leastInFlight`), and about one run in ten, after pacing came, for a drain that
   * bytes waiting for the pacer had made owed and no lane announced (StripedLink's `checkDrain`).
   */
  laneReceipts?: boolean;
  /**
   * Whether this end names resends (StripedLink: a stalled lane's messages go out again on another) beside
   * receipts; on by default, used only where both ends name them.
   */
  laneResends?: boolean;
}

/**
 * Four PeerConnections per link: on an emulated 100 Mbit/s path (bench:wan) eight streams through four carried
 * 61–77 Mbit/s at RTT 150 ms where one carried 8–16, and one stream direct 61 at RTT 50 against 22–53. Eight
 * did no better at RTT 150 in the same runs, and each lane costs both ends a PeerConnection.
 */
export const DEFAULT_LINK_LANES = 4;

/** Time for a WebRTC link to come up (offer, answer, ICE, DataChannel open) before it is given up. */
export const DEFAULT_PEER_CONNECT_TIMEOUT_MS = 20_000;
/**
 * An initiator that has heard nothing at all from the far end this long after asking gives the link up: a live
 * peer answers an offer in well under a second. Why: with several signaling servers, the broker may offer a peer
 * whose server just died and which has not yet been reaped (reaping tells no one, since that peer's links that
 * are up may live on); nothing answers, and a client waited the whole connect timeout before choosing another
 * relay (chaos: a relay lost 4 s after a signaling restart, back in 18 s instead of 2).
 */
export const DEFAULT_ANSWER_TIMEOUT_MS = 5_000;

/**
 * How long an open link whose far end the broker says closed it waits for that end's last messages and goodbye
 * before it closes anyway. Short: a far end that vanished (its browser killed, its socket to the broker gone)
 * sends nothing, and a relay counts that client until its link ends.
 */
export const BROKER_CLOSE_GRACE_MS = 1_000;

/** Signals that arrive before their link is being set up are held, within these bounds. */
const MAX_EARLY_LINKS = 64;
const MAX_EARLY_SIGNALS_PER_LINK = 32 * MAX_LANES;

/** One link being set up or up: its lanes' peers by lane number. */
interface LinkSetup {
  readonly initiator: boolean;
  readonly peers: Map<number, SimplePeerLike>;
  /**
   * Those handed to a PeerLink: their link ends them, after its goodbye (link-goodbye.ts); destroying them with
   * the link would lose the last messages it sent.
   */
  readonly linked: Set<SimplePeerLike>;
  /** How many lanes both ends agreed to; unknown until lane 0's offer (responder) or answer (initiator). */
  agreed: number | undefined;
  /**
   * The count this end names on lane 0's offer (initiator) or answer (responder); undefined names none, as a
   * peer before lanes: an initiator that wants one lane, a responder whose initiator named none.
   */
  named: number | undefined;
  /**
   * Whether this end names receipts beside the count; on a responder, only if the offer named them too. Both
   * ends use them once lane 0's answer is known to name them (`receiptsAgreed`).
   */
  namesReceipts: boolean;
  receiptsAgreed: boolean;
  /** Likewise for resends, named only beside receipts. */
  namesResends: boolean;
  resendsAgreed: boolean;
  /** Whether any signal came from the far end (see DEFAULT_ANSWER_TIMEOUT_MS). */
  heard: boolean;
  /** Once lane 0 is up: the link handed out. */
  link: StripedLink | PeerLink | undefined;
  /** Ends the setup: every lane's peer destroyed, the broker told once. */
  abandon(error: SessionError): void;
}

/**
 * Brings up WebRTC links named by the broker: routes simple-peer's offers, answers and ICE candidates through
 * the signaling server by link id, and hands back a Link once the (first) DataChannel is open. With lanes, the
 * link's further PeerConnections are set up beside it and join it as they open.
 */
export class PeerConnector {
  private readonly setups = new Map<string, LinkSetup>();
  private readonly early = new Map<string, unknown[]>();
  private readonly lanes: number;
  private readonly receipts: boolean;
  private readonly resends: boolean;
  /** Every connection made and not yet ended, and who waits for them all to end (`connectionsEnded`). */
  private readonly live = new Set<SimplePeerLike>();
  private readonly waitingForEnd: (() => void)[] = [];

  constructor(private readonly options: PeerConnectorOptions) {
    this.lanes = Math.max(1, Math.min(MAX_LANES, Math.floor(options.lanes ?? DEFAULT_LINK_LANES)));
    this.receipts = options.laneReceipts ?? true;
    this.resends = this.receipts && (options.laneResends ?? true);
    options.signaling.on('signal', (linkId, data) => {
      const setup = this.setups.get(linkId);
      if (setup) {
        this.route(linkId, setup, data);
        return;
      }
      let queue = this.early.get(linkId);
      if (!queue) {
        if (this.early.size >= MAX_EARLY_LINKS) return;
        queue = [];
        this.early.set(linkId, queue);
      }
      if (queue.length < MAX_EARLY_SIGNALS_PER_LINK) queue.push(data);
    });
    options.signaling.on('link-closed', (linkId) => {
      this.early.delete(linkId);
      const setup = this.setups.get(linkId);
      const error = new SessionError('link-closed', 'the broker closed the link');
      const link = setup?.link;
      if (!link || link.closed) {
        setup?.abandon(error);
        return;
      }
      // The far end closed a link that is up: the broker's word races the link's own last messages and goodbye
      // (a CLOSE cell on a lane still opening here came after it). They get a moment; a far end that vanished
      // sends none, and the link ends when the moment is up.
      const timer = setTimeout(() => link.close(error), BROKER_CLOSE_GRACE_MS);
      link.on('close', () => clearTimeout(timer));
    });
  }

  connect(linkId: string, initiator: boolean): Promise<Link> {
    const { signaling } = this.options;
    let connected = false;
    let failFirst: (error: SessionError) => void = () => {};
    let told = false;
    const tellBroker = () => {
      if (told) return;
      told = true;
      if (this.setups.get(linkId) === setup) this.setups.delete(linkId);
      signaling.linkClosed(linkId);
    };
    const setup: LinkSetup = {
      initiator,
      peers: new Map(),
      linked: new Set(),
      agreed: undefined,
      named: initiator && this.lanes > 1 ? this.lanes : undefined,
      namesReceipts: initiator && this.receipts,
      receiptsAgreed: false,
      namesResends: initiator && this.resends,
      resendsAgreed: false,
      heard: false,
      link: undefined,
      abandon: (error) => {
        failFirst(error);
        for (const peer of setup.peers.values()) if (!setup.linked.has(peer)) peer.destroy(error);
        setup.link?.close(error);
        if (!connected) tellBroker();
      },
    };
    this.setups.set(linkId, setup);
    const first = new Promise<Link>((resolve, reject) => {
      failFirst = reject;
      const peer = this.addLane(linkId, setup, 0);
      peer.on('error', (error) => reject(new SessionError('link-closed', `WebRTC failed: ${error.message}`)));
      onPeerGone(peer, (reason) => {
        if (connected) return;
        // simple-peer 10 ends its stream at once and emits the error that ended it only a timer turn later: wait
        // for it, so that what failed (a rejected description or candidate) is what the caller sees.
        setTimeout(
          () => reject(new SessionError('link-closed', `the peer closed before connecting (${reason})`)),
          0,
        );
      });
      peer.on('connect', () => {
        connected = true;
        // At once, not a microtask later: PeerLink takes the channel over before its first message event.
        const striped = (setup.agreed ?? 1) > 1;
        const lane = striped ? this.laneLink(peer, setup) : new PeerLink(peer);
        setup.linked.add(peer);
        // Lanes still coming up count: the far end may send on one before it opens here.
        const link = striped
          ? new StripedLink(lane, {
              receipts: setup.receiptsAgreed,
              resends: setup.resendsAgreed,
              lanes: setup.peers.size,
              silenceLimitMs: DEFAULT_LINK_SILENCE_LIMIT_MS,
            })
          : lane;
        setup.link = link;
        link.on('close', () => {
          this.endPendingLanes(setup);
          tellBroker();
        });
        resolve(link);
      });
    });
    for (const data of this.early.get(linkId) ?? []) this.route(linkId, setup, data);
    this.early.delete(linkId);
    if (initiator) {
      const unanswered = setTimeout(() => {
        if (!setup.heard && !connected)
          setup.abandon(new SessionError('link-closed', 'the far end did not answer the offer in time'));
      }, this.options.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS);
      const stop = () => clearTimeout(unanswered);
      first.then(stop, stop);
    }
    return withDeadline(first, {
      ms: this.options.connectTimeoutMs ?? DEFAULT_PEER_CONNECT_TIMEOUT_MS,
      onTimeout: () => new SessionError('link-closed', 'the WebRTC link did not come up in time'),
      disposeLate: (late) => late.close(),
    }).catch((error: unknown) => {
      // The link is given up: its peers are destroyed and the broker told, once.
      if (!connected) {
        setup.abandon(
          error instanceof SessionError ? error : new SessionError('link-closed', errorMessage(error)),
        );
      }
      throw error;
    });
  }

  /**
   * Settles once every connection this connector made has ended, or after `maxWaitMs`. A host shutting down
   * closes its links and then waits here, so that what they sent last (CLOSE cells, then the goodbye) leaves
   * before the process does: the far ends then learn at once, and why, rather than by seconds of silence.
   */
  connectionsEnded(maxWaitMs = DEFAULT_LINK_GOODBYE_WAIT_MS + 500): Promise<void> {
    if (this.live.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(done, maxWaitMs);
      this.waitingForEnd.push(done);
    });
  }

  /** A lane's simple-peer, its signals sent under the link's id. */
  private addLane(linkId: string, setup: LinkSetup, lane: number): SimplePeerLike {
    const peer = this.options.createPeer({ initiator: setup.initiator });
    setup.peers.set(lane, peer);
    this.live.add(peer);
    onPeerGone(peer, () => {
      this.live.delete(peer);
      if (this.live.size === 0) for (const done of this.waitingForEnd.splice(0)) done();
    });
    peer.on('signal', (data) =>
      this.options.signaling.signal(
        linkId,
        writeLaneSignal(lane, data, setup.named, {
          receipts: setup.namesReceipts,
          resends: setup.namesResends,
        }),
      ),
    );
    return peer;
  }

  /** One lane of a striped link: its silence is judged with the others' (DEFAULT_LANE_SILENCE_LIMIT_MS). */
  private laneLink(peer: SimplePeerLike, setup: LinkSetup): PeerLink {
    return new PeerLink(peer, {
      silenceLimitMs: DEFAULT_LANE_SILENCE_LIMIT_MS,
      onHeard: () => {
        if (setup.link instanceof StripedLink) setup.link.heard();
      },
    });
  }

  /** Lanes beyond the first: set up once the count is agreed, each joining the link when it opens. */
  private addFurtherLanes(linkId: string, setup: LinkSetup): void {
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_PEER_CONNECT_TIMEOUT_MS;
    for (let lane = 1; lane < (setup.agreed ?? 1); lane++) {
      const peer = this.addLane(linkId, setup, lane);
      // A lane that does not come up is left out; the link goes on with the others.
      const giveUp = setTimeout(() => peer.destroy(), timeoutMs);
      onPeerGone(peer, () => {
        clearTimeout(giveUp);
        setup.peers.delete(lane);
        if (!setup.linked.has(peer) && setup.link instanceof StripedLink) setup.link.laneGaveUp();
      });
      peer.on('connect', () => {
        clearTimeout(giveUp);
        const link = setup.link;
        // Lane 0 always opens first on the initiator, whose further offers wait for its answer; on a responder
        // a further lane may win the race, and waits (in its PeerLink's unheard messages) for the link.
        const joined = this.laneLink(peer, setup);
        setup.linked.add(peer);
        if (link instanceof StripedLink) link.addLane(joined);
        else this.waitForFirstLane(setup, joined);
      });
    }
  }

  /**
   * Lanes still coming up when their link closed. The far end may already have one open and be sending on it:
   * destroyed now, it would be aborted under that send, which can crash a far end on @roamhq/wrtc
   * (exit-node/src/node-peer.ts). One that opens joins the closed link, which closes it with a goodbye; one
   * still not open after the goodbye wait is destroyed.
   */
  private endPendingLanes(setup: LinkSetup): void {
    const pending = [...setup.peers.values()].filter((peer) => !setup.linked.has(peer));
    if (pending.length === 0) return;
    setTimeout(() => {
      for (const peer of pending) if (!setup.linked.has(peer)) peer.destroy();
    }, DEFAULT_LINK_GOODBYE_WAIT_MS);
  }

  private waitForFirstLane(setup: LinkSetup, lane: PeerLink): void {
    const first = setup.peers.get(0);
    if (!first || setup.link) {
      lane.close();
      return;
    }
    first.on('connect', () => {
      if (setup.link instanceof StripedLink) setup.link.addLane(lane);
      else lane.close();
    });
    onPeerGone(first, () => lane.close());
  }

  private route(linkId: string, setup: LinkSetup, data: unknown): void {
    setup.heard = true;
    const read = readLaneSignal(data);
    if ('malformed' in read) {
      setup.abandon(new SessionError('link-closed', `malformed signal: ${read.malformed}`));
      return;
    }
    if (read.lane === 0 && setup.agreed === undefined) {
      const named = namedLaneCount(data);
      if (typeof named === 'object') {
        setup.abandon(new SessionError('link-closed', `malformed signal: ${named.malformed}`));
        return;
      }
      if (setup.initiator && read.signal.type === 'answer') {
        if ((named ?? 1) > this.lanes) {
          setup.abandon(
            new SessionError(
              'link-closed',
              `malformed signal: an answer agreeing to ${named} lanes, more than the ${this.lanes} asked`,
            ),
          );
          return;
        }
        setup.agreed = named ?? 1;
        setup.receiptsAgreed = setup.namesReceipts && namesReceipts(data);
        setup.resendsAgreed = setup.namesResends && namesResends(data);
        this.addFurtherLanes(linkId, setup);
      } else if (!setup.initiator && read.signal.type === 'offer') {
        setup.agreed = Math.min(named ?? 1, this.lanes);
        if (named !== undefined) setup.named = setup.agreed;
        setup.namesReceipts = setup.receiptsAgreed = this.receipts && namesReceipts(data);
        setup.namesResends = setup.resendsAgreed = this.resends && namesResends(data);
        // Its answer (which names the count) comes from simple-peer only after this offer is signalled below.
        this.addFurtherLanes(linkId, setup);
      }
    }
    const peer = setup.peers.get(read.lane);
    if (!peer) {
      if (read.lane >= (setup.agreed ?? 1)) {
        setup.abandon(new SessionError('link-closed', `malformed signal: lane ${read.lane} was not agreed`));
      }
      // Otherwise a lane already given up: its late signals go nowhere.
      return;
    }
    safeSignal(peer, read.signal);
  }
}

function safeSignal(peer: SimplePeerLike, data: unknown): void {
  try {
    peer.signal(data);
  } catch (error) {
    // A malformed signal from the far side ends that lane only (for lane 0 before it is up, the link).
    peer.destroy(toUnderpassError(error, 'link-closed'));
  }
}
