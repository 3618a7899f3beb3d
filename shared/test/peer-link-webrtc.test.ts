import { afterEach, describe, expect, it } from 'vitest';
import { PeerLink, type SimplePeerLike } from '../src/links/peer-link.js';
import { PeerConnector, type SignalingChannel } from '../src/links/peer-connector.js';
import { Emitter } from '../src/emitter.js';

/**
 * Real WebRTC (simple-peer 10, the browser's version, on node-datachannel): a far end that closes its
 * DataChannel cleanly makes simple-peer tear itself down without `close` or `error`. The link must end anyway,
 * and the broker must be told, or a relay counts its departed client for good.
 */

type BrowserPeer = SimplePeerLike & { _channel: { close(): void } | null; destroyed: boolean };
type PeerConstructor = new (options: { initiator: boolean; trickle: boolean }) => BrowserPeer;

// The package has no types; the extension declares the part it uses in its own tsconfig.
const SIMPLE_PEER_LITE: string = '@thaunknown/simple-peer/lite.js';
const { default: Peer } = (await import(SIMPLE_PEER_LITE)) as { default: PeerConstructor };

/**
 * Hands each side's signals to the other, as the broker would. Candidates wait until the answer is through:
 * node-datachannel rejects a trickled candidate that races ahead of the description (exit-node/src/node-peer.ts).
 */
class LoopbackSignaling
  extends Emitter<{ signal: [string, unknown]; 'link-closed': [string] }>
  implements SignalingChannel
{
  other: LoopbackSignaling | undefined;
  readonly closedLinks: string[] = [];
  private readonly shared: { answered: boolean; held: (() => void)[] };

  constructor(shared?: LoopbackSignaling) {
    super();
    this.shared = shared?.shared ?? { answered: false, held: [] };
  }

  signal(linkId: string, data: unknown): void {
    const deliver = () => this.other?.emit('signal', linkId, data);
    const kind = (data as { type?: string; candidate?: unknown }).type;
    if (kind === 'candidate' && !this.shared.answered) {
      this.shared.held.push(deliver);
      return;
    }
    queueMicrotask(deliver);
    if (kind === 'answer') {
      this.shared.answered = true;
      setTimeout(() => this.shared.held.splice(0).forEach((held) => held()), 0);
    }
  }

  linkClosed(linkId: string): void {
    this.closedLinks.push(linkId);
  }
}

const peers: BrowserPeer[] = [];
afterEach(() => {
  for (const peer of peers.splice(0)) peer.destroy();
});

describe('PeerLink over real WebRTC', () => {
  it('closes, and tells the broker, when the far end closes its DataChannel cleanly', async () => {
    const near = new LoopbackSignaling();
    const far = new LoopbackSignaling(near);
    near.other = far;
    far.other = near;
    const create = ({ initiator }: { initiator: boolean }) => {
      const peer = new Peer({ initiator, trickle: true });
      peers.push(peer);
      return peer;
    };
    const [nearLink, farLink] = await Promise.all([
      new PeerConnector({ signaling: near, createPeer: create, lanes: 1 }).connect('link-1', true),
      new PeerConnector({ signaling: far, createPeer: create, lanes: 1 }).connect('link-1', false),
    ]);
    expect(nearLink).toBeInstanceOf(PeerLink);
    const closed = new Promise<string | undefined>((resolve) =>
      nearLink.on('close', (e) => resolve(e?.code)),
    );
    // What the far browser's simple-peer does first on destroy: close the channel (a stream reset).
    const farPeer = peers[1]!;
    farPeer._channel?.close();
    expect(await closed).toBe('link-closed');
    expect(nearLink.closed).toBe(true);
    expect(near.closedLinks).toEqual(['link-1']);
    farLink.close();
  });
});
