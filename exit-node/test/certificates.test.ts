import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import {
  DEVELOPMENT_DIRECTORY,
  generateDirectoryKeyPair,
  issueCertificate,
  type CertificateRequest,
} from '@underpass/shared/trust';
import { generateStaticKeyPair } from '@underpass/shared/tunnel';
import WebSocket from 'ws';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { certificateFromFile, writeCertificateFile } from '../src/certificates.js';
import { exitIdentity, startExitNode } from '../src/exit-node.js';

const EXIT_BIN = fileURLToPath(new URL('../bin/underpass-exit.js', import.meta.url));
const DAY = 86_400;

describe('an exit runs only with a valid certificate', () => {
  let signaling: SignalingServer;
  let dir: string;

  beforeAll(async () => {
    signaling = await startSignalingServer({ port: 0 });
    dir = await mkdtemp(join(tmpdir(), 'underpass-cert-'));
  });
  afterAll(async () => {
    await signaling?.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** An exit data dir, its identity, and a certificate file written from `change`d fields. */
  async function setup(
    name: string,
    change: Partial<CertificateRequest> = {},
    signer = DEVELOPMENT_DIRECTORY,
  ) {
    const dataDir = join(dir, name);
    const identity = await exitIdentity({ dataDir, servesTorrents: false });
    const now = Math.floor(Date.now() / 1000);
    const file = join(dataDir, 'exit-certificate.json');
    const request = { ...identity, issuedAt: now, expiresAt: now + 30 * DAY, ...change };
    await writeCertificateFile(file, {
      certificate: issueCertificate(request, signer),
      directoryKey: signer.publicKey,
    });
    return { dataDir, file, identity };
  }

  /** The broker knows no exit: a client asking for a path gets none. */
  async function noExitAnnounced(): Promise<void> {
    const client = new SignalingClient({
      url: signaling.url,
      WebSocket: WebSocket as unknown as WebSocketConstructorLike,
      hello: { role: 'client' },
    });
    try {
      await client.connect();
      await expect(client.requestPath({ mode: 'direct' })).rejects.toMatchObject({
        code: 'no-exit-available',
      });
    } finally {
      client.close();
    }
  }

  const start = (dataDir: string, file: string) =>
    startExitNode({ signalingUrl: signaling.url, dataDir, certificate: certificateFromFile(file) });

  it('refuses to start without a certificate file, naming what to do', async () => {
    const dataDir = join(dir, 'none');
    await expect(start(dataDir, join(dataDir, 'exit-certificate.json'))).rejects.toMatchObject({
      code: 'certificate-missing',
      message: /no certificate file at .*exit-certificate\.json/,
    });
    await noExitAnnounced();
  });

  it('refuses an expired, a foreign, a mismatched or a damaged certificate', async () => {
    const now = Math.floor(Date.now() / 1000);
    const expired = await setup('expired', { issuedAt: now - 10 * DAY, expiresAt: now - DAY });
    await expect(start(expired.dataDir, expired.file)).rejects.toMatchObject({ code: 'certificate-expired' });
    const otherKey = await setup('other-key', { exitKey: generateStaticKeyPair().publicKey });
    await expect(start(otherKey.dataDir, otherKey.file)).rejects.toMatchObject({
      code: 'certificate-mismatch',
    });
    const policy = await setup('policy', { policy: 'allows everything' });
    await expect(start(policy.dataDir, policy.file)).rejects.toMatchObject({
      code: 'certificate-mismatch',
      message: /policy/,
    });
    const torrents = await setup('torrents', { torrents: true });
    await expect(start(torrents.dataDir, torrents.file)).rejects.toMatchObject({
      code: 'certificate-mismatch',
      message: /torrents/,
    });
    // Signed by one directory key, filed beside another: the file was tampered with.
    const damaged = await setup('damaged');
    const bundle = await certificateFromFile(damaged.file)(damaged.identity);
    await writeCertificateFile(damaged.file, {
      ...bundle,
      directoryKey: generateDirectoryKeyPair().publicKey,
    });
    await expect(start(damaged.dataDir, damaged.file)).rejects.toMatchObject({ code: 'certificate-invalid' });
    await noExitAnnounced();
  });

  it('starts with a valid one, takes a renewal, and keeps its certificate when a bad one is offered', async () => {
    const { dataDir, file, identity } = await setup('valid');
    const exit = await start(dataDir, file);
    try {
      const first = exit.certificateExpiresAt;
      const now = Math.floor(Date.now() / 1000);
      const renewed = issueCertificate(
        { ...identity, issuedAt: now, expiresAt: now + 60 * DAY },
        DEVELOPMENT_DIRECTORY,
      );
      await writeCertificateFile(file, {
        certificate: renewed,
        directoryKey: DEVELOPMENT_DIRECTORY.publicKey,
      });
      await exit.reloadCertificate();
      expect(exit.certificateExpiresAt).toBe(now + 60 * DAY);
      expect(exit.certificateExpiresAt).toBeGreaterThan(first);
      const expired = issueCertificate(
        { ...identity, issuedAt: now - 9 * DAY, expiresAt: now - DAY },
        DEVELOPMENT_DIRECTORY,
      );
      await writeCertificateFile(file, {
        certificate: expired,
        directoryKey: DEVELOPMENT_DIRECTORY.publicKey,
      });
      await expect(exit.reloadCertificate()).rejects.toMatchObject({ code: 'certificate-expired' });
      expect(exit.certificateExpiresAt).toBe(now + 60 * DAY);
    } finally {
      await exit.close();
    }
  });

  it('the underpass-exit command exits with a clear message when it has no certificate', async () => {
    const dataDir = join(dir, 'command');
    const run = promisify(execFile)(process.execPath, [
      EXIT_BIN,
      '--data-dir',
      dataDir,
      '--signaling',
      signaling.url,
    ]);
    const failure = await run.then(
      () => undefined,
      (error: { code?: number; stderr?: string }) => error,
    );
    expect(failure?.code).toBe(1);
    expect(failure?.stderr).toMatch(/underpass-exit: no certificate file at .*exit-certificate\.json/);
  });
});
