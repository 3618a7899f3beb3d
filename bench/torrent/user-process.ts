/**
 * The user of bench:torrent in its own process: a Node client engine (ProtectEngine, `needs: 'torrent'`, two
 * hops) and, over its path, the user's isolated WebTorrent (test/swarm's UserClient) or a plain `tcp` GET; and,
 * as the baseline, a Node WebTorrent that joins the swarm directly.
 */
import type { EventEmitter } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import WebTorrent, { type Torrent } from 'webtorrent';
import { ProtectEngine } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { readMagnet } from '@underpass/shared/torrent';
import { nodePeerFactory } from '../../exit-node/src/node-peer.js';
import { UserClient } from '../../test/swarm/user-client.js';
import { timedGet } from '../tunnel/http-timing.js';
import { serve } from './rpc.js';
import { DEVELOPMENT_DIRECTORY_KEYS } from '@underpass/shared/trust';

/** One download: from adding the magnet (or sending the GET) to its first verified byte and to its end. */
export type DownloadTiming = { firstByteMs: number; totalMs: number; bytes: number };

let engine: ProtectEngine | undefined;
let signaling: SignalingClient | undefined;

/**
 * Resolves with the time (from `start`) at which the piece holding byte 0 of the torrent's first file was
 * verified: the first byte a player could show.
 */
function firstByteOf(client: WebTorrent, start: number): Promise<number> {
  return new Promise((resolve) => {
    client.once('add', (torrent: Torrent) => {
      (torrent as unknown as EventEmitter).on('verified', (index: number) => {
        const offset = (torrent.files[0] as unknown as { offset: number }).offset;
        if (index === Math.floor(offset / torrent.pieceLength)) resolve(performance.now() - start);
      });
    });
  });
}

serve({
  async start(signalingUrl: string) {
    signaling = new SignalingClient({
      url: signalingUrl,
      WebSocket: WebSocket as unknown as WebSocketConstructorLike,
      hello: { role: 'client' },
    });
    engine = new ProtectEngine({
      directoryKeys: DEVELOPMENT_DIRECTORY_KEYS,
      signaling,
      createPeer: nodePeerFactory(),
      mode: 'two-hop',
      needs: 'torrent',
    });
    await engine.start();
    return engine.state;
  },

  /** A plain `tcp` GET through the path. */
  async tcpGet(host: string, port: number, path: string): Promise<DownloadTiming> {
    if (!engine) throw new Error('not started');
    const start = performance.now();
    const stream = await engine.open({ kind: 'tcp', host, port });
    const timing = await timedGet(stream, host, path, start);
    return { firstByteMs: timing.firstMs, totalMs: timing.totalMs, bytes: timing.bytes };
  },

  /** The whole torrent through the path, its files checked against `sha256` (path inside the torrent → hash). */
  async torrent(magnetUri: string, sha256: Record<string, string>): Promise<DownloadTiming> {
    if (!engine) throw new Error('not started');
    const magnet = readMagnet(magnetUri);
    if (!magnet.ok) throw new Error(magnet.reason);
    const user = await UserClient.create();
    try {
      const start = performance.now();
      const firstByte = firstByteOf(user.client, start);
      const stream = await engine.open({
        kind: 'torrent',
        infoHash: magnet.magnet.infoHash,
        trackers: magnet.magnet.trackers,
        files: [],
      });
      const torrent = await user.download(magnet.magnet.userMagnet, stream);
      const totalMs = performance.now() - start;
      const hashes = await user.hashes(torrent);
      for (const [path, hash] of Object.entries(sha256)) {
        if (hashes[path] !== hash) throw new Error(`${path}: wrong content through the path`);
      }
      return { firstByteMs: await firstByte, totalMs, bytes: torrent.length };
    } finally {
      await user.stop();
    }
  },

  /** The baseline: a Node WebTorrent that finds the seeders through the magnet's trackers, no tunnel. */
  async direct(magnetUri: string, localAddress: string): Promise<DownloadTiming> {
    const dir = await mkdtemp(join(tmpdir(), 'underpass-bench-direct-'));
    const client = new WebTorrent({
      dht: false,
      lsd: false,
      utPex: false,
      webSeeds: false,
      natUpnp: false,
      natPmp: false,
      utp: false,
      torrentPort: { port: 0, host: localAddress },
    });
    client.on('error', () => {});
    try {
      const start = performance.now();
      const firstByte = firstByteOf(client, start);
      const torrent = client.add(magnetUri, { path: dir });
      await new Promise<void>((resolve, reject) => {
        torrent.once('done', () => resolve());
        torrent.once('error', (error) => reject(error instanceof Error ? error : new Error(error)));
      });
      return { firstByteMs: await firstByte, totalMs: performance.now() - start, bytes: torrent.length };
    } finally {
      await new Promise<void>((resolve) => client.destroy(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    }
  },

  stop() {
    engine?.stop();
    signaling?.close();
    setTimeout(() => process.exit(0), 50);
  },
});
