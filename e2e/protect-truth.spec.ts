import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import WebSocket from 'ws';
import { VolunteerEngine } from '@underpass/shared/engines';
import { SignalingClient, type WebSocketConstructorLike } from '@underpass/shared/signaling';
import { EXTENSION_ID } from '../extension/identity';
import { nodePeerFactory } from '../exit-node/src/node-peer';
import { startDemo } from '../scripts/demo';
import { Cleanup } from './fixtures/network';
import { installCompanionHost } from './fixtures/native-host';
import { launchProfile } from './fixtures/profile';
import { expectSwitchStatus, popupScreenshot, saveOptions, switchControl } from './fixtures/ui';

/**
 * The popup tells the truth about requests (what `npm start` runs, as in first-run.spec.ts): a request the
 * exit's policy refuses shows in words with its destination; the round trip is a measured figure that is
 * refreshed; "New path" builds a fresh path (through the other relay) that works; and a setting changed on
 * the options page while protected takes effect without turning Protect off and on.
 */
test('refusals in words, a measured round trip, New path, and settings that take effect at once', async () => {
  const cleanup = new Cleanup();
  try {
    const dataDir = await mkdtemp(join(tmpdir(), 'underpass-truth-'));
    cleanup.push(() => rm(dataDir, { recursive: true, force: true }));
    const demo = await startDemo({ signalingPort: 0, checkPort: 0, exitDataDir: dataDir });
    cleanup.push(() => demo.close());
    const url = demo.checkPage.url;

    const client = await launchProfile('truth', {
      prepare: (dir) => installCompanionHost(dir, EXTENSION_ID),
    });
    cleanup.push(() => client.close());
    const options = await client.options();
    await saveOptions(options, { signalingUrl: demo.signaling.url, routeLoopback: false });

    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 45_000);
    const tab = await client.context.newPage();
    await tab.goto(url);
    await expect(tab.locator('#verdict')).toHaveAttribute('data-through', 'true');

    // Round trip: a figure, measured again while the popup is open (PING every 5 s, stats every 2 s).
    const rtt = popup.getByTestId('path-rtt');
    await expect(rtt).toHaveAttribute('data-value', /^\d+(\.\d+)?$/);
    await expect(rtt).toContainText(/^\d+ ms$/);
    const firstRtt = await rtt.getAttribute('data-value');
    await expect(rtt).not.toHaveAttribute('data-value', firstRtt ?? '', { timeout: 20_000 });

    // A destination the exit's policy denies (a private address): the page fails, the popup says why.
    await expect(tab.goto('http://10.0.0.1/')).rejects.toThrow(/ERR_/);
    const refusals = popup.getByTestId('protect-refusals');
    await expect(refusals).toHaveAttribute('data-reason', 'policy-denied');
    await expect(popup.getByTestId('protect-refusals-line')).toHaveText(
      /^\d+ requests? refused — blocked by the exit's rules: 10\.0\.0\.1:80$/,
    );
    await popup.getByText('The latest refusals').click();
    await expect(popup.getByTestId('protect-refusals-list').locator('li').first()).toContainText(
      "10.0.0.1:80 — blocked by the exit's rules",
    );
    await popupScreenshot(popup, 'protect-refusals');
    // Still protected: a refusal is the exit's answer, not a broken path.
    await expectSwitchStatus(popup, 'protect', 'on');

    // New path: a second relay joins; the old path is held while the broker picks, so it names the new one.
    const relay = new VolunteerEngine({
      signaling: new SignalingClient({
        url: demo.signaling.url,
        WebSocket: WebSocket as unknown as WebSocketConstructorLike, // ws's typings differ only in overloads
        hello: { role: 'relay', capacity: 8 },
      }),
      createPeer: nodePeerFactory(),
      capacity: 8,
    });
    cleanup.push(async () => relay.stop());
    await relay.start();
    const firstRelay = await popup.getByTestId('path-relay').getAttribute('data-value');
    expect(firstRelay).toBeTruthy();
    const sessionsBefore = demo.exit.stats().sessionsTotal;
    await popup.getByTestId('protect-new-path').click();
    await expect(popup.getByTestId('path-relay')).not.toHaveAttribute('data-value', firstRelay ?? '', {
      timeout: 45_000,
    });
    await expectSwitchStatus(popup, 'protect', 'on');
    expect(demo.exit.stats().sessionsTotal).toBeGreaterThan(sessionsBefore);
    await tab.goto(url);
    await expect(tab.locator('#verdict')).toHaveAttribute('data-through', 'true');
    await expect.poll(() => relay.stats().bytesToClients).toBeGreaterThan(0);

    // A setting changed while protected (direct mode) takes effect by itself: no off and on.
    const sessionsBeforeDirect = demo.exit.stats().sessionsTotal;
    await saveOptions(options, { signalingUrl: demo.signaling.url, routeLoopback: false, mode: 'direct' });
    await expect(popup.getByTestId('path-relay')).toHaveAttribute('data-value', '', { timeout: 45_000 });
    await expectSwitchStatus(popup, 'protect', 'on');
    expect(demo.exit.stats().sessionsTotal).toBeGreaterThan(sessionsBeforeDirect);
    await tab.goto(url);
    await expect(tab.locator('#verdict')).toHaveAttribute('data-through', 'true');
    await popupScreenshot(popup, 'protect-direct-after-settings');

    // The newcomer's case: the testing option that routes loopback through the tunnel, turned on while
    // protected. Before, a local page loads directly (loopback bypasses the proxy); after, with no off and on,
    // it goes to the exit, whose policy refuses loopback, and the popup says so.
    const local = createServer((_request, response) => response.end('local page'));
    await new Promise<void>((resolve) => local.listen(0, '127.0.0.1', resolve));
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          local.close(() => resolve());
          local.closeAllConnections(); // the browser's keep-alive would hold close() open
        }),
    );
    const localUrl = `http://127.0.0.1:${(local.address() as AddressInfo).port}/`;
    await tab.goto(localUrl);
    await expect(tab.locator('body')).toHaveText('local page');
    await saveOptions(options, { signalingUrl: demo.signaling.url, routeLoopback: true, mode: 'direct' });
    await expect
      .poll(() =>
        tab.goto(localUrl).then(
          () => 'loaded',
          () => 'refused',
        ),
      )
      .toBe('refused');
    await expect(popup.getByTestId('protect-refusals-list')).toContainText(
      `${new URL(localUrl).host} — blocked by the exit's rules`,
    );
    await expectSwitchStatus(popup, 'protect', 'on');
  } finally {
    await cleanup.run();
  }
});
