import Peer from 'simple-peer';
import wrtc from '@roamhq/wrtc';
import { LINK_LOW_WATER, type PeerFactory } from '@underpass/shared';

export interface IceServer {
  urls: string | string[];
}

/**
 * WebRTC in Node: simple-peer 9 on @roamhq/wrtc (libwebrtc, the browser's own stack). The fork the extension
 * uses binds node-datachannel instead, which here rejected trickled candidates that raced ahead of the remote
 * description. No STUN server by default: the embedded network runs on one machine; operators pass
 * --ice-server for peers behind NAT.
 */
export function nodePeerFactory(iceServers: IceServer[] = []): PeerFactory {
  return ({ initiator }) => {
    const peer = new Peer({ initiator, trickle: true, wrtc, config: { iceServers } });
    // Registered before anyone else can listen for 'connect', so PeerLink already sees the polyfill.
    peer.on('connect', () => polyfillBufferedAmountLow(peer));
    return peer;
  };
}

/** The DataChannel fields the polyfill touches. */
type ChannelLike = {
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold?: number;
  readyState: string;
  send(data: Uint8Array | string): void;
  addEventListener?(type: string, listener: () => void): void;
};

const POLL_MS = 4;

/**
 * Two gaps in @roamhq/wrtc's DataChannel, filled here:
 *
 * - It has neither `bufferedAmountLowThreshold` nor a `bufferedamountlow` event, so a sender that stopped at
 *   the high-water mark (PeerLink, and the tunnel's sessions behind it) would wait for a drain that never
 *   comes. The event is made from polling: it fires once the buffer falls to the low-water mark after having
 *   been above it.
 * - Reading `bufferedAmount` is a blocking call into the native side, and its value moves only between turns
 *   of the event loop (a browser's grows at once with each send). PeerLink reads it after every send; in a
 *   profile of a download that was 14% of the exit's time. So `bufferedAmount` becomes the last native reading
 *   plus what was sent since — never less than the truth, refreshed by the poller every few milliseconds
 *   while anything is buffered.
 */
function polyfillBufferedAmountLow(peer: Peer): void {
  const channel = (peer as unknown as { _channel?: ChannelLike | null })._channel;
  if (!channel || typeof channel.bufferedAmountLowThreshold === 'number') return;
  const nativeGetter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(channel), 'bufferedAmount')?.get;
  if (!nativeGetter) return;
  let reading = 0;
  let sentSinceReading = 0;
  const readNative = () => {
    reading = (nativeGetter.call(channel) as number) ?? 0;
    sentSinceReading = 0;
  };
  Object.defineProperty(channel, 'bufferedAmount', {
    configurable: true,
    get: () => reading + sentSinceReading,
  });
  const send = channel.send.bind(channel);
  channel.send = (data) => {
    sentSinceReading += typeof data === 'string' ? data.length : data.byteLength;
    send(data);
  };
  const listeners: (() => void)[] = [];
  const original = channel.addEventListener?.bind(channel);
  channel.addEventListener = (type, listener) => {
    if (type === 'bufferedamountlow') listeners.push(listener);
    else original?.(type, listener);
  };
  let wasHigh = false;
  const timer = setInterval(() => {
    if (channel.readyState !== 'open') {
      if (channel.readyState === 'closed') clearInterval(timer);
      return;
    }
    if (sentSinceReading === 0 && reading === 0) return; // idle: nothing to learn
    readNative();
    if (reading > LINK_LOW_WATER) wasHigh = true;
    else if (wasHigh) {
      wasHigh = false;
      for (const listener of listeners) listener();
    }
  }, POLL_MS);
  timer.unref();
  peer.on('close', () => clearInterval(timer));
}
