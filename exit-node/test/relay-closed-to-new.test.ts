import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { VolunteerEngine } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { nodePeerFactory } from '../src/node-peer.js';
import { signalingWithExit } from './signaling-with-exit.js';

const WS = WebSocket as unknown as WebSocketConstructorLike;

/**
 * A relay that takes no new clients for a while (a Firefox volunteer while its own Protect holds WebRTC
 * strict): the broker names it to nobody, the client it has keeps its path, and once it takes clients again
 * the broker names it again.
 */
describe('a relay closed to new clients', () => {
  const signaling = signalingWithExit();
  const { closers } = signaling;

  const client = () => signaling.client({ initialAttempts: 1 });

  it('is named to nobody, keeps the client it has, and is named again once open', async () => {
    const volunteer = new VolunteerEngine({
      signaling: new SignalingClient({
        url: signaling.url,
        WebSocket: WS,
        hello: { role: 'relay', capacity: 4 },
      }),
      createPeer: nodePeerFactory(),
      capacity: 4,
    });
    closers.push(() => volunteer.stop());
    await volunteer.start();

    const first = client();
    await first.start();
    expect(first.state).toMatchObject({ status: 'protected', path: { hop: { role: 'relay' } } });

    // The word reaches the broker on the relay's own connection: asked until it has been heard (a request is
    // cheap, and one that still names the relay gets its link turned away).
    const asker = new SignalingClient({ url: signaling.url, WebSocket: WS, hello: { role: 'client' } });
    closers.push(() => asker.close());
    await asker.connect();
    const ask = () =>
      asker.requestPath({ mode: 'two-hop' }).then(
        (path) => path.hop.role,
        (error: { code?: string }) => error.code,
      );
    volunteer.takeNewClients(false);
    await expect.poll(ask, { timeout: 10_000 }).toBe('no-relay-available');
    const second = client();
    await expect(second.start()).rejects.toMatchObject({ code: 'no-relay-available' });
    expect(first.state.status).toBe('protected');
    expect(volunteer.stats().clientsNow).toBe(1);

    volunteer.takeNewClients(true);
    await expect.poll(ask, { timeout: 10_000 }).toBe('relay');
    const third = client();
    await third.start();
    expect(third.state).toMatchObject({ status: 'protected', path: { hop: { role: 'relay' } } });
  }, 60_000);
});
