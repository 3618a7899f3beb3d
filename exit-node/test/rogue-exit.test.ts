import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { toBase64Url } from '@underpass/shared/bytes';
import { ProtectEngine, VolunteerEngine } from '@underpass/shared/engines';
import { ExitEngine } from '@underpass/shared/exit';
import { PeerConnector } from '@underpass/shared/links';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { decodeCell } from '@underpass/shared/tunnel';
import { generateStaticKeyPair, type StaticKeyPair } from '@underpass/shared/tunnel';
import {
  DEVELOPMENT_DIRECTORY,
  DEVELOPMENT_DIRECTORY_KEYS,
  generateDirectoryKeyPair,
  issueCertificate,
  issueDevelopmentCertificate,
  type UntrustedExitReason,
} from '@underpass/shared/trust';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { nodePeerFactory } from '../src/node-peer.js';
import type { Dialer } from '@underpass/shared/exit';
import { until } from './until.js';

const WS = WebSocket as unknown as WebSocketConstructorLike;
const DAY = 86_400;

/**
 * What a dishonest signaling server does: it names an exit of its own. Here that exit is the only one the
 * broker knows, so every path request gets it. It holds a real X25519 key (it completes Noise NK and proves
 * its key to the broker), and answers each handshake with the certificate the case gives it. It counts every
 * byte of the user's traffic it receives: the sealed transport messages after each circuit's hello (each
 * one a mux frame: an OPEN with a destination, or stream data) and every stream it is asked to dial.
 */
class RogueExit {
  readonly staticKey: StaticKeyPair = generateStaticKeyPair();
  trafficBytes = 0;
  dials = 0;
  closeCodes: string[] = [];
  handshakes = 0;
  private readonly signaling: SignalingClient;
  private readonly engine: ExitEngine;

  constructor(url: string, certificate: (exitKey: Uint8Array) => Uint8Array) {
    const dialer: Dialer = {
      dial: () => {
        this.dials += 1;
        return Promise.reject(new Error('a rogue exit never gets this far'));
      },
    };
    const bytes = certificate(this.staticKey.publicKey);
    this.engine = new ExitEngine({ staticKey: this.staticKey, certificate: () => bytes, dialer });
    this.signaling = new SignalingClient({
      url,
      WebSocket: WS,
      hello: { role: 'exit', exitKey: toBase64Url(this.staticKey.publicKey), capacity: 10 },
      exitSecretKey: this.staticKey.secretKey,
    });
    const connector = new PeerConnector({ signaling: this.signaling, createPeer: nodePeerFactory() });
    this.signaling.on('link', (offer) => {
      if (offer.initiator) return;
      void connector.connect(offer.linkId, false).then((link) => {
        const helloSeen = new Set<number>();
        // Listens beside the engine, on the same link: sees exactly what the engine receives.
        link.on('message', (message) => {
          const decoded = decodeCell(message);
          if (!decoded.ok) return;
          const cell = decoded.value;
          if (cell.type === 'close') this.closeCodes.push(cell.code);
          if (cell.type !== 'data') return;
          if (!helloSeen.has(cell.circuitId)) {
            helloSeen.add(cell.circuitId);
            this.handshakes += 1;
            return;
          }
          this.trafficBytes += cell.payload.length;
        });
        this.engine.addLink(link);
      });
    });
  }

  start(): Promise<string> {
    return this.signaling.connect();
  }

  close(): void {
    this.signaling.close();
    this.engine.close();
  }
}

describe('a signaling server that names an exit of its own gets no session and none of the traffic', () => {
  // A broker of its own for each case: the exit of one case must not be the one the next case is offered.
  let signaling: SignalingServer;
  const cleanup: (() => void)[] = [];

  beforeEach(async () => {
    signaling = await startSignalingServer({ port: 0 });
  });
  afterEach(async () => {
    for (const step of cleanup.splice(0)) step();
    await signaling.close();
  });

  const nowSeconds = () => Math.floor(Date.now() / 1000);
  const policy = 'default-deny local and private ranges';
  const cases: {
    name: string;
    reason: UntrustedExitReason;
    certificate: (exitKey: Uint8Array) => Uint8Array;
  }[] = [
    { name: 'no certificate', reason: 'no-certificate', certificate: () => new Uint8Array(0) },
    {
      name: 'a bad signature',
      reason: 'bad-signature',
      certificate: (exitKey) => {
        const bytes = issueDevelopmentCertificate({ exitKey, policy, torrents: false });
        bytes[bytes.length - 10]! ^= 0x01;
        return bytes;
      },
    },
    {
      name: 'an expired certificate',
      reason: 'expired',
      certificate: (exitKey) =>
        issueCertificate(
          {
            exitKey,
            policy,
            torrents: false,
            issuedAt: nowSeconds() - 30 * DAY,
            expiresAt: nowSeconds() - DAY,
          },
          DEVELOPMENT_DIRECTORY,
        ),
    },
    {
      name: "its own directory's certificate",
      reason: 'unknown-directory-key',
      certificate: (exitKey) =>
        issueCertificate(
          { exitKey, policy, torrents: false, issuedAt: nowSeconds(), expiresAt: nowSeconds() + DAY },
          generateDirectoryKeyPair(),
        ),
    },
    {
      name: "a real exit's certificate (for another key)",
      reason: 'key-mismatch',
      certificate: () =>
        issueDevelopmentCertificate({ exitKey: generateStaticKeyPair().publicKey, policy, torrents: false }),
    },
  ];

  async function protectThrough(mode: 'direct' | 'two-hop') {
    const clientSignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'client' },
    });
    cleanup.push(() => clientSignaling.close());
    const protect = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      signaling: clientSignaling,
      createPeer: nodePeerFactory(),
      mode,
      initialAttempts: 2,
    });
    cleanup.push(() => protect.stop());
    const failure = await protect.start().then(
      () => undefined,
      (error: unknown) => error,
    );
    return { protect, failure };
  }

  for (const { name, reason, certificate } of cases) {
    it(`direct: a rogue exit with ${name} is refused (${reason})`, async () => {
      const rogue = new RogueExit(signaling.url, certificate);
      cleanup.push(() => rogue.close());
      await rogue.start();
      const { protect, failure } = await protectThrough('direct');
      expect(failure).toMatchObject({ code: 'untrusted-exit', reason });
      expect(protect.state).toMatchObject({ status: 'error', code: 'untrusted-exit' });
      // The user's traffic now has nowhere to go: refused here, never sent to the rogue.
      await expect(protect.open({ kind: 'tcp', host: 'example.org', port: 443 })).rejects.toMatchObject({
        code: 'unreachable',
      });
      // The client tells the rogue why (CLOSE untrusted-exit) after both handshakes: the refusal came from
      // the certificate check, not from a failed connection.
      await until('the rogue hears the client close', () => rogue.closeCodes.length === 2);
      expect(rogue.handshakes).toBe(2);
      expect(rogue.closeCodes).toEqual(['untrusted-exit', 'untrusted-exit']);
      expect(rogue.trafficBytes).toBe(0);
      expect(rogue.dials).toBe(0);
    });
  }

  it('the same exit with a valid certificate gets the session and the traffic (the counters count)', async () => {
    const certified = new RogueExit(signaling.url, (exitKey) =>
      issueDevelopmentCertificate({ exitKey, policy, torrents: false }),
    );
    cleanup.push(() => certified.close());
    await certified.start();
    const { protect, failure } = await protectThrough('direct');
    expect(failure).toBeUndefined();
    await expect(protect.open({ kind: 'tcp', host: 'example.org', port: 443 })).rejects.toMatchObject({
      code: 'unreachable',
    });
    expect(certified.dials).toBe(1);
    expect(certified.trafficBytes).toBeGreaterThan(0);
  });

  it('two-hop: through a volunteer relay, the rogue exit gets no session and no byte either', async () => {
    const relaySignaling = new SignalingClient({
      url: signaling.url,
      WebSocket: WS,
      hello: { role: 'relay', capacity: 4 },
    });
    const volunteer = new VolunteerEngine({
      signaling: relaySignaling,
      createPeer: nodePeerFactory(),
      capacity: 4,
    });
    cleanup.push(() => {
      volunteer.stop();
      relaySignaling.close();
    });
    await volunteer.start();
    const rogue = new RogueExit(signaling.url, () => new Uint8Array(0));
    cleanup.push(() => rogue.close());
    await rogue.start();
    const { failure } = await protectThrough('two-hop');
    expect(failure).toMatchObject({ code: 'untrusted-exit', reason: 'no-certificate' });
    await until('the rogue hears the client close', () => rogue.closeCodes.length === 2);
    expect(rogue.closeCodes).toEqual(['untrusted-exit', 'untrusted-exit']);
    expect(rogue.trafficBytes).toBe(0);
    expect(rogue.dials).toBe(0);
  });
});
