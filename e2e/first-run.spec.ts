import { lookup } from 'node:dns/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { consoleLogger } from '@underpass/shared/logger';
import { EXTENSION_ID } from '../extension/identity';
import { startDemo } from '../scripts/demo';
import { CHECK_PAGE_NAME } from '../scripts/check-page-dialer';
import { Cleanup } from './fixtures/network';
import { installCompanionHost } from './fixtures/native-host';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchProfile } from './fixtures/profile';
import { expectSwitchStatus, saveOptions, switchControl } from './fixtures/ui';

/**
 * A newcomer following the README: what `npm start` starts (scripts/demo.ts), the built extension, the
 * companion installed with the README's command, Protect on, then the check page `npm start` prints. It must
 * say "through Underpass" with the exit's address; with Protect off the same URL must not load, since only the
 * exit resolves its name. No testing option is turned on: the one setting changed is the signaling server's
 * URL, because here the demo runs on free ports rather than 8600/8601, so it cannot collide with a running
 * `npm start`.
 */

test('npm start, Protect, and the printed check page says it came through Underpass', async () => {
  const started = Date.now();
  const cleanup = new Cleanup();
  try {
    const dataDir = await mkdtemp(join(tmpdir(), 'underpass-first-run-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const demo = await startDemo({
      signalingPort: 0,
      checkPort: 0,
      exitDataDir: dataDir,
      exitLogger: consoleLogger('exit'),
    });
    cleanup.push(() => demo.close());
    const url = demo.checkPage.url;
    expect(url).toBe(`http://${CHECK_PAGE_NAME}:${demo.checkPage.port}/`);
    // This machine's resolver (and so the browser's own) does not know the name.
    await expect(lookup(CHECK_PAGE_NAME)).rejects.toThrow();

    // README, "Installing the companion" (with --user-data-dir, for this test profile).
    const client = await launchProfile('first-run', {
      prepare: (dir) => installCompanionHost(dir, EXTENSION_ID),
    });
    cleanup.push(() => client.close());
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
    await tab.screenshot({ path: join(ARTIFACTS_DIR, 'first-run-check-page.png'), fullPage: true });
    // The page's own record: every request it answered came over a connection the exit opened.
    expect(demo.checkPage.visits.length).toBeGreaterThan(0);
    expect(demo.checkPage.visits.every((visit) => visit.throughUnderpass)).toBe(true);
    expect(demo.exit.stats().streamsTotal).toBeGreaterThan(0);

    // Protect off: the same URL fails again.
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'off');
    const visitsBefore = demo.checkPage.visits.length;
    await expect(tab.goto(url)).rejects.toThrow(/ERR_NAME_NOT_RESOLVED/);
    expect(demo.checkPage.visits.length).toBe(visitsBefore);
  } finally {
    await cleanup.run();
    console.log(`first run took ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
});
