import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { fromBase64Url, toBase64Url } from '@underpass/shared/bytes';
import { VolunteerEngine } from '@underpass/shared/engines';
import type { UnderpassError } from '@underpass/shared/errors';
import { PeerConnector, type Link } from '@underpass/shared/links';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { encodeCell } from '@underpass/shared/tunnel';
import { nodePeerFactory } from '../src/node-peer.js';
import { signalingWithExit } from './signaling-with-exit.js';

const WS = WebSocket as unknown as WebSocketConstructorLike;
/** Open/close pairs the hostile client sends: 600 circuit events, six times the server's message burst. */
const CIRCUITS = 300;

/**
 * Issue 12's probe: a client that opens and closes circuits as fast as it can made the relay send a load
 * update for each, past the signaling server's message rate, and the server dropped the relay.
 */
describe('a client flooding a relay with circuits does not get it dropped by the signaling server', () => {
  const signaling = signalingWithExit();
  const { closers } = signaling;

  it(`${CIRCUITS} circuits opened and closed through one link; the relay stays listed`, async () => {
    const relaySignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'relay', capacity: 2 },
    });
    const relayErrors: UnderpassError[] = [];
    let relayClosed: UnderpassError | 'clean' | undefined;
    relaySignaling.on('error', (error) => relayErrors.push(error));
    relaySignaling.on('close', (error) => (relayClosed = error ?? 'clean'));
    const volunteer = new VolunteerEngine({
      signaling: relaySignaling,
      createPeer: nodePeerFactory(),
      capacity: 2,
    });
    closers.push(() => volunteer.stop());
    await volunteer.start();

    // The hostile client: a real link to the relay through the broker, then raw cells, no session at all.
    const hostileSignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'client' },
    });
    closers.push(() => hostileSignaling.close());
    await hostileSignaling.connect();
    const path = await hostileSignaling.requestPath({ mode: 'two-hop' });
    expect(path.hop.role).toBe('relay');
    const connector = new PeerConnector({ signaling: hostileSignaling, createPeer: nodePeerFactory() });
    const link: Link = await connector.connect(path.linkId, true);
    closers.push(() => link.close());
    const exitKey = fromBase64Url(path.exit.exitKey)!;
    for (let circuitId = 1; circuitId <= CIRCUITS; circuitId++) {
      link.send(encodeCell({ type: 'open', circuitId, exitKey }));
      link.send(encodeCell({ type: 'close', circuitId, code: 'closed' }));
    }
    await expect.poll(() => volunteer.stats().circuitsTotal, { timeout: 20_000 }).toBe(CIRCUITS);

    // A request on the relay's own connection: answered only after every frame the relay sent before it.
    await expect(relaySignaling.connectExit(toBase64Url(new Uint8Array(32)))).rejects.toMatchObject({
      code: 'unknown-exit',
    });
    expect(relayClosed).toBeUndefined();
    expect(relayErrors.map((error) => error.code)).not.toContain('rate-limited');

    // And the broker still lists it: a new client gets a path through this relay.
    const protect = signaling.client();
    await protect.start();
    expect(protect.state).toMatchObject({ status: 'protected', path: { hop: { role: 'relay' } } });
  }, 60_000);
});
