/**
 * The volunteer relay of bench:torrent in its own process, found by the client through the signaling server.
 * It counts the DataChannel messages it sends (each one cell, in both directions): a DataChannel's cost is per
 * message, so bytes per message tell how well a kind of stream fills its cells.
 */
import WebSocket from 'ws';
import { VolunteerEngine } from '@underpass/shared/engines';
import type { PeerFactory } from '@underpass/shared/links';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { serve } from './rpc.js';

export type Sent = { messages: number; bytes: number };

const sent: Sent = { messages: 0, bytes: 0 };
const countingPeers: PeerFactory = (options) => {
  const peer = nodePeerFactory()(options);
  const send = peer.send.bind(peer);
  peer.send = (message) => {
    sent.messages++;
    sent.bytes += message.length;
    send(message);
  };
  return peer;
};

let stopRelay: (() => void) | undefined;

serve({
  async start(signalingUrl: string) {
    const signaling = new SignalingClient({
      url: signalingUrl,
      WebSocket: WebSocket as unknown as WebSocketConstructorLike,
      hello: { role: 'relay', capacity: 4 },
    });
    const volunteer = new VolunteerEngine({ signaling, createPeer: countingPeers, capacity: 4 });
    await volunteer.start();
    stopRelay = () => {
      volunteer.stop();
      signaling.close();
    };
  },
  sent: () => ({ ...sent }),
  stop() {
    stopRelay?.();
    setTimeout(() => process.exit(0), 50);
  },
});
