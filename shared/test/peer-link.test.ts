import { describe, expect, it } from 'vitest';
import { FakePeer } from './helpers.js';
import { PeerLink, type SimplePeerLike } from '../src/links/peer-link.js';

/** A connected simple-peer with its DataChannel, which PeerLink reads directly. */
class FakeChannelPeer extends FakePeer {
  readonly _channel: { onmessage: ((event: { data: unknown }) => void) | null } = { onmessage: null };
  channelMessage(data: unknown): void {
    this._channel.onmessage?.({ data });
  }
}

describe('PeerLink', () => {
  it('keeps messages that arrive before anyone listens and hands them to the first listener, in order', () => {
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    peer.receive(Uint8Array.of(1));
    peer.receive(Uint8Array.of(2));
    const heard: number[] = [];
    link.on('message', (message) => heard.push(message[0]!));
    peer.receive(Uint8Array.of(3));
    expect(heard).toEqual([1, 2, 3]);
  });

  it('closes the link instead of holding an unbounded backlog nobody reads', () => {
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    let closeCode: string | undefined;
    link.on('close', (error) => (closeCode = error?.code));
    for (let i = 0; i < 300; i++) peer.receive(Uint8Array.of(i & 0xff));
    expect(link.closed).toBe(true);
    expect(closeCode).toBe('link-closed');
    expect(peer.destroyed).toBe(true);
  });

  it('reads messages straight from the DataChannel, after what simple-peer had already queued', () => {
    const peer = new FakeChannelPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    const heard: number[] = [];
    link.on('message', (message) => heard.push(...message));
    // simple-peer's stream flushes what it queued before the takeover; then every message comes from the channel.
    peer.receive(Uint8Array.of(1));
    peer.channelMessage(Uint8Array.of(2, 3).buffer);
    const offset = new Uint8Array([9, 4, 9]).subarray(1, 2);
    peer.channelMessage(offset);
    expect(heard).toEqual([1, 2, 3, 4]);
  });

  it('closes the link on a text message', () => {
    const peer = new FakeChannelPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    let closeCode: string | undefined;
    link.on('close', (error) => (closeCode = error?.code));
    peer.channelMessage('hello');
    expect(link.closed).toBe(true);
    expect(closeCode).toBe('malformed-frame');
    expect(peer.destroyed).toBe(true);
  });
});
