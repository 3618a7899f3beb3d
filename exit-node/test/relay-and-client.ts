/** A volunteer relay and a Protect client in this process, as the extension runs them, over real WebRTC in Node. */
import WebSocket from 'ws';
import { ProtectEngine, VolunteerEngine } from '@underpass/shared/engines';
import { ReconnectingSignaling, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';
import { nodePeerFactory } from '../src/node-peer.js';

const WS = WebSocket as unknown as WebSocketConstructorLike;

/** The relay is started (at the broker, room for 4 clients); the client is not. */
export async function relayAndClient(signalingUrl: string): Promise<{
  relaySignaling: ReconnectingSignaling;
  volunteer: VolunteerEngine;
  protect: ProtectEngine;
}> {
  const relaySignaling = new ReconnectingSignaling({
    url: signalingUrl,
    WebSocket: WS,
    hello: { role: 'relay', capacity: 4 },
  });
  const volunteer = new VolunteerEngine({
    signaling: relaySignaling,
    createPeer: nodePeerFactory(),
    capacity: 4,
  });
  await volunteer.start();
  // As the extension makes it: a signaling client that reconnects by itself, kept for the whole run.
  const protect = new ProtectEngine({
    directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
    createSignaling: () =>
      new ReconnectingSignaling({ url: signalingUrl, WebSocket: WS, hello: { role: 'client' } }),
    createPeer: nodePeerFactory(),
  });
  return { relaySignaling, volunteer, protect };
}
