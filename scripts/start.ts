/**
 * `npm start`: the main job on embedded defaults. Starts a signaling server, an exit node and one volunteer
 * relay (in Node, so a single browser gets a real two-hop path), makes sure the extension is built against
 * them, and prints what to do next.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { VolunteerEngine } from '@underpass/shared/engines';
import { consoleLogger } from '@underpass/shared/logger';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { startSignalingServer } from '../signaling-server/src/server.js';
import { startExitNode } from '../exit-node/src/exit-node.js';
import { nodePeerFactory } from '../exit-node/src/node-peer.js';
import { EXTENSION_ID } from '../extension/identity.js';
import { developmentCertificates } from '../exit-node/src/certificates.js';

const root = resolve(import.meta.dirname, '..');
const port = Number(process.env.UNDERPASS_SIGNALING_PORT ?? 8600);
const signalingUrl = `ws://127.0.0.1:${port}`;
const extensionDir = join(root, '.output', 'chrome-mv3');

async function main(): Promise<void> {
  if (!existsSync(join(extensionDir, 'manifest.json'))) {
    console.log('Building the extension…');
    execFileSync('npx', ['wxt', 'build'], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, UNDERPASS_SIGNALING_URL: signalingUrl },
    });
  }
  const signaling = await startSignalingServer({ port });
  const exit = await startExitNode({
    certificate: developmentCertificates,
    signalingUrl,
    dataDir: join(root, '.data', 'exit'),
    logger: consoleLogger('exit'),
  });
  const relaySignaling = new SignalingClient({
    url: signalingUrl,
    WebSocket: WebSocket as unknown as WebSocketConstructorLike,
    hello: { role: 'relay', capacity: 8 },
  });
  const relay = new VolunteerEngine({
    signaling: relaySignaling,
    createPeer: nodePeerFactory(),
    capacity: 8,
  });
  await relay.start();

  console.log(`
Underpass is running on this machine:
  signaling server  ${signaling.url}
  exit node         key ${exit.exitKey} (default-deny policy; data in .data/exit)
  volunteer relay   one, in this process, for up to 8 clients

Use it from Chromium or Chrome:
  1. Install the companion for your browser (once):
       node companion/bin/underpass-companion.js install --browser chromium --extension-id ${EXTENSION_ID}
     (use --browser chrome for Google Chrome)
  2. Open chrome://extensions, turn on Developer mode, click "Load unpacked" and choose:
       ${extensionDir}
  3. Click the Underpass toolbar icon and turn on Protect. When it says "Protected", your pages leave through
     the exit. Turn on Volunteer in another browser profile to relay for others.

Ctrl-C stops everything.`);

  const shutdown = async () => {
    relay.stop();
    await exit.close();
    await signaling.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((error: Error) => {
  console.error(`npm start failed: ${error.message}`);
  process.exit(1);
});
