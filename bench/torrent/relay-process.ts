/** The volunteer relay of bench:torrent in its own process, found by the client through the signaling server. */
import WebSocket from 'ws';
import { VolunteerEngine } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { serve } from './rpc.js';

let stopRelay: (() => void) | undefined;

serve({
  async start(signalingUrl: string) {
    const signaling = new SignalingClient({
      url: signalingUrl,
      WebSocket: WebSocket as unknown as WebSocketConstructorLike,
      hello: { role: 'relay', capacity: 4 },
    });
    const volunteer = new VolunteerEngine({ signaling, createPeer: nodePeerFactory(), capacity: 4 });
    await volunteer.start();
    stopRelay = () => {
      volunteer.stop();
      signaling.close();
    };
  },
  stop() {
    stopRelay?.();
    setTimeout(() => process.exit(0), 50);
  },
});
