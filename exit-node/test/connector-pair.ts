import { PeerConnector, type Link, type SignalingChannel } from '@underpass/shared/links';
import { Emitter } from '@underpass/shared/emitter';
import { nodePeerFactory } from '../src/node-peer.js';

/**
 * Two ends of a link over real WebRTC (@roamhq/wrtc, as exits and relays run it), set up as the product sets its
 * links up: by two PeerConnectors, whose signals a loopback hands across as the broker would (opaque
 * `signal.data`). With more than one lane each end is a StripedLink.
 */
export class LoopbackSignaling
  extends Emitter<{ signal: [string, unknown]; 'link-closed': [string] }>
  implements SignalingChannel
{
  other: LoopbackSignaling | undefined;
  readonly sent: unknown[] = [];
  readonly closedLinks: string[] = [];
  signal(linkId: string, data: unknown): void {
    this.sent.push(data);
    // Re-serialized, as the broker does.
    const copy: unknown = JSON.parse(JSON.stringify(data));
    queueMicrotask(() => this.other?.emit('signal', linkId, copy));
  }
  linkClosed(linkId: string): void {
    this.closedLinks.push(linkId);
  }
}

/** The initiating end (`near`) asks for `nearLanes`, the other allows `farLanes`; they agree on the fewer. */
export async function connectorPair(
  nearLanes: number,
  farLanes: number,
): Promise<{ near: Link; far: Link; nearSignaling: LoopbackSignaling }> {
  const nearSignaling = new LoopbackSignaling();
  const farSignaling = new LoopbackSignaling();
  nearSignaling.other = farSignaling;
  farSignaling.other = nearSignaling;
  const near = new PeerConnector({
    signaling: nearSignaling,
    createPeer: nodePeerFactory(),
    lanes: nearLanes,
  });
  const far = new PeerConnector({ signaling: farSignaling, createPeer: nodePeerFactory(), lanes: farLanes });
  const [nearLink, farLink] = await Promise.all([near.connect('link-1', true), far.connect('link-1', false)]);
  return { near: nearLink, far: farLink, nearSignaling };
}
