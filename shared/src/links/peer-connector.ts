import { SessionError, toUnderpassError } from '../errors.js';
import { withDeadline } from '../deadline.js';
import { onPeerGone, PeerLink, type PeerFactory, type SimplePeerLike } from './peer-link.js';

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
}

/** Time for a WebRTC link to come up (offer, answer, ICE, DataChannel open) before it is given up. */
export const DEFAULT_PEER_CONNECT_TIMEOUT_MS = 20_000;

/** Signals that arrive before their link is being set up are held, within these bounds. */
const MAX_EARLY_LINKS = 64;
const MAX_EARLY_SIGNALS_PER_LINK = 32;

/**
 * Brings up WebRTC links named by the broker: routes simple-peer's offers, answers and ICE candidates through
 * the signaling server by link id, and hands back a Link once the DataChannel is open.
 */
export class PeerConnector {
  private readonly peers = new Map<string, SimplePeerLike>();
  private readonly early = new Map<string, unknown[]>();

  constructor(private readonly options: PeerConnectorOptions) {
    options.signaling.on('signal', (linkId, data) => {
      const peer = this.peers.get(linkId);
      if (peer) {
        safeSignal(peer, data);
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
      this.peers.get(linkId)?.destroy(new Error('the broker closed the link'));
    });
  }

  connect(linkId: string, initiator: boolean): Promise<PeerLink> {
    const { signaling, createPeer } = this.options;
    const peer = createPeer({ initiator });
    this.peers.set(linkId, peer);
    peer.on('signal', (data) => signaling.signal(linkId, data));
    for (const data of this.early.get(linkId) ?? []) safeSignal(peer, data);
    this.early.delete(linkId);
    let connected = false;
    const link = new Promise<PeerLink>((resolve, reject) => {
      const fail = (message: string) => reject(new SessionError('link-closed', message));
      peer.on('error', (error) => fail(`WebRTC failed: ${error.message}`));
      onPeerGone(peer, () => {
        if (!connected) {
          fail('the peer closed before connecting');
          return;
        }
        this.peers.delete(linkId);
        signaling.linkClosed(linkId);
      });
      peer.on('connect', () => {
        connected = true;
        // At once, not a microtask later: PeerLink takes the channel over before its first message event.
        resolve(new PeerLink(peer));
      });
    });
    return withDeadline(link, {
      ms: this.options.connectTimeoutMs ?? DEFAULT_PEER_CONNECT_TIMEOUT_MS,
      onTimeout: () => new SessionError('link-closed', 'the WebRTC link did not come up in time'),
      disposeLate: (late) => late.close(),
    }).catch((error: unknown) => {
      // The link is given up: the peer is destroyed and the broker told, once.
      if (!connected) {
        this.peers.delete(linkId);
        peer.destroy();
        signaling.linkClosed(linkId);
      }
      throw error;
    });
  }
}

function safeSignal(peer: SimplePeerLike, data: unknown): void {
  try {
    peer.signal(data);
  } catch (error) {
    // A malformed signal from the far side ends that link only.
    peer.destroy(toUnderpassError(error, 'link-closed'));
  }
}
