import Peer from 'simple-peer';
import wrtc from '@roamhq/wrtc';
import { Backpressure, LINK_LOW_WATER, type PeerFactory } from '@underpass/shared/links';
import { withCachedDescriptions } from './cached-descriptions.js';
import { signalLoopbackCandidatesLast } from './loopback-candidates.js';

export interface IceServer {
  urls: string | string[];
}

/**
 * WebRTC in Node: simple-peer 9 on @roamhq/wrtc (libwebrtc, the browser's own stack). The fork the extension
 * uses binds node-datachannel instead, which here rejected trickled candidates that raced ahead of the remote
 * description, and in a throughput test cost more CPU per byte and then stalled (bench/tunnel/README.md). No
 * STUN server by default: the embedded network runs on one machine; operators pass --ice-server for peers
 * behind NAT. Loopback candidates are signalled only where nothing else was gathered (loopback-candidates.ts). The
 * connection's descriptions are never read from the native side, where reading them can crash the process
 * (cached-descriptions.ts).
 *
 * A crash in @roamhq/wrtc (0.10.0, the latest, as in node-webrtc before it): a DataChannel that the far end closes (its
 * `pc.close()`, which aborts the SCTP association, or its channel's close) is cleaned up on libwebrtc's
 * signaling thread, which clears the native channel pointer; a `send` on the JavaScript thread checks that
 * pointer, copies the message, and reads it again: if the close landed in between, SIGSEGV in
 * `node_webrtc::RTCDataChannel::Send` and the process is gone. Nothing in JavaScript can take the lock that
 * is missing there. It takes a send in flight at the moment the far end's close arrives, so it is as likely
 * as this end is busy sending to a peer that leaves: an exit or relay streaming to a client whose browser
 * closes the connection can crash this way. What avoids it is an order in which neither end still sends
 * when the connection goes, which links keep (PeerLink, `link-goodbye.ts`): the end that closes says goodbye
 * and sends nothing more, and the other, once it has read that, tears the connection down without a word.
 * A far end that leaves without a goodbye (an older peer, a killed browser) can still crash us: operators run
 * exits under a supervisor (README). `scripts/wrtc-close-race.ts` shows both (10 crashes in 122 abrupt closes,
 * 0 in 400 after a goodbye).
 */
export function nodePeerFactory(iceServers: IceServer[] = []): PeerFactory {
  return ({ initiator }) => {
    const peer = new Peer({
      initiator,
      trickle: true,
      wrtc: wrtcWithCachedDescriptions,
      config: { iceServers },
    });
    signalLoopbackCandidatesLast(peer);
    // Registered before anyone else can listen for 'connect', so PeerLink already sees the polyfill.
    peer.on('connect', () => {
      const channel = (peer as unknown as { _channel?: ChannelLike | null })._channel;
      if (channel) polyfillBufferedAmountLow(channel, (stop) => peer.on('close', stop));
    });
    return peer;
  };
}

/** @roamhq/wrtc as simple-peer gets it: each connection it makes answers its descriptions itself. */
const wrtcWithCachedDescriptions = {
  ...wrtc,
  RTCPeerConnection: function RTCPeerConnection(configuration?: RTCConfiguration) {
    return withCachedDescriptions(new wrtc.RTCPeerConnection(configuration));
  },
};

/** The DataChannel fields the polyfill touches. */
export type ChannelLike = {
  readonly bufferedAmount: number;
  bufferedAmountLowThreshold?: number;
  readyState: string;
  send(data: Uint8Array | string): void;
  addEventListener?(type: string, listener: () => void): void;
};

const POLL_MS = 4;
/**
 * What libwebrtc queues on one DataChannel. Past it a browser's `send` throws; @roamhq/wrtc's returns as if it
 * had sent, and the message is lost (measured: 400 × 60 KiB sent at once, 49 of them never arrived).
 */
export const DATA_CHANNEL_MAX_BUFFERED = 16 * 1024 * 1024;

/**
 * Three gaps in @roamhq/wrtc's DataChannel, filled here:
 *
 * - It has neither `bufferedAmountLowThreshold` nor a `bufferedamountlow` event, so a sender that stopped at
 *   the high-water mark (PeerLink, and the tunnel's sessions behind it) would wait for a drain that never
 *   comes. The event is made from polling: it fires once the buffer falls to the low-water mark after having
 *   been above it.
 * - Reading `bufferedAmount` is a blocking call into the native side (as is `send`), and its value moves only
 *   between turns of the event loop (a browser's grows at once with each send). PeerLink reads it after every
 *   send; in a profile of a download that was 14% of the exit's time. So `bufferedAmount` becomes the last
 *   native reading plus what was sent since — never less than the truth.
 * - A message that does not fit in the channel's queue is dropped without a word, which ends a session with
 *   `tampered` far from the cause. `send` throws instead, as a browser's does (PeerLink then closes the link).
 *
 * The native value is read only while more than the low-water mark may be buffered: every few milliseconds
 * until it has drained. A link carrying small messages (a page's requests and responses) never polls; one
 * that polled every 4 ms after any send cost the exit more of its main thread, in a profile of page loads,
 * than its sends did.
 */
export function polyfillBufferedAmountLow(channel: ChannelLike, onClose: (stop: () => void) => void): void {
  if (typeof channel.bufferedAmountLowThreshold === 'number') return;
  const nativeGetter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(channel), 'bufferedAmount')?.get;
  if (!nativeGetter) return;
  let reading = 0;
  let sentSinceReading = 0;
  /** Polls while more than the low-water mark may be buffered: the drain below it is then announced. */
  let timer: ReturnType<typeof setInterval> | undefined;
  const listeners: (() => void)[] = [];
  const stopPolling = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };
  // The event, not a link: it is owed as soon as more than the low-water mark may be buffered.
  const low = new Backpressure(
    () => {
      stopPolling();
      for (const listener of listeners) listener();
    },
    { high: LINK_LOW_WATER, low: LINK_LOW_WATER },
  );
  const readNative = () => {
    reading = (nativeGetter.call(channel) as number) ?? 0;
    sentSinceReading = 0;
  };
  const poll = () => {
    if (channel.readyState !== 'open') {
      if (channel.readyState === 'closed') stopPolling();
      return;
    }
    readNative();
    low.check(reading);
  };
  Object.defineProperty(channel, 'bufferedAmount', {
    configurable: true,
    get: () => reading + sentSinceReading,
  });
  const send = channel.send.bind(channel);
  channel.send = (data) => {
    const size = typeof data === 'string' ? data.length : data.byteLength;
    if (reading + sentSinceReading + size > DATA_CHANNEL_MAX_BUFFERED) {
      readNative();
      if (reading + size > DATA_CHANNEL_MAX_BUFFERED) {
        throw new Error(`the DataChannel's send queue is full (${reading} bytes waiting)`);
      }
    }
    sentSinceReading += size;
    send(data);
    // Whoever may now see the link above its high-water mark gets a drain event, however fast it empties.
    low.note(reading + sentSinceReading);
    if (!timer && low.congested) {
      timer = setInterval(poll, POLL_MS);
      timer.unref();
    }
  };
  const original = channel.addEventListener?.bind(channel);
  channel.addEventListener = (type, listener) => {
    if (type === 'bufferedamountlow') listeners.push(listener);
    else original?.(type, listener);
  };
  onClose(stopPolling);
}
