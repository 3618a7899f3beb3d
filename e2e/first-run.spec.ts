import { spawnSync } from 'node:child_process';
import { lookup } from 'node:dns/promises';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { consoleLogger } from '@underpass/shared/logger';
import { EXTENSION_ID } from '../extension/identity';
import { pathWithoutNode } from '../companion/test/native-session';
import { buildExecutable } from '../scripts/companion-executable';
import { startDemo, type Demo } from '../scripts/demo';
import { CHECK_PAGE_NAME } from '../scripts/check-page-dialer';
import { Cleanup } from './fixtures/network';
import { installCompanionExecutable, installCompanionHost } from './fixtures/native-host';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchProfile, type LaunchOptions, type Profile } from './fixtures/profile';
import { expectSwitchStatus, saveOptions, switchControl } from './fixtures/ui';

/**
 * A newcomer following the README: what `npm start` starts (scripts/demo.ts), the built extension, the
 * companion installed with the README's command, Protect on, then the check page `npm start` prints. It must
 * say "through Underpass" with the exit's address; with Protect off the same URL must not load, since only the
 * exit resolves its name. No testing option is turned on: the one setting changed is the signaling server's
 * URL, because here the demo runs on free ports rather than 8600/8601, so it cannot collide with a running
 * `npm start`. The same again with the companion as the single executable a user without Node downloads
 * (README, "Without Node"), installed and started with no node on the browser's PATH.
 */

test('npm start, Protect, and the printed check page says it came through Underpass', async () => {
  const started = Date.now();
  const cleanup = new Cleanup();
  try {
    const demo = await startTheDemo(cleanup);
    // README, "Installing the companion" (with --user-data-dir, for this test profile).
    const client = await launchProfile('first-run', {
      prepare: (dir) => installCompanionHost(dir, EXTENSION_ID),
    });
    cleanup.push(() => client.close());
    await protectAndCheck(client, demo, 'first-run-check-page.png');
  } finally {
    await cleanup.run();
    console.log(`first run took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
});

test('the companion as a single executable, installed and run with no node on PATH, carries the check page', async () => {
  test.setTimeout(300_000);
  const cleanup = new Cleanup();
  try {
    const work = await mkdtemp(join(tmpdir(), 'underpass-first-run-sea-'));
    cleanup.push(() => rm(work, { recursive: true, force: true }));
    const executable = await buildExecutable({ outDir: work });
    // The browser, and so the native host it starts, sees no node anywhere on its PATH.
    const env: Record<string, string> = { ...definedEnv(), PATH: pathWithoutNode() };
    expect(spawnSync('sh', ['-c', 'command -v node'], { env }).status).not.toBe(0);
    const demo = await startTheDemo(cleanup);
    // README, "Without Node": the executable installs itself.
    const client = await launchProfile('first-run-sea', {
      prepare: (dir) => installCompanionExecutable(executable, dir, EXTENSION_ID, env),
      env,
    } satisfies LaunchOptions);
    cleanup.push(() => client.close());
    await protectAndCheck(client, demo, 'first-run-sea-check-page.png', () =>
      // What carried it was the executable itself, started by the browser.
      expect(processesRunning(executable)).toBeGreaterThan(0),
    );
  } finally {
    await cleanup.run();
  }
});

/** What `npm start` starts, on free ports and with its own exit data directory. */
async function startTheDemo(cleanup: Cleanup): Promise<Demo> {
  const dataDir = await mkdtemp(join(tmpdir(), 'underpass-first-run-'));
  cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
  const demo = await startDemo({
    signalingPort: 0,
    checkPort: 0,
    exitDataDir: dataDir,
    exitLogger: consoleLogger('exit'),
  });
  cleanup.push(() => demo.close());
  expect(demo.checkPage.url).toBe(`http://${CHECK_PAGE_NAME}:${demo.checkPage.port}/`);
  // This machine's resolver (and so the browser's own) does not know the name.
  await expect(lookup(CHECK_PAGE_NAME)).rejects.toThrow();
  return demo;
}

/**
 * The README's steps after installing: the signaling URL set, Protect on, the check page through Underpass with
 * the exit's address (`whileProtected` checks more then); then Protect off and the page does not load.
 */
async function protectAndCheck(
  client: Profile,
  demo: Demo,
  screenshot: string,
  whileProtected: () => void = () => {},
): Promise<void> {
  const url = demo.checkPage.url;
  expect(client.extensionId).toBe(EXTENSION_ID);
  const options = await client.options();
  await expect(options.getByTestId('route-loopback')).not.toBeChecked();
  await saveOptions(options, { signalingUrl: demo.signaling.url, routeLoopback: false });
  await options.close();

  const tab = await client.context.newPage();
  // Before Protect: the name does not resolve, the page does not load.
  await expect(tab.goto(url)).rejects.toThrow(/ERR_NAME_NOT_RESOLVED/);

  const popup = await client.popup();
  await switchControl(popup, 'protect').click();
  await expectSwitchStatus(popup, 'protect', 'on', 45_000);

  await tab.goto(url);
  const verdict = tab.locator('#verdict');
  await expect(verdict).toHaveAttribute('data-through', 'true');
  await expect(verdict).toContainText('through Underpass');
  // The exit runs on this machine without a bind address, so it connects from 127.0.0.1.
  await expect(tab.locator('#seen-address')).toHaveText('127.0.0.1');
  await expect(tab.locator('#exit-key')).toHaveText(demo.exit.exitKey);
  await tab.screenshot({ path: join(ARTIFACTS_DIR, screenshot), fullPage: true });
  // The page's own record: every request it answered came over a connection the exit opened.
  expect(demo.checkPage.visits.length).toBeGreaterThan(0);
  expect(demo.checkPage.visits.every((visit) => visit.throughUnderpass)).toBe(true);
  expect(demo.exit.stats().streamsTotal).toBeGreaterThan(0);
  whileProtected();

  // Protect off: the same URL fails again.
  await switchControl(popup, 'protect').click();
  await expectSwitchStatus(popup, 'protect', 'off');
  const visitsBefore = demo.checkPage.visits.length;
  await expect(tab.goto(url)).rejects.toThrow(/ERR_NAME_NOT_RESOLVED/);
  expect(demo.checkPage.visits.length).toBe(visitsBefore);
}

function definedEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** How many processes of this user run `executable` (Linux: /proc/<pid>/exe). */
function processesRunning(executable: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      if (readlinkSync(`/proc/${pid}/exe`) === executable) count++;
    } catch {
      // another user's process, or one that just ended
    }
  }
  return count;
}
