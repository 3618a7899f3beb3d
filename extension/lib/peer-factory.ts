// webrtc-adapter must be evaluated before simple-peer: webrtc-polyfill's browser entry captures
// `RTCPeerConnection` when it is first imported.
import 'webrtc-adapter';
import Peer from '@thaunknown/simple-peer/lite.js';
import type { PeerFactory } from '@underpass/shared/links';

/**
 * simple-peer's `lite` entry: DataChannels only, no media code, and of Node's built-ins it needs only
 * `events` (through streamx), which wxt.config.ts aliases to the npm package.
 */
export const createPeer: PeerFactory = (options) => new Peer({ initiator: options.initiator, trickle: true });
