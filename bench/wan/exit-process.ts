/**
 * The exit of the WAN benchmark, in its own namespace: an ExitEngine (real TCP dialer, default policy plus the
 * website's address) for the links the parent builds to it, the sender of the raw DataChannel baseline, and for
 * the setup figure a whole exit node on the signaling server.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExitEngine, ExitPolicy } from '@underpass/shared/exit';
import { LINK_HIGH_WATER, LINK_LOW_WATER, type Link } from '@underpass/shared/links';
import { MAX_CELL, generateStaticKeyPair } from '@underpass/shared/tunnel';
import { developmentCertificateFor } from '@underpass/shared/trust';
import { TcpDialer } from '../../exit-node/src/tcp-dialer.js';
import { nodeAead } from '../../exit-node/src/node-aead.js';
import { startExitNode, type ExitNode } from '../../exit-node/src/exit-node.js';
import { developmentCertificates } from '../../exit-node/src/certificates.js';
import { Peers, serve } from './serve.js';

const peers = new Peers();
const staticKey = generateStaticKeyPair();
let exit: ExitEngine | undefined;
const rawSenders = new Map<string, { stop: boolean }>();
let exitNode: { node: ExitNode; dataDir: string } | undefined;

/**
 * The baseline's sender, the shape of bench:tunnel's: messages of the tunnel's largest cell, as many as fit
 * below the links' high-water mark, then wait for the low-water mark. Runs until `stopRaw`.
 */
async function sendRaw(
  link: Link,
  state: { stop: boolean },
  paceMbps: number,
  backlog: () => number,
): Promise<void> {
  const chunk = new Uint8Array(MAX_CELL);
  if (paceMbps > 0) return sendRawPaced(link, state, chunk, paceMbps, backlog);
  while (!state.stop) {
    // @roamhq/wrtc updates bufferedAmount only between turns of the event loop: send in bursts, then yield.
    for (let burst = 0; burst < 64 && link.bufferedAmount <= LINK_HIGH_WATER; burst++) link.send(chunk);
    if (link.bufferedAmount > LINK_HIGH_WATER) {
      while (!state.stop && link.bufferedAmount > LINK_LOW_WATER)
        await new Promise((resolve) => setTimeout(resolve, 2));
    } else {
      await new Promise((resolve) => setImmediate(resolve));
    }
  }
}

/**
 * The same sender held to `paceMbps` (--raw-pace): a token bucket two messages deep, refilled by the clock, and
 * never more than two messages waiting in the channel (its native `bufferedAmount`), so SCTP never holds a
 * backlog to burst from — what pacing at our own senders would do.
 */
async function sendRawPaced(
  link: Link,
  state: { stop: boolean },
  chunk: Uint8Array,
  paceMbps: number,
  backlog: () => number,
): Promise<void> {
  const bytesPerMs = (paceMbps * 1e6) / 8 / 1000;
  const depth = 2 * chunk.length;
  let tokens = chunk.length;
  let last = performance.now();
  while (!state.stop) {
    const now = performance.now();
    tokens = Math.min(depth, tokens + (now - last) * bytesPerMs);
    last = now;
    while (tokens >= chunk.length && backlog() < 2 * chunk.length) {
      link.send(chunk);
      tokens -= chunk.length;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

serve({
  ...peers.handlers(),
  /** The exit engine for `siteAddress`; answers its static public key. */
  startEngine: (siteAddress: string) => {
    exit ??= new ExitEngine({
      certificate: developmentCertificateFor(staticKey.publicKey),
      staticKey,
      dialer: new TcpDialer({ policy: new ExitPolicy({ allowDestinations: [`${siteAddress}/32`] }) }),
      aead: nodeAead,
    });
    return [...staticKey.publicKey];
  },
  /** A link the exit serves (a client's direct link, or a relay's). */
  openExitLink: async (name: string, initiator: boolean, lanes = 1) => {
    if (!exit) throw new Error('startEngine first');
    exit.addLink(await peers.open(name, initiator, lanes));
  },
  /** A link for the raw baseline: once connected, this end sends until `stopRaw`. */
  openRawLink: async (name: string, paceMbps = 0) => {
    const link = await peers.open(name, false);
    const state = { stop: false };
    rawSenders.set(name, state);
    void sendRaw(link, state, paceMbps, () => peers.buffered()[name] ?? 0);
  },
  stopRaw: async (name: string) => {
    const state = rawSenders.get(name);
    if (state) state.stop = true;
    rawSenders.delete(name);
    await peers.close(name);
  },
  startExitNode: async (signalingUrl: string, siteAddress: string) => {
    const dataDir = await mkdtemp(join(tmpdir(), 'underpass-wan-exit-'));
    const node = await startExitNode({
      certificate: developmentCertificates,
      signalingUrl,
      dataDir,
      allowDestinations: [`${siteAddress}/32`],
    });
    exitNode = { node, dataDir };
  },
  stopExitNode: async () => {
    if (!exitNode) return;
    await exitNode.node.close();
    await rm(exitNode.dataDir, { recursive: true, force: true });
    exitNode = undefined;
  },
});
