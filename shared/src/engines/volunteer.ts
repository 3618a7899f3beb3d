import { Emitter } from '../emitter.js';
import { SessionError } from '../errors.js';
import { fromBase64Url, toBase64Url } from '../bytes.js';
import type { PeerFactory } from '../links/peer-link.js';
import { PeerConnector, type SignalingChannel } from './peer-connector.js';
import { RelayEngine, type RelayStats } from './relay.js';

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
  connectTimeoutMs?: number;
}

export type VolunteerStats = RelayStats & { capacity: number };
export type VolunteerEngineEvents = { stats: [stats: VolunteerStats]; error: [error: SessionError] };

/**
 * Volunteer: announce as a relay and pipe cells between clients and exits the broker lists. Reads nothing:
 * every payload is sealed for the exit.
 */
export class VolunteerEngine extends Emitter<VolunteerEngineEvents> {
  private readonly relay: RelayEngine;
  private connector: PeerConnector | undefined;
  private running = false;

  constructor(private readonly options: VolunteerEngineOptions) {
    super();
    this.relay = new RelayEngine({
      connectExit: async (exitKey) => {
        const offer = await options.signaling.connectExit(toBase64Url(exitKey));
        return this.requireConnector().connect(offer.linkId, true);
      },
    });
    this.relay.on('stats', (stats) => {
      if (this.running) options.signaling.reportLoad(stats.clientsNow);
      this.emit('stats', { ...stats, capacity: options.capacity });
    });
  }

  async start(): Promise<void> {
    if (this.running) return;
    const { signaling } = this.options;
    await signaling.connect();
    this.running = true;
    this.connector = new PeerConnector({
      signaling,
      createPeer: this.options.createPeer,
      connectTimeoutMs: this.options.connectTimeoutMs,
    });
    signaling.on('link', (offer) => {
      if (!this.running || offer.initiator || offer.peer.role !== 'client') return;
      if (this.relay.stats().clientsNow >= this.options.capacity) {
        signaling.linkClosed(offer.linkId);
        return;
      }
      const exitKey = offer.exit ? fromBase64Url(offer.exit.exitKey) : undefined;
      if (exitKey?.length === 32) this.relay.warmExit(exitKey);
      this.requireConnector()
        .connect(offer.linkId, false)
        .then(
          (link) => (this.running ? this.relay.addClientLink(link) : link.close()),
          (error: SessionError) => this.emit('error', error),
        );
    });
  }

  stop(): void {
    this.running = false;
    this.relay.close();
    this.options.signaling.close();
  }

  stats(): VolunteerStats {
    return { ...this.relay.stats(), capacity: this.options.capacity };
  }

  private requireConnector(): PeerConnector {
    if (!this.connector) throw new SessionError('closed', 'the volunteer is not started');
    return this.connector;
  }
}
