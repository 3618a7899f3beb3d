/**
 * The loss of an exit, as a SIGKILL makes it: the exit is a real process (its own CLI), killed outright, so its
 * WebRTC links get no goodbye and only its signaling socket tells anyone it is gone. Client and relay are the
 * real engines over real WebRTC in Node; a second exit stays up throughout. The client must be back on a
 * working path within the recovery goal (issue 11: p95 ≤ 5 s), also when the killed exit comes back under the
 * same key while the relay may still hold its dead link.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProtectEngine, ProtectState } from '@underpass/shared/engines';
import type { ByteStream } from '@underpass/shared/streams';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { startExitNode } from '../src/exit-node.js';
import { spawnExit, stopExit } from './exit-process.js';
import { relayAndClient } from './relay-and-client.js';
import { startTestSite, type TestSite } from '../../test/http-site.js';
import { httpGet } from './http-get.js';
import { until } from './until.js';
import { developmentCertificates } from '../src/certificates.js';

/** Issue 11's goal for the recovery from an exit's loss. */
const RECOVERY_GOAL_MS = 5_000;

/** Links the broker registered again from both members' claims (its `link_claims_total{outcome="paired"}`). */
async function resumedLinks(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const match = /^underpass_signaling_link_claims_total\{outcome="paired"\} (\d+)$/m.exec(text);
  return match ? Number(match[1]) : 0;
}

describe('the loss of an exit (SIGKILL), a second exit up', { timeout: 120_000 }, () => {
  let signaling: SignalingServer;
  let site: TestSite;
  let dirB: string;
  const children: ChildProcessWithoutNullStreams[] = [];
  const dirs: string[] = [];

  beforeAll(async () => {
    dirB = await mkdtemp(join(tmpdir(), 'underpass-exit-b-'));
    dirs.push(dirB);
    signaling = await startSignalingServer({ port: 0 });
    site = await startTestSite({ fileSize: 64 * 1024 });
  });

  afterAll(async () => {
    for (const child of children) await stopExit(child);
    await signaling?.close();
    await site?.close();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  /**
   * One GET through Protect; true if the page came back within a second (a local page takes milliseconds; a
   * request over a dead path would hang until the path is torn down, hiding when a working one came up).
   */
  async function works(protect: ProtectEngine): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    let stream: ByteStream | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), 1_000);
    });
    const attempt = (async () => {
      stream = await protect.open({ kind: 'tcp', host: '127.0.0.1', port: site.port });
      const result = await httpGet(stream, '127.0.0.1', '/');
      return result.status.startsWith('HTTP/1.1 200');
    })().catch(() => false);
    const ok = await Promise.race([attempt, timedOut]);
    clearTimeout(timer);
    if (!ok) stream?.destroy();
    return ok;
  }

  /**
   * Client → relay → exit A, exit B up; SIGKILL A, start it again 2 s later (same key, as the chaos run does)
   * and time from the kill to the first request that works again.
   */
  async function exitLoss(restartSignaling: boolean): Promise<{ recoveryMs: number; timeline: string[] }> {
    const dirA = await mkdtemp(join(tmpdir(), 'underpass-exit-a-'));
    dirs.push(dirA);
    // Exit A first, so the client's path goes through it; B joins after.
    let a = await spawnExit(signaling.url, dirA);
    children.push(a.child);

    const { relaySignaling, volunteer, protect } = await relayAndClient(signaling.url);
    const timeline: string[] = [];
    const note = timeline.push.bind(timeline);
    timeline.push = (...lines: string[]) => {
      if (process.env.EXIT_LOSS_TRACE) for (const line of lines) console.log(line);
      return note(...lines);
    };
    const t0 = Date.now();
    let closeB: (() => Promise<void>) | undefined;
    try {
      protect.on('state', (state: ProtectState) => {
        const detail =
          state.status === 'protected'
            ? state.path.exit.exitKey === a.exitKey
              ? 'exit A'
              : 'exit B'
            : state.status === 'reconnecting'
              ? `${state.attempt}: ${state.reason}`
              : '';
        timeline.push(`${Date.now() - t0} ms ${state.status} ${detail}`);
      });
      await protect.start();
      expect(protect.state).toMatchObject({ status: 'protected', path: { exit: { exitKey: a.exitKey } } });
      expect(await works(protect)).toBe(true);

      const exitB = await startExitNode({
        certificate: developmentCertificates,
        signalingUrl: signaling.url,
        dataDir: dirB,
        allowDestinations: ['127.0.0.1/32'],
        bindAddress: '127.0.0.4',
      });
      closeB = () => exitB.close();
      const bKey = exitB.exitKey;
      if (restartSignaling) {
        // Everyone reconnects to a fresh broker; the WebRTC links, and the path, live on without it.
        const port = Number(new URL(signaling.url).port);
        await signaling.close();
        signaling = await startSignalingServer({ port });
        timeline.push(`${Date.now() - t0} ms signaling restarted`);
        await until(
          'everyone back at the broker',
          async () => {
            if (relaySignaling.state.status !== 'connected') return false;
            const answer = await fetch(`http://127.0.0.1:${port}/v1/exits`);
            const { exits } = (await answer.json()) as { exits: { exitKey: string }[] };
            if (!exits.some((e) => e.exitKey === bKey) || !exits.some((e) => e.exitKey === a.exitKey))
              return false;
            // The path's two links (client–relay, relay–exit A) claimed by both their members and paired.
            return (await resumedLinks(port)) >= 2;
          },
          30_000,
        );
        expect(await works(protect)).toBe(true);
      }

      const killedAt = Date.now();
      timeline.push(`${killedAt - t0} ms SIGKILL A`);
      await stopExit(a.child);
      // The chaos run starts the killed exit again 2–6 s later, same key.
      const restart = (async () => {
        await until('2 s after the kill', () => Date.now() - killedAt >= 2_000, 30_000);
        a = await spawnExit(signaling.url, dirA);
        children.push(a.child);
        timeline.push(`${Date.now() - t0} ms A announced again`);
      })();
      await until('a working path again', () => works(protect), 60_000);
      const recoveryMs = Date.now() - killedAt;
      timeline.push(`${Date.now() - t0} ms works again (recovery ${recoveryMs} ms)`);
      await restart;
      return { recoveryMs, timeline };
    } finally {
      protect.stop();
      volunteer.stop();
      await stopExit(a.child);
      await closeB?.();
    }
  }

  it('with the broker knowing every link: its link-closed ends the circuits at once', async () => {
    const { recoveryMs, timeline } = await exitLoss(false);
    console.log(timeline.join('\n'));
    expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_GOAL_MS);
  });

  /**
   * After a signaling restart the broker knows the links made before it again: every role claims the links it
   * still holds (`link-resume`), the broker pairs each link's two claims, and so tells the relay at once when
   * the exit's socket closes. Before link-resume only WebRTC noticed (ICE `disconnected` plus PeerLink's 2 s
   * grace): 10.3 s.
   */
  it('after a signaling restart: the resumed links bring the same link-closed, within the goal', async () => {
    const { recoveryMs, timeline } = await exitLoss(true);
    console.log(timeline.join('\n'));
    expect(recoveryMs).toBeLessThanOrEqual(RECOVERY_GOAL_MS);
  });
});
