import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../src/emitter.js';
import { FakePeer } from './helpers.js';
import { PeerConnector, type SignalingChannel } from '../src/links/peer-connector.js';
import { PeerLink, type SimplePeerLike } from '../src/links/peer-link.js';

class FakeSignaling
  extends Emitter<{ signal: [linkId: string, data: unknown]; 'link-closed': [linkId: string] }>
  implements SignalingChannel
{
  readonly closedLinks: string[] = [];
  signal(): void {}
  /** A signal from the far side, relayed by the broker. */
  deliver(linkId: string, data: unknown): void {
    this.emit('signal', linkId, data);
  }
  linkClosed(linkId: string): void {
    this.closedLinks.push(linkId);
  }
}

function setup(connectTimeoutMs?: number) {
  const signaling = new FakeSignaling();
  const peers: FakePeer[] = [];
  const connector = new PeerConnector({
    signaling,
    createPeer: () => {
      const peer = new FakePeer({ closeWhenDestroyed: true });
      peers.push(peer);
      return peer as unknown as SimplePeerLike;
    },
    ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
  });
  return { signaling, peers, connector };
}

describe('PeerConnector', () => {
  afterEach(() => vi.useRealTimers());

  it('hands signals that came early to the peer, and a PeerLink once it connects', async () => {
    const { signaling, peers, connector } = setup();
    signaling.deliver('link-1', { sdp: 'offer' });
    const link = connector.connect('link-1', false);
    expect(peers[0]!.signals).toEqual([{ sdp: 'offer' }]);
    peers[0]!.connectNow();
    expect(await link).toBeInstanceOf(PeerLink);
    // Closed later: the broker hears of it.
    peers[0]!.closeNow();
    expect(signaling.closedLinks).toEqual(['link-1']);
  });

  it('gives up a link that does not come up in time: the peer destroyed, the broker told once', async () => {
    vi.useFakeTimers();
    const { signaling, peers, connector } = setup(5_000);
    const outcome = connector
      .connect('link-2', true)
      .catch((error: { code: string; message: string }) => error);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(await outcome).toMatchObject({ code: 'link-closed', message: expect.stringContaining('in time') });
    expect(peers[0]!.destroyed).toBe(true);
    await vi.waitFor(() => expect(peers[0]!.closed).toBe(true));
    expect(signaling.closedLinks).toEqual(['link-2']);
  });

  it('fails with link-closed when WebRTC fails before connecting, and tells the broker once', async () => {
    const { signaling, peers, connector } = setup();
    const outcome = connector
      .connect('link-3', true)
      .catch((error: { code: string; message: string }) => error);
    peers[0]!.fail(new Error('ICE failed'));
    expect(await outcome).toMatchObject({ code: 'link-closed', message: 'WebRTC failed: ICE failed' });
    expect(peers[0]!.destroyed).toBe(true);
    await vi.waitFor(() => expect(peers[0]!.closed).toBe(true)); // the close that destroy() emits
    expect(signaling.closedLinks).toEqual(['link-3']);
  });
});
