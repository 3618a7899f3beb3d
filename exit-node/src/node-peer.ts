import Peer from 'simple-peer';
import wrtc from '@roamhq/wrtc';
import type { PeerFactory } from '@underpass/shared';

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
  return ({ initiator }) => new Peer({ initiator, trickle: true, wrtc, config: { iceServers } });
}
