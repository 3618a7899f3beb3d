import { SessionError } from '../errors.js';
import { PeerLink, type PeerFactory, type SimplePeerLike } from './peer-link.js';

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
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (message: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.peers.delete(linkId);
        peer.destroy();
        signaling.linkClosed(linkId);
        reject(new SessionError('link-closed', message));
      };
      const timer = setTimeout(
        () => fail('the WebRTC link did not come up in time'),
        this.options.connectTimeoutMs ?? 20_000,
      );
      peer.on('error', (error) => fail(`WebRTC failed: ${error.message}`));
      peer.on('close', () => {
        if (settled) {
          this.peers.delete(linkId);
          signaling.linkClosed(linkId);
        } else fail('the peer closed before connecting');
      });
      peer.on('connect', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(new PeerLink(peer));
      });
    });
  }
}

function safeSignal(peer: SimplePeerLike, data: unknown): void {
  try {
    peer.signal(data);
  } catch (error) {
    // A malformed signal from the far side ends that link only.
    peer.destroy(error instanceof Error ? error : new Error(String(error)));
  }
}
