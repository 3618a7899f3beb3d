/**
 * One end of a benchmark's WebRTC link over N lanes (PeerConnections), whose signals the benchmark carries to
 * the far end itself (bench:wan's parent, bench:tunnel's IPC) instead of a broker. Each lane is a simple-peer;
 * lane 0's signals go as simple-peer's own objects and lane k's wrapped `{ lane: k, signal }`, as lane-signals.ts
 * has them. The product agrees the count inside lane 0's offer and answer (peer-connector.ts); here both ends are
 * told it, so neither names it. One lane gives a plain PeerLink, a link without lanes; more give a StripedLink,
 * handed out once every lane is up.
 */
import {
  DEFAULT_LANE_SILENCE_LIMIT_MS,
  DEFAULT_LINK_GOODBYE_WAIT_MS,
  DEFAULT_LINK_SILENCE_LIMIT_MS,
  MAX_LANES,
  PeerLink,
  readLaneSignal,
  StripedLink,
  writeLaneSignal,
  type Link,
  type PeerFactory,
  type SimplePeerLike,
} from '@underpass/shared/links';

/** The product's goodbye wait (DEFAULT_LINK_GOODBYE_WAIT_MS) and a margin for the lanes to end after it. */
const LINK_CLOSE_WAIT_MS = DEFAULT_LINK_GOODBYE_WAIT_MS + 1_000;

export interface LinkOverLanesOptions {
  createPeer: PeerFactory;
  initiator: boolean;
  /** 1 … MAX_LANES; both ends of a link must be given the same. */
  lanes: number;
  /**
   * Per-lane receipts (StripedLink); both ends must be given the same. Default: on, as the product's links,
   * unless BENCH_LANE_RECEIPTS=off (bench:wan's --lane-receipts sets it for every party it starts).
   */
  receipts?: boolean;
  /**
   * Resends (StripedLink), with receipts; both ends must be given the same. Default: on, as the product's links,
   * unless BENCH_LANE_RESENDS=off (bench:wan's --lane-resends).
   */
  resends?: boolean;
  /** See StripedLinkOptions; default: BENCH_STICKY_LANE_KIB × 1024 if set, else the product's. */
  stickyLaneBytes?: number;
  /** Carries one of this end's signals to the far end's `signal`. */
  sendSignal(data: unknown): void;
}

export class LinkOverLanes {
  /** The lanes' peers, lane 0 first: for readings of their channels (bench:wan --trace). */
  readonly peers: readonly SimplePeerLike[];
  /** The link, once every lane is connected; rejects if a lane fails before. */
  readonly connected: Promise<Link>;
  /** The link once connected. */
  link: Link | undefined;
  private destroyed = false;

  constructor(options: LinkOverLanesOptions) {
    const { lanes, initiator, createPeer, sendSignal } = options;
    if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) {
      throw new RangeError(`a link has 1 … ${MAX_LANES} lanes, not ${lanes}`);
    }
    this.peers = Array.from({ length: lanes }, () => createPeer({ initiator }));
    const up = this.peers.map((peer, lane) => {
      peer.on('signal', (data) => sendSignal(writeLaneSignal(lane, data, undefined)));
      return new Promise<PeerLink>((resolve, reject) => {
        // At once, not a microtask later: PeerLink takes the channel over before its first message event.
        // Lanes as the product's (PeerConnector): each silent alone for longer, the link judging them together.
        const laneOptions = {
          silenceLimitMs: DEFAULT_LANE_SILENCE_LIMIT_MS,
          onHeard: () => {
            if (this.link instanceof StripedLink) this.link.heard();
          },
        };
        peer.on('connect', () => resolve(new PeerLink(peer, lanes > 1 ? laneOptions : {})));
        peer.on('error', (error: unknown) =>
          reject(error instanceof Error ? error : new Error(String(error))),
        );
      });
    });
    const stickyKib = process.env.BENCH_STICKY_LANE_KIB;
    const sticky = options.stickyLaneBytes ?? (stickyKib ? Number(stickyKib) * 1024 : undefined);
    this.connected = Promise.all(up).then(([first, ...others]) => {
      if (others.length === 0) return (this.link = first!);
      const link = new StripedLink(first!, {
        receipts: options.receipts ?? process.env.BENCH_LANE_RECEIPTS !== 'off',
        nudges: process.env.BENCH_NUDGES !== 'off',
        resends: options.resends ?? process.env.BENCH_LANE_RESENDS !== 'off',
        pacing: process.env.BENCH_PACING !== 'off',
        silenceLimitMs: DEFAULT_LINK_SILENCE_LIMIT_MS,
        ...(sticky === undefined ? {} : { stickyLaneBytes: sticky }),
      });
      for (const lane of others) link.addLane(lane);
      return (this.link = link);
    });
  }

  /** A signal from the far end, to its lane's peer. Late ones, after destroy(), are dropped. */
  signal(data: unknown): void {
    if (this.destroyed) return;
    const read = readLaneSignal(data);
    if ('malformed' in read) throw new Error(`malformed signal: ${read.malformed}`);
    const peer = this.peers[read.lane];
    if (!peer) throw new Error(`a signal for lane ${read.lane} of a link with ${this.peers.length}`);
    peer.signal(read.signal);
  }

  /**
   * Ends the link as the product does: a link that is up says goodbye and ends its lanes once the far end has
   * read it (PeerLink); resolves when every lane's peer has closed, or after `maxWaitMs`, then destroys what is
   * left. Ending lanes abruptly while the far end still sends is what crashes @roamhq/wrtc now and then
   * (README, "Run it under a supervisor"): bench:wan lost one run in three to it before this.
   */
  async close(maxWaitMs = LINK_CLOSE_WAIT_MS): Promise<void> {
    if (this.destroyed) return;
    const link = this.link;
    if (link && !link.closed) {
      const lanesClosed = this.peers.map(
        (peer) => new Promise<void>((resolve) => peer.on('close', () => resolve())),
      );
      let timer: NodeJS.Timeout | undefined;
      link.close();
      await Promise.race([
        Promise.all(lanesClosed),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, maxWaitMs))),
      ]);
      clearTimeout(timer);
    }
    this.destroy();
  }

  /** Ends every lane at once, up or not (the link, if up, closes with them). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const peer of this.peers) peer.destroy();
  }
}
