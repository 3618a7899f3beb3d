import { afterEach, describe, expect, it, vi } from 'vitest';
import { Emitter } from '../src/emitter.js';
import { FakePeer } from './helpers.js';
import { BYTES_PER_SEND, PeerLink, type SimplePeerLike } from '../src/links/peer-link.js';
import { LINK_KEEPALIVE_MESSAGE } from '../src/links/link-keepalive.js';
import { DEFAULT_LINK_GOODBYE_WAIT_MS, LINK_GOODBYE_MESSAGE } from '../src/links/link-goodbye.js';
import { decodeCell } from '../src/tunnel/cells.js';

/** A connected simple-peer with its DataChannel, which PeerLink reads directly. */
class FakeChannelPeer extends FakePeer {
  readonly _channel: { onmessage: ((event: { data: unknown }) => void) | null; readyState: string } = {
    onmessage: null,
    readyState: 'open',
  };
  channelMessage(data: unknown): void {
    this._channel.onmessage?.({ data });
  }
  /** As a real channel: a send throws unless it is open. */
  override send(data: Uint8Array): void {
    if (this._channel.readyState !== 'open') throw new Error("RTCDataChannel.readyState is not 'open'");
    super.send(data);
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

  it('nudges: one keepalive per BYTES_PER_SEND of a message beyond the first, none for a small one or once closed', () => {
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike, { keepaliveMs: 0 });
    link.nudge(new Uint8Array(BYTES_PER_SEND - 1));
    expect(peer.sent).toEqual([]);
    link.nudge(new Uint8Array(61_470));
    expect(peer.sent).toHaveLength(Math.floor(61_470 / BYTES_PER_SEND));
    expect(peer.sent.every((message) => message === LINK_KEEPALIVE_MESSAGE)).toBe(true);
    link.close();
    const before = peer.sent.length;
    link.nudge(new Uint8Array(61_470));
    expect(peer.sent.slice(before).every((message) => message !== LINK_KEEPALIVE_MESSAGE)).toBe(true);
  });

  it('sends nothing once the far end is closing the channel, and still delivers what it sent before', () => {
    const peer = new FakeChannelPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    const heard: number[] = [];
    link.on('message', (message) => heard.push(message[0]!));
    peer._channel.readyState = 'closing';
    link.send(Uint8Array.of(9));
    expect(peer.sent).toEqual([]);
    expect(link.closed).toBe(false);
    // The far end's last message, still on its way in, reaches the listener; then its close ends the link.
    peer.channelMessage(Uint8Array.of(7).buffer);
    expect(heard).toEqual([7]);
    peer.closeNow();
    expect(link.closed).toBe(true);
  });

  it('closes the link instead of holding an unbounded backlog nobody reads', () => {
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    let closeCode: string | undefined;
    link.on('close', (error) => (closeCode = error?.code));
    for (let i = 0; i < 300; i++) peer.receive(Uint8Array.of(i & 0xff));
    expect(link.closed).toBe(true);
    expect(closeCode).toBe('link-closed');
    expect(peer.sent).toEqual([LINK_GOODBYE_MESSAGE]);
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
    expect(peer.sent).toEqual([LINK_GOODBYE_MESSAGE]);
  });
});

describe('PeerLink: goodbye', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('says goodbye after its last message, and the connection goes when the far end ends it', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    link.send(Uint8Array.of(3, 0, 0, 0, 1, 7));
    link.close();
    expect(link.closed).toBe(true);
    expect(peer.sent).toEqual([Uint8Array.of(3, 0, 0, 0, 1, 7), LINK_GOODBYE_MESSAGE]);
    // Torn down now, the connection would lose both on their way out.
    expect(peer.destroyed).toBe(false);
    peer.closeNow();
    expect(peer.destroyed).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends the connection itself when the far end does not, after the wait', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    link.close();
    vi.advanceTimersByTime(DEFAULT_LINK_GOODBYE_WAIT_MS - 1);
    expect(peer.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(peer.destroyed).toBe(true);
  });

  it('ends the connection at once when the goodbye cannot be sent', () => {
    const peer = new FakeChannelPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    peer._channel.readyState = 'closing';
    link.close();
    expect(peer.destroyed).toBe(true);
  });

  it('hears the far end’s goodbye after what it sent before, ends the link and the connection at once', () => {
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    const heard: number[] = [];
    let closed: { code?: string; message?: string } | undefined;
    link.on('message', (message) => heard.push(message[5]!));
    link.on('close', (error) => (closed = { code: error?.code, message: error?.message }));
    peer.receive(Uint8Array.of(3, 0, 0, 0, 1, 7));
    peer.receive(LINK_GOODBYE_MESSAGE.slice());
    expect(heard).toEqual([7]);
    expect(closed).toEqual({ code: 'link-closed', message: 'the far end closed the link' });
    expect(peer.destroyed).toBe(true);
    // Nothing after it, and no goodbye back: the far end is gone.
    peer.receive(Uint8Array.of(3, 0, 0, 0, 1, 8));
    expect(heard).toEqual([7]);
    expect(peer.sent).toEqual([]);
    // Not a cell any engine would accept, should one ever get through: circuit id 0 is reserved.
    expect(decodeCell(LINK_GOODBYE_MESSAGE).ok).toBe(false);
  });
});

/** A simple-peer as the browser's version behaves when the far end closes its DataChannel cleanly. */
class BrowserPeer extends Emitter<{
  data: [Uint8Array];
  close: [];
  error: [Error];
  end: [];
  disconnect: [];
  iceStateChange: [iceConnectionState: string];
}> {
  readonly bufferSize = 0;
  destroyCalls = 0;
  signal(): void {}
  send(): void {}
  fire(event: 'end' | 'disconnect'): void {
    this.emit(event);
  }
  ice(state: string): void {
    this.emit('iceStateChange', state);
  }
  destroy(): void {
    // simple-peer 10 ignores destroy() once it tore itself down: no close, no error.
    this.destroyCalls += 1;
  }
}

describe('PeerLink: a far end that left', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('closes when simple-peer says only disconnect (a clean DataChannel close from the far end)', () => {
    const peer = new BrowserPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    let closeCode: string | undefined;
    link.on('close', (error) => (closeCode = error?.code));
    peer.fire('disconnect');
    expect(link.closed).toBe(true);
    expect(closeCode).toBe('link-closed');
  });

  it('closes when the stream ends, even before disconnect', () => {
    const peer = new BrowserPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    peer.fire('end');
    expect(link.closed).toBe(true);
  });

  it('closes after ICE stays disconnected past the grace, and not before', () => {
    vi.useFakeTimers();
    const peer = new BrowserPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike, {
      iceDisconnectedGraceMs: 2_000,
      keepaliveMs: 0,
    });
    let reason: string | undefined;
    link.on('close', (error) => (reason = error?.message));
    peer.ice('disconnected');
    vi.advanceTimersByTime(1_999);
    expect(link.closed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(link.closed).toBe(true);
    expect(reason).toMatch(/ICE disconnected/);
    vi.advanceTimersByTime(DEFAULT_LINK_GOODBYE_WAIT_MS);
    expect(peer.destroyCalls).toBeGreaterThan(0);
  });

  it('keeps a link whose ICE comes back within the grace', () => {
    vi.useFakeTimers();
    const peer = new BrowserPeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike, {
      iceDisconnectedGraceMs: 2_000,
      keepaliveMs: 0,
    });
    peer.ice('disconnected');
    vi.advanceTimersByTime(1_500);
    peer.ice('connected');
    vi.advanceTimersByTime(10_000);
    expect(link.closed).toBe(false);
    peer.ice('disconnected');
    vi.advanceTimersByTime(2_000);
    expect(link.closed).toBe(true);
  });
});

describe('PeerLink: keepalive', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const keepalivesIn = (peer: FakePeer) =>
    peer.sent.filter((message) => message.length === 5 && message[0] === 4).length;

  it('sends a keepalive on each half second it sent nothing else, and none while it is sending', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    link.on('message', () => undefined);
    for (let tick = 0; tick < 6; tick++) {
      link.send(Uint8Array.of(2, 0, 0, 0, 1, 9));
      peer.receive(Uint8Array.of(2, 0, 0, 0, 1, 9));
      vi.advanceTimersByTime(500);
    }
    expect(keepalivesIn(peer)).toBe(0);
    peer.receive(Uint8Array.of(2, 0, 0, 0, 1, 9));
    vi.advanceTimersByTime(500);
    expect(keepalivesIn(peer)).toBe(1);
    expect(peer.sent.at(-1)).toEqual(LINK_KEEPALIVE_MESSAGE);
    expect(link.closed).toBe(false);
  });

  it('consumes the far end’s keepalives: no listener ever sees one', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    const heard: Uint8Array[] = [];
    link.on('message', (message) => heard.push(message));
    for (let second = 0; second < 10; second++) {
      peer.receive(LINK_KEEPALIVE_MESSAGE.slice());
      vi.advanceTimersByTime(1_000);
    }
    expect(heard).toEqual([]);
    expect(link.closed).toBe(false);
    // Not a cell any engine would accept, should one ever get through: circuit id 0 is reserved.
    expect(decodeCell(LINK_KEEPALIVE_MESSAGE).ok).toBe(false);
  });

  it('ends the link once nothing was heard for 3 s, and not before', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    let closed: { code?: string; message?: string } | undefined;
    link.on('close', (error) => (closed = { code: error?.code, message: error?.message }));
    vi.advanceTimersByTime(250);
    peer.receive(LINK_KEEPALIVE_MESSAGE.slice()); // the last word, 250 ms before a tick
    vi.advanceTimersByTime(250 + 2_500);
    expect(link.closed).toBe(false);
    vi.advanceTimersByTime(500); // 3.25 s after the last word: six whole silent periods
    expect(link.closed).toBe(true);
    expect(closed).toEqual({ code: 'link-closed', message: 'nothing heard from the far end for 3000 ms' });
    vi.advanceTimersByTime(DEFAULT_LINK_GOODBYE_WAIT_MS);
    expect(peer.destroyed).toBe(true);
  });

  it('keeps a link whose far end is heard only every 2 s (a peer whose timers run late)', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    for (let tick = 0; tick < 60; tick++) {
      if (tick % 4 === 0) peer.receive(LINK_KEEPALIVE_MESSAGE.slice());
      vi.advanceTimersByTime(500);
    }
    expect(link.closed).toBe(false);
  });

  it('tells its owner of every message heard, keepalives included (a striped link judges silence by it)', () => {
    const peer = new FakePeer();
    let heard = 0;
    const link = new PeerLink(peer as unknown as SimplePeerLike, { onHeard: () => heard++ });
    link.on('message', () => undefined);
    peer.receive(LINK_KEEPALIVE_MESSAGE.slice());
    peer.receive(Uint8Array.of(2, 0, 0, 0, 1, 9));
    expect(heard).toBe(2);
    link.close();
    peer.receive(LINK_KEEPALIVE_MESSAGE.slice());
    expect(heard).toBe(2);
  });

  it('with keepaliveMs 0 sends nothing and never takes silence for death', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike, { keepaliveMs: 0 });
    vi.advanceTimersByTime(60_000);
    expect(peer.sent).toEqual([]);
    expect(link.closed).toBe(false);
  });

  it('stops its timer when the link closes', () => {
    vi.useFakeTimers();
    const peer = new FakePeer();
    const link = new PeerLink(peer as unknown as SimplePeerLike);
    link.close();
    // Only the wait for the far end to end the connection (goodbye) is left.
    vi.advanceTimersByTime(DEFAULT_LINK_GOODBYE_WAIT_MS);
    expect(vi.getTimerCount()).toBe(0);
    expect(peer.sent).toEqual([LINK_GOODBYE_MESSAGE]);
  });
});
