import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RelayEngine, TunnelClient } from '@underpass/shared/engines';
import { ExitEngine, ExitPolicy } from '@underpass/shared/exit';
import { DEFAULT_LINK_LANES, type Link } from '@underpass/shared/links';
import { generateStaticKeyPair, type StaticKeyPair } from '@underpass/shared/tunnel';
import { TcpDialer } from '../src/tcp-dialer.js';
import { startTestSite, type TestSite } from '../../test/http-site.js';
import { connectorPair } from './connector-pair.js';
import { httpGet } from './http-get.js';
import { DEVELOPMENT_TRUST, developmentCertificateFor } from '@underpass/shared/trust';

/** A link as the product makes one: over the default lanes, each end a StripedLink. */
async function productLinkPair(): Promise<[Link, Link]> {
  const { near, far } = await connectorPair(DEFAULT_LINK_LANES, DEFAULT_LINK_LANES);
  return [near, far];
}

describe('load through client → relay → exit (real WebRTC over the product’s lanes, real TCP)', () => {
  let bigSite: TestSite;
  let smallSite: TestSite;
  let staticKey: StaticKeyPair;
  let exit: ExitEngine;
  let relay: RelayEngine;
  let client: TunnelClient;
  const links: Link[] = [];

  beforeAll(async () => {
    bigSite = await startTestSite({ host: '127.0.0.3', fileSize: 50 * 1024 * 1024 });
    smallSite = await startTestSite({ host: '127.0.0.3', fileSize: 200 * 1024 });
    staticKey = generateStaticKeyPair();
    exit = new ExitEngine({
      certificate: developmentCertificateFor(staticKey.publicKey),
      staticKey,
      dialer: new TcpDialer({
        policy: new ExitPolicy({ allowDestinations: ['127.0.0.3/32'] }),
        bindAddress: '127.0.0.4',
      }),
    });
    const [relayToExit, exitFromRelay] = await productLinkPair();
    exit.addLink(exitFromRelay);
    relay = new RelayEngine({ connectExit: async () => relayToExit });
    const [clientToRelay, relayFromClient] = await productLinkPair();
    relay.addClientLink(relayFromClient);
    links.push(relayToExit, exitFromRelay, clientToRelay, relayFromClient);
    client = new TunnelClient({
      trust: DEVELOPMENT_TRUST,
      link: clientToRelay,
      exitKey: staticKey.publicKey,
    });
    await client.ready();
  });

  afterAll(async () => {
    client?.close();
    for (const link of links) link.close();
    exit?.close();
    relay?.close();
    await bigSite?.close();
    await smallSite?.close();
  });

  it('downloads 50 MB intact (sha-256 checked); the site sees only the exit’s address', async () => {
    const stream = await client.open({ kind: 'tcp', host: '127.0.0.3', port: bigSite.port });
    const result = await httpGet(stream, '127.0.0.3', '/file.bin');
    expect(result.status).toMatch(/^HTTP\/1\.1 200/);
    expect(result.bodyBytes).toBe(50 * 1024 * 1024);
    expect(result.sha256).toBe(bigSite.fileSha256);
    expect(new Set(bigSite.remoteAddresses)).toEqual(new Set(['127.0.0.4']));
  }, 60_000);

  it('runs 100 streams at once, each intact', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const stream = await client.open({ kind: 'tcp', host: '127.0.0.3', port: smallSite.port });
        return httpGet(stream, '127.0.0.3', '/file.bin');
      }),
    );
    for (const result of results) {
      expect(result.status).toMatch(/^HTTP\/1\.1 200/);
      expect(result.sha256).toBe(smallSite.fileSha256);
    }
    expect(smallSite.remoteAddresses).toHaveLength(100);
    expect(exit.stats()).toMatchObject({ sessions: 1, sessionsCutOff: 0 });
  }, 60_000);
});
