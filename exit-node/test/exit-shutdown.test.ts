/**
 * An exit stopped by its operator (SIGTERM, as systemd and `docker stop` do): before its process ends, it tells
 * every client — a CLOSE cell on each circuit ("the exit is shutting down"), then each link's goodbye — and waits
 * for them to be read. Client and relay are the real engines over real WebRTC in Node, the exit its own CLI in
 * its own process, a second exit up. Without the wait the process ended with those messages unsent, and clients
 * learned from the broker a second later or, without one, from 3 s of silence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProtectState } from '@underpass/shared/engines';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { developmentCertificates } from '../src/certificates.js';
import { startTestSite, type TestSite } from '../../test/http-site.js';
import { spawnExit, stopExit } from './exit-process.js';
import { relayAndClient } from './relay-and-client.js';
import { httpGet } from './http-get.js';
import { until } from './until.js';

describe('an exit shut down by SIGTERM, a second exit up', { timeout: 60_000 }, () => {
  let signaling: SignalingServer;
  let site: TestSite;
  let exitB: ExitNode | undefined;
  const dirs: string[] = [];

  beforeAll(async () => {
    signaling = await startSignalingServer({ port: 0 });
    site = await startTestSite({ fileSize: 1024 });
  });

  afterAll(async () => {
    await exitB?.close();
    await signaling?.close();
    await site?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('tells its clients why before it ends, and they are on the other exit at once', async () => {
    const dirA = await mkdtemp(join(tmpdir(), 'underpass-exit-a-'));
    const dirB = await mkdtemp(join(tmpdir(), 'underpass-exit-b-'));
    dirs.push(dirA, dirB);
    const a = await spawnExit(signaling.url, dirA);
    let logA = '';
    a.child.stdout.on('data', (chunk: Buffer) => (logA += chunk.toString()));

    const { volunteer, protect } = await relayAndClient(signaling.url);
    const states: ProtectState[] = [];
    protect.on('state', (state) => states.push(state));
    try {
      await protect.start();
      expect(protect.state).toMatchObject({ status: 'protected', path: { exit: { exitKey: a.exitKey } } });
      exitB = await startExitNode({
        certificate: developmentCertificates,
        signalingUrl: signaling.url,
        dataDir: dirB,
        allowDestinations: ['127.0.0.1/32'],
        bindAddress: '127.0.0.4',
      });
      const bKey = exitB.exitKey;

      const stoppedAt = Date.now();
      const ended = stopExit(a.child, 'SIGTERM');
      await until('the path lost', () => states.some((state) => state.status === 'reconnecting'), 10_000);
      const toldInMs = Date.now() - stoppedAt;
      const lost = states.find((state) => state.status === 'reconnecting');
      await until(
        'protected through exit B',
        () => protect.state.status === 'protected' && protect.state.path.exit.exitKey === bKey,
        10_000,
      );
      const recoveredInMs = Date.now() - stoppedAt;
      const stream = await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port });
      expect((await httpGet(stream, '127.0.0.1', '/')).status).toMatch(/^HTTP\/1\.1 200/);

      const { code } = await ended;
      const endedInMs = Date.now() - stoppedAt;
      console.log(
        `SIGTERM → client told ${toldInMs} ms (${lost?.status === 'reconnecting' ? lost.reason : ''}), ` +
          `on exit B ${recoveredInMs} ms, exit process ended ${endedInMs} ms`,
      );
      // The exit's own word: its CLOSE cell's code `closed`, not `link-closed` (the broker's word, or silence).
      expect(lost).toMatchObject({ status: 'reconnecting', reason: expect.stringMatching(/: closed$/) });
      // Well inside the broker's 1 s grace for a closed link, which is how clients learned before.
      expect(toldInMs).toBeLessThan(1_000);
      expect(code).toBe(0);
      expect(logA).toContain('"event":"shutdown-done"');
    } finally {
      protect.stop();
      volunteer.stop();
      await stopExit(a.child);
    }
  });
});
