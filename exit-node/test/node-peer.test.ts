import { afterEach, describe, expect, it, vi } from 'vitest';
import { LINK_HIGH_WATER, LINK_LOW_WATER, type PeerLink } from '@underpass/shared/links';
import { DATA_CHANNEL_MAX_BUFFERED, polyfillBufferedAmountLow, type ChannelLike } from '../src/node-peer.js';
import { peerLinkPair } from './peer-pair.js';

/** A stand-in for @roamhq/wrtc's channel: its `bufferedAmount` is a (counted) getter on the prototype. */
class FakeChannel implements ChannelLike {
  readyState = 'open';
  level = 0;
  nativeReads = 0;
  get bufferedAmount(): number {
    this.nativeReads += 1;
    return this.level;
  }
  send(data: Uint8Array | string): void {
    this.level += data.length;
  }
  addEventListener(_type: string, _listener: () => void): void {}
}

describe('the bufferedAmount polyfill for @roamhq/wrtc', () => {
  afterEach(() => vi.useRealTimers());

  /** A polyfilled fake channel on fake timers, and how many drains it has announced. */
  function polyfilled() {
    vi.useFakeTimers();
    const channel = new FakeChannel();
    polyfillBufferedAmountLow(channel, () => undefined);
    const drains = { count: 0 };
    channel.addEventListener('bufferedamountlow', () => (drains.count += 1));
    return { channel, drains };
  }

  it('reads the native level only while much is buffered, and announces the drain', () => {
    const { channel, drains } = polyfilled();
    // A page's worth of small messages: no blocking native read at all.
    for (let i = 0; i < 100; i++) {
      channel.send(new Uint8Array(1024));
      expect(channel.bufferedAmount).toBe((i + 1) * 1024);
      vi.advanceTimersByTime(4);
    }
    expect(channel.nativeReads).toBe(0);
    // Past the high-water mark: the level is polled until it drains, and the drain is announced once.
    channel.send(new Uint8Array(LINK_HIGH_WATER));
    expect(channel.bufferedAmount).toBeGreaterThan(LINK_HIGH_WATER);
    vi.advanceTimersByTime(40);
    expect(channel.nativeReads).toBeGreaterThan(5);
    expect(drains.count).toBe(0);
    channel.level = LINK_LOW_WATER;
    vi.advanceTimersByTime(4);
    expect(drains.count).toBe(1);
    expect(channel.bufferedAmount).toBe(LINK_LOW_WATER);
    const reads = channel.nativeReads;
    vi.advanceTimersByTime(100);
    expect(channel.nativeReads).toBe(reads); // drained: polling stopped
  });

  it('announces the drain even when the data left before the first poll', () => {
    const { channel, drains } = polyfilled();
    channel.send(new Uint8Array(2 * LINK_HIGH_WATER));
    channel.level = 0;
    vi.advanceTimersByTime(4);
    expect(drains.count).toBe(1);
  });
});

describe('the Node DataChannel (simple-peer on @roamhq/wrtc) as a Link', () => {
  let links: PeerLink[] = [];
  afterEach(() => {
    for (const link of links) link.close();
    links = [];
  });

  it('tells a sender that filled it past the high-water mark when it has drained', async () => {
    const [sender, receiver] = (links = await peerLinkPair());
    const total = 2 * LINK_HIGH_WATER;
    const arrived = new Promise<void>((resolve) => {
      let bytes = 0;
      receiver.on('message', (message) => {
        bytes += message.length;
        if (bytes >= total) resolve();
      });
    });
    const drained = new Promise<void>((resolve) => sender.on('drain', resolve));
    for (let sent = 0; sent < total; sent += 60 * 1024) sender.send(new Uint8Array(60 * 1024));
    expect(sender.bufferedAmount).toBeGreaterThan(LINK_HIGH_WATER);
    await drained;
    await arrived;
  });

  it('closes the link rather than lose a message when the channel’s queue is full', async () => {
    const [sender, receiver] = (links = await peerLinkPair());
    const size = 60 * 1024;
    const received: number[] = [];
    receiver.on('message', (message) =>
      received.push(new DataView(message.buffer, message.byteOffset).getUint32(0)),
    );
    const closed = new Promise<unknown>((resolve) => sender.on('close', resolve));
    let sent = 0;
    // A sender that ignores backpressure: wrtc alone would accept all of it and drop what does not fit.
    while (!sender.closed && sent * size < 2 * DATA_CHANNEL_MAX_BUFFERED) {
      const message = new Uint8Array(size);
      new DataView(message.buffer).setUint32(0, sent);
      sender.send(message);
      if (!sender.closed) sent += 1;
    }
    const error = await closed;
    expect(error).toMatchObject({ code: 'link-closed' });
    expect(String((error as Error).message)).toContain('send queue is full');
    // Whatever arrived is a gapless prefix of what was sent.
    expect(received).toEqual(received.map((_, index) => index));
  });
});
