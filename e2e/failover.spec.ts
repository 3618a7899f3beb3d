/// <reference types="chrome" />
import { expect, test } from '@playwright/test';
import { Cleanup, startSignaling, startTestExit } from './fixtures/network';
import { launchClient, launchVolunteer } from './fixtures/roles';
import { expectSwitchStatus, popupScreenshot, switchControl } from './fixtures/ui';
import { startWebsite } from './fixtures/website';

/**
 * Failover: two exits (binding 127.0.0.3 and 127.0.0.4, so the website can tell them apart). The exit the
 * client's path uses is stopped; the other takes over within 5 s, without the user doing anything, and new
 * requests leave from it.
 */

test('when the exit stops, a second exit takes over within 5 s', async () => {
  const cleanup = new Cleanup();
  try {
    const website = await startWebsite();
    cleanup.push(() => website.close());
    const signaling = await startSignaling(cleanup);
    const exits = [
      await startTestExit(cleanup, { signalingUrl: signaling.url, address: '127.0.0.3', name: 'exit-1' }),
      await startTestExit(cleanup, { signalingUrl: signaling.url, address: '127.0.0.4', name: 'exit-2' }),
    ];

    await launchVolunteer(cleanup, 'failover-volunteer', { signalingUrl: signaling.url });
    const client = await launchClient(cleanup, 'failover-client', { signalingUrl: signaling.url });

    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    const firstExitId = await popup.getByTestId('path-exit').getAttribute('data-value');
    const first = exits.find((exit) => exit.peerId === firstExitId);
    const second = exits.find((exit) => exit.peerId !== firstExitId);
    if (!first || !second) throw new Error(`the path names an unknown exit: ${firstExitId}`);

    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses)]).toEqual([first.address]);

    // ── The exit in use stops ──
    const stopped = Date.now();
    const timeline: string[] = [];
    const watch = setInterval(() => {
      void popup
        .getByTestId('protect-state')
        .textContent()
        .then((text) => timeline.push(`${Date.now() - stopped} ms: ${text ?? ''}`))
        .catch(() => undefined);
    }, 200);
    await first.stop();
    try {
      await expect(popup.getByTestId('path-exit')).toHaveAttribute('data-value', second.peerId, {
        timeout: 5_000,
      });
    } finally {
      clearInterval(watch);
      // When it is slow, the popup's states say where the time went.
      if (Date.now() - stopped > 5_000) console.log([...new Set(timeline)].join('\n'));
    }
    await expectSwitchStatus(popup, 'protect', 'on', 1_000);
    await popupScreenshot(popup, 'popup-protect-after-failover');

    const seen = website.remoteAddresses.length;
    await tab.goto(`${website.url}/?after-failover`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses.slice(seen))]).toEqual([second.address]);
    expect([...new Set(website.remoteAddresses)].sort()).toEqual([first.address, second.address].sort());
  } finally {
    await cleanup.run();
  }
});
