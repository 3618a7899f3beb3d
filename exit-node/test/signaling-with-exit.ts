import { afterAll, beforeAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { developmentCertificates } from '../src/certificates.js';

/**
 * For a describe block: a signaling server in memory and a real exit node on it (bound to 127.0.0.3), started
 * before its tests and stopped after them, with whatever the tests pushed on `closers` closed first, last first.
 */
export function signalingWithExit(): { readonly url: string; readonly closers: (() => void)[] } {
  let signaling: SignalingServer | undefined;
  let exit: ExitNode | undefined;
  let dataDir: string | undefined;
  const closers: (() => void)[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'underpass-exit-'));
    signaling = await startSignalingServer({ port: 0 });
    exit = await startExitNode({
      signalingUrl: signaling.url,
      dataDir,
      bindAddress: '127.0.0.3',
      certificate: developmentCertificates,
    });
  });

  afterAll(async () => {
    for (const close of closers.reverse()) close();
    await exit?.close();
    await signaling?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  return {
    get url() {
      if (!signaling) throw new Error('the signaling server is not up yet (use it inside a test)');
      return signaling.url;
    },
    closers,
  };
}
