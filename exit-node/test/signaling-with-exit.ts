import { afterAll, beforeAll } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import WebSocket from 'ws';
import { ProtectEngine, type ProtectEngineOptions } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { nodePeerFactory } from '../src/node-peer.js';
import { developmentCertificates } from '../src/certificates.js';

const WS = WebSocket as unknown as WebSocketConstructorLike;

export interface SignalingWithExit {
  readonly url: string;
  readonly closers: (() => void)[];
  /** A two-hop Protect client on the server, stopped with the rest (not started). */
  client(options?: Pick<ProtectEngineOptions, 'initialAttempts'>): ProtectEngine;
}

/**
 * For a describe block: a signaling server in memory and a real exit node on it (bound to 127.0.0.3), started
 * before its tests and stopped after them, with whatever the tests pushed on `closers` closed first, last first.
 */
export function signalingWithExit(): SignalingWithExit {
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

  const fixture: SignalingWithExit = {
    get url() {
      if (!signaling) throw new Error('the signaling server is not up yet (use it inside a test)');
      return signaling.url;
    },
    closers,
    client: (options = {}) => {
      const clientSignaling = new SignalingClient({
        url: fixture.url,
        WebSocket: WS,
        hello: { role: 'client' },
      });
      const protect = new ProtectEngine({
        signaling: clientSignaling,
        createPeer: nodePeerFactory(),
        mode: 'two-hop',
        directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
        ...options,
      });
      closers.push(() => {
        protect.stop();
        clientSignaling.close();
      });
      return protect;
    },
  };
  return fixture;
}
