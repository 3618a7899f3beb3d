import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSignalingServer, type SignalingServer } from '../../signaling-server/src/server.js';
import { startSwarm, type LocalSwarm } from '../../test/swarm/swarm.js';
import { developmentCertificates } from '../src/certificates.js';
import { startExitNode, type ExitNode } from '../src/exit-node.js';
import { EXIT_ADDRESS } from './torrent-helpers.js';

export interface TorrentNetwork {
  swarm: LocalSwarm;
  signaling: SignalingServer;
  /** An exit without the torrent service, registered first: the broker names it when nothing is asked for. */
  plainExit: ExitNode;
  /** An exit that serves torrents, its sockets on EXIT_ADDRESS. */
  torrentExit: ExitNode;
  close(): Promise<void>;
}

/** A local swarm, a signaling server and two exits on it, one serving torrents: the downloads' tests' network. */
export async function startTorrentNetwork(): Promise<TorrentNetwork> {
  const swarm = await startSwarm();
  const signaling = await startSignalingServer({ port: 0 });
  const dataDir = await mkdtemp(join(tmpdir(), 'underpass-exit-'));
  const plainExit = await startExitNode({
    certificate: developmentCertificates,
    signalingUrl: signaling.url,
    dataDir: join(dataDir, 'plain'),
    allowDestinations: swarm.allowDestinations,
  });
  const torrentExit = await startExitNode({
    certificate: developmentCertificates,
    signalingUrl: signaling.url,
    dataDir: join(dataDir, 'torrents-exit'),
    allowDestinations: swarm.allowDestinations,
    bindAddress: EXIT_ADDRESS,
    torrentService: { dataDir: join(dataDir, 'torrents'), listenPort: 0, dht: false },
  });
  return {
    swarm,
    signaling,
    plainExit,
    torrentExit,
    close: async () => {
      await plainExit.close();
      await torrentExit.close();
      await signaling.close();
      await swarm.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
