/**
 * What `npm start` runs, as a function the newcomer e2e spec (e2e/first-run.spec.ts) starts too: a signaling
 * server, an exit node, one volunteer relay (in Node, so a single browser gets a real two-hop path) and the
 * check page, reachable only through the exit under a name only the exit resolves.
 */
import WebSocket from 'ws';
import { VolunteerEngine } from '@underpass/shared/engines';
import { silentLogger, type Logger } from '@underpass/shared/logger';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { startSignalingServer, type SignalingServer } from '../signaling-server/src/server.js';
import { startExitNode, type ExitNode } from '../exit-node/src/exit-node.js';
import { nodePeerFactory } from '../exit-node/src/node-peer.js';
import { developmentCertificates } from '../exit-node/src/certificates.js';
import { CheckPageDialer, ExitSockets } from './check-page-dialer.js';
import { startCheckPage, type CheckPage } from './check-page.js';

/** Clients the embedded relay serves at once. */
export const DEMO_RELAY_CAPACITY = 8;

export interface DemoOptions {
  /** The signaling server's port on 127.0.0.1 (0: any free port). */
  signalingPort: number;
  /** The check page's port on 127.0.0.1 (0: any free port); it is part of the printed URL. */
  checkPort: number;
  /** The exit's key and certificate live here. */
  exitDataDir: string;
  exitLogger?: Logger;
}

export interface Demo {
  readonly signaling: SignalingServer;
  readonly exit: ExitNode;
  readonly checkPage: CheckPage;
  /** Stops everything it started, in reverse order. */
  close(): Promise<void>;
}

export async function startDemo(options: DemoOptions): Promise<Demo> {
  const stops: (() => Promise<void> | void)[] = [];
  const close = async () => {
    for (const stop of stops.splice(0).reverse()) {
      await Promise.resolve(stop()).catch((error: unknown) => console.warn('stopping the demo:', error));
    }
  };
  try {
    const exitSockets = new ExitSockets();
    // The page is up before the exit (whose dialer needs its port) and names the exit once there is one.
    const started: { exit?: ExitNode } = {};
    const checkPage = await startCheckPage({
      port: options.checkPort,
      exitSockets,
      exitKey: () => started.exit?.exitKey,
    });
    stops.push(() => checkPage.close());

    const signaling = await startSignalingServer({ port: options.signalingPort });
    stops.push(() => signaling.close());

    const exit = await startExitNode({
      certificate: developmentCertificates,
      signalingUrl: signaling.url,
      dataDir: options.exitDataDir,
      // The exit's policy stays the default (every local address denied); only the check page's name and port
      // are served beside it.
      tcpDialer: (policyDialer) =>
        new CheckPageDialer({
          policyDialer,
          address: checkPage.address,
          port: checkPage.port,
          exitSockets,
        }),
      logger: options.exitLogger ?? silentLogger,
    });
    started.exit = exit;
    stops.push(() => exit.close());

    const relay = new VolunteerEngine({
      signaling: new SignalingClient({
        url: signaling.url,
        WebSocket: WebSocket as unknown as WebSocketConstructorLike, // ws's typings differ only in overloads
        hello: { role: 'relay', capacity: DEMO_RELAY_CAPACITY },
      }),
      createPeer: nodePeerFactory(),
      capacity: DEMO_RELAY_CAPACITY,
    });
    stops.push(() => relay.stop());
    await relay.start();

    return { signaling, exit, checkPage, close };
  } catch (error) {
    await close();
    throw error;
  }
}
