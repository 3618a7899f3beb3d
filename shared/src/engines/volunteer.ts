import { Emitter } from '../emitter.js';
import { systemClock, type Clock } from '../clock.js';
import { SessionError } from '../errors.js';
import { fromBase64Url, toBase64Url } from '../bytes.js';
import type { Link } from '../links/link.js';
import type { PeerFactory } from '../links/peer-link.js';
import { PeerConnector, type SignalingChannel } from '../links/peer-connector.js';
import { RelayEngine, type RelayStats } from './relay.js';
import { ByteThrottle } from '../rate-limit.js';
import { ThrottledLink } from '../links/throttled-link.js';
import { LoadReporter } from './load-reporter.js';

/** A `link` message from the broker: someone wants a WebRTC link with us. */
export interface LinkOffer {
  linkId: string;
  initiator: boolean;
  peer: { peerId: string; role: 'client' | 'relay' | 'exit' };
  /** For a client's link: the exit the client will ask for. */
  exit?: { peerId: string; exitKey: string };
}

/** What the relay and exit hosts need of the signaling client (SignalingClient provides it). */
export interface ServingSignaling extends SignalingChannel {
  connect(): Promise<string>;
  connectExit(exitKey: string): Promise<LinkOffer>;
  reportLoad(load: number): void;
  on(event: 'link', listener: (offer: LinkOffer) => void): unknown;
  on(event: 'signal', listener: (linkId: string, data: unknown) => void): unknown;
  on(event: 'link-closed', listener: (linkId: string) => void): unknown;
  close(): void;
}

export interface VolunteerEngineOptions {
  /** A client whose hello says role 'relay' and this capacity. */
  signaling: ServingSignaling;
  createPeer: PeerFactory;
  /** Clients served at once; the broker is told the same in hello. */
  capacity: number;
  /** Bytes per second across all clients, both directions together; unset means no cap. */
  bandwidthBytesPerSec?: number;
  connectTimeoutMs?: number;
  /** Lanes per WebRTC link (PeerConnectorOptions.lanes): asked for on links this end makes, agreed to on others. */
  lanes?: number;
  /** Injected for tests: the bandwidth budget, the load updates and the 24-hour count of clients helped read it. */
  clock?: Clock;
  /** Least time between two load updates to the broker (default 1 s): clients must not be able to flood it. */
  loadReportIntervalMs?: number;
}

export type VolunteerStats = RelayStats & {
  capacity: number;
  /** Distinct clients whose link came up in the last 24 hours. */
  helped24h: number;
  /**
   * Clients this run has taken that it had not served in the 24 hours before (a rising count, for per-day
   * figures kept elsewhere). Peer ids are per connection, so a browser that reconnects counts again.
   */
  helpedTotal: number;
};

const HELPED_WINDOW_MS = 24 * 60 * 60 * 1000;
/** Remembered clients are bounded: past this, the oldest are forgotten (the figure is then a floor). */
const MAX_HELPED_REMEMBERED = 4096;
export type VolunteerEngineEvents = { stats: [stats: VolunteerStats]; error: [error: SessionError] };

/**
 * Volunteer: announce as a relay and pipe cells between clients and exits the broker lists. Reads nothing:
 * every payload is sealed for the exit.
 */
export class VolunteerEngine extends Emitter<VolunteerEngineEvents> {
  private readonly relay: RelayEngine;
  private connector: PeerConnector | undefined;
  private running = false;
  /** Client peer id → when its link last came up. Ids are per connection, so this counts visits, not names. */
  private readonly helped = new Map<string, number>();
  private helpedTotal = 0;
  private readonly throttle: ByteThrottle | undefined;
  /** Links to exits by link id: when the broker says an exit left, its circuits end at once. */
  private readonly exitLinks = new Map<string, Link>();
  private readonly clock: Clock;
  private readonly load: LoadReporter;
  /** False while the host cannot let a new link connect (see takeNewClients). */
  private takingNew = true;

  constructor(private readonly options: VolunteerEngineOptions) {
    super();
    this.clock = options.clock ?? systemClock;
    if (options.bandwidthBytesPerSec !== undefined && options.bandwidthBytesPerSec > 0)
      this.throttle = new ByteThrottle(options.bandwidthBytesPerSec, this.clock);
    // Stats change with every circuit a client opens or closes; the broker hears the client count, coalesced.
    this.load = new LoadReporter({
      report: (load) => options.signaling.reportLoad(load),
      clock: this.clock,
      ...(options.loadReportIntervalMs !== undefined ? { intervalMs: options.loadReportIntervalMs } : {}),
    });
    this.relay = new RelayEngine({
      connectExit: async (exitKey) => {
        const offer = await options.signaling.connectExit(toBase64Url(exitKey));
        const link = await this.requireConnector().connect(offer.linkId, true);
        this.exitLinks.set(offer.linkId, link);
        link.once('close', () => this.exitLinks.delete(offer.linkId));
        return link;
      },
    });
    this.relay.on('stats', (stats) => {
      if (this.running) this.reportLoad(stats.clientsNow);
      this.emit('stats', this.withHelped(stats));
    });
  }

  async start(): Promise<void> {
    if (this.running) return;
    const { signaling } = this.options;
    await signaling.connect();
    this.running = true;
    // Closed to new clients from the start: the broker must hear it before it names this relay to anyone.
    if (!this.takingNew) this.reportLoad(0);
    this.connector = new PeerConnector({
      signaling,
      createPeer: this.options.createPeer,
      connectTimeoutMs: this.options.connectTimeoutMs,
      lanes: this.options.lanes,
    });
    // The WebRTC link notices a vanished exit on its own, but not always promptly; the broker's word is
    // enough to end the circuits through it, so their clients rebuild through another exit at once.
    signaling.on('link-closed', (linkId) => {
      this.exitLinks.get(linkId)?.close(new SessionError('link-closed', 'the exit left'));
    });
    signaling.on('link', (offer) => {
      if (!this.running || offer.initiator || offer.peer.role !== 'client') return;
      if (!this.takingNew || this.relay.stats().clientsNow >= this.options.capacity) {
        signaling.linkClosed(offer.linkId);
        return;
      }
      const exitKey = offer.exit ? fromBase64Url(offer.exit.exitKey) : undefined;
      if (exitKey?.length === 32) this.relay.warmExit(exitKey);
      this.requireConnector()
        .connect(offer.linkId, false)
        .then(
          (link) => {
            if (!this.running) {
              link.close();
              return;
            }
            this.rememberHelped(offer.peer.peerId);
            this.relay.addClientLink(this.throttle ? new ThrottledLink(link, this.throttle) : link);
          },
          (error: SessionError) => this.emit('error', error),
        );
    });
  }

  /**
   * Whether new clients may come. A host whose new WebRTC links cannot connect for a while (Firefox while the
   * user's own Protect holds its WebRTC policy strict) takes none: the broker is told the relay is full, so it
   * names it to nobody, and an offer that crosses that word is turned away. The clients already here keep
   * their circuits; their links were made before.
   */
  takeNewClients(take: boolean): void {
    if (this.takingNew === take) return;
    this.takingNew = take;
    if (this.running) this.reportLoad(this.relay.stats().clientsNow);
  }

  private reportLoad(clientsNow: number): void {
    this.load.set(this.takingNew ? clientsNow : Math.max(clientsNow, this.options.capacity));
  }

  stop(): void {
    this.running = false;
    this.load.close();
    this.relay.close();
    this.throttle?.clear();
    this.options.signaling.close();
  }

  stats(): VolunteerStats {
    return this.withHelped(this.relay.stats());
  }

  private withHelped(stats: RelayStats): VolunteerStats {
    return {
      ...stats,
      capacity: this.options.capacity,
      helped24h: this.helped24h(),
      helpedTotal: this.helpedTotal,
    };
  }

  private rememberHelped(peerId: string): void {
    const now = this.clock.now();
    // Expired ones first, so a client back after 24 hours counts as new.
    this.helped24h();
    if (!this.helped.has(peerId)) this.helpedTotal += 1;
    this.helped.delete(peerId);
    this.helped.set(peerId, now);
    while (this.helped.size > MAX_HELPED_REMEMBERED) {
      const oldest = this.helped.keys().next().value;
      if (oldest === undefined) break;
      this.helped.delete(oldest);
    }
  }

  private helped24h(): number {
    const cutoff = this.clock.now() - HELPED_WINDOW_MS;
    // Insertion order is arrival order, so the expired ones are at the front.
    for (const [peerId, at] of this.helped) {
      if (at >= cutoff) break;
      this.helped.delete(peerId);
    }
    return this.helped.size;
  }

  private requireConnector(): PeerConnector {
    if (!this.connector) throw new SessionError('closed', 'the volunteer is not started');
    return this.connector;
  }
}
