import { PeerLink, type SimplePeerLike } from '@underpass/shared/links';
import { nodePeerFactory } from '../src/node-peer.js';

/**
 * Two Node WebRTC peers connected to each other on this machine (signals handed across in memory: no
 * broker needed) and wrapped as Links. Real DTLS/SCTP DataChannel, the same stack the exit node uses.
 */
export async function peerLinkPair(): Promise<[PeerLink, PeerLink]> {
  const createPeer = nodePeerFactory();
  const a = createPeer({ initiator: true });
  const b = createPeer({ initiator: false });
  a.on('signal', (data) => b.signal(data));
  b.on('signal', (data) => a.signal(data));
  const connected = (peer: SimplePeerLike) =>
    new Promise<void>((resolve, reject) => {
      peer.on('connect', () => resolve());
      peer.on('error', reject);
    });
  await Promise.all([connected(a), connected(b)]);
  return [new PeerLink(a), new PeerLink(b)];
}
