import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitPolicy } from '@underpass/shared/exit';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { developmentCertificates } from '../src/certificates.js';

describe('the exit announces its policy', () => {
  let signaling: SignalingServer;
  let exit: ExitNode;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'underpass-announce-'));
    signaling = await startSignalingServer({ port: 0 });
    exit = await startExitNode({
      certificate: developmentCertificates,
      signalingUrl: signaling.url,
      dataDir,
      allowPorts: ['6881-6999'],
      denyPorts: ['8025'],
    });
  });

  afterAll(async () => {
    await exit?.close();
    await signaling?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('the directory lists the exit with the summary of the policy it enforces', async () => {
    const response = await fetch(new URL('/v1/exits', signaling.url.replace(/^ws/, 'http')));
    const { exits } = (await response.json()) as { exits: { exitKey: string; policy?: string }[] };
    const listed = exits.find((entry) => entry.exitKey === exit.exitKey);
    const expected = new ExitPolicy({ allowPorts: ['6881-6999'], denyPorts: ['8025'] }).summary();
    expect(listed?.policy).toBe(expected);
    expect(expected).toContain('except 25,');
    expect(expected).toContain('8025');
    expect(expected).not.toContain('6881');
  });
});
