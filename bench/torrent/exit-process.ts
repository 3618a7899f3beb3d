/**
 * The exit of bench:torrent in its own process: an exit node with its torrent service on, bound to its own
 * loopback address, allowed to reach the local swarm and the local website. Fresh data directory per process,
 * so a new exit process has never seen the torrent (the cold case).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startExitNode, type ExitNode } from '../../exit-node/src/exit-node.js';
import { serve } from './rpc.js';
import { developmentCertificates } from '../../exit-node/src/certificates.js';

let exit: ExitNode | undefined;
let dataDir: string | undefined;

serve(
  {
    async start(signalingUrl: string, allowDestinations: string[], bindAddress: string) {
      dataDir = await mkdtemp(join(tmpdir(), 'underpass-bench-exit-'));
      exit = await startExitNode({
        certificate: developmentCertificates,
        signalingUrl,
        dataDir,
        allowDestinations,
        bindAddress,
        torrentService: { dataDir: join(dataDir, 'torrents'), listenPort: 0, dht: false },
      });
      return exit.exitKey;
    },
    async stop() {
      await exit?.close();
      if (dataDir) await rm(dataDir, { recursive: true, force: true });
      setTimeout(() => process.exit(0), 50);
    },
  },
  { sampleMemory: true },
);
