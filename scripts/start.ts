/**
 * `npm start`: the main job on embedded defaults (scripts/demo.ts): a signaling server, an exit node, one
 * volunteer relay and the check page. Makes sure the extension is built against them, and prints what to do
 * next, with the check page's URL.
 */
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { consoleLogger } from '@underpass/shared/logger';
import { EXTENSION_ID } from '../extension/identity.js';
import { DEMO_RELAY_CAPACITY, startDemo } from './demo.js';

const root = resolve(import.meta.dirname, '..');
const extensionDir = join(root, '.output', 'chrome-mv3');

/** A port from the environment, or the default; anything else is an error that names the variable. */
function portFromEnv(name: string, fallback: number): number {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const port = Number(text);
  if (!/^[0-9]{1,5}$/.test(text) || port < 1 || port > 65535) {
    throw new Error(`${name}="${text}" is not a port (1-65535)`);
  }
  return port;
}

async function main(): Promise<void> {
  const signalingPort = portFromEnv('UNDERPASS_SIGNALING_PORT', 8600);
  const checkPort = portFromEnv('UNDERPASS_CHECK_PORT', 8601);
  if (!existsSync(join(extensionDir, 'manifest.json'))) {
    console.log('Building the extension…');
    execFileSync('npx', ['wxt', 'build'], {
      cwd: root,
      stdio: 'inherit',
      env: { ...process.env, UNDERPASS_SIGNALING_URL: `ws://127.0.0.1:${signalingPort}` },
    });
  }
  const demo = await startDemo({
    signalingPort,
    checkPort,
    exitDataDir: join(root, '.data', 'exit'),
    exitLogger: consoleLogger('exit'),
  });

  console.log(`
Underpass is running on this machine:
  signaling server  ${demo.signaling.url}
  exit node         key ${demo.exit.exitKey} (default-deny policy; data in .data/exit)
  volunteer relay   one, in this process, for up to ${DEMO_RELAY_CAPACITY} clients
  check page        ${demo.checkPage.url} (only this exit knows the name)

Use it from Chromium or Chrome:
  1. Install the companion for your browser (once):
       node companion/bin/underpass-companion.js install --browser chromium --extension-id ${EXTENSION_ID}
     (use --browser chrome for Google Chrome)
  2. Open chrome://extensions, turn on Developer mode, click "Load unpacked" and choose:
       ${extensionDir}
  3. Click the Underpass toolbar icon and turn on Protect. When it says "Protected", your pages leave through
     the exit. Turn on Volunteer in another browser profile to relay for others.
  4. Open ${demo.checkPage.url}
     It says "You reached this page through Underpass" and the address the site saw (the exit's). With
     Protect off the same address does not load: only the exit can resolve that name.

Ctrl-C stops everything.`);

  const shutdown = async () => {
    await demo.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void shutdown());
  process.once('SIGTERM', () => void shutdown());
}

main().catch((error: Error) => {
  console.error(`npm start failed: ${error.message}`);
  process.exit(1);
});
