/// <reference types="chrome" />
import { expect, test } from '@playwright/test';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { launchClient, launchVolunteer } from './fixtures/roles';
import { expectSwitchStatus, popupScreenshot, switchControl } from './fixtures/ui';

/**
 * The kill switch. A client is protected through volunteer A; A's browser is closed mid-session and no
 * other relay exists yet, so no path can be built. Meanwhile the client's page requests must fail (not go
 * direct): the website sees no connection but the exit's. When volunteer B comes, the client's path comes
 * back through B by itself and the page loads again.
 */

const EXIT_ADDRESS = '127.0.0.3';

test('while the path is rebuilt nothing goes out directly, then pages load again', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });

    const { profile: volunteerA } = await launchVolunteer(cleanup, 'kill-volunteer-a', {
      signalingUrl: signaling.url,
    });
    const client = await launchClient(cleanup, 'kill-client', { signalingUrl: signaling.url });

    const popup = await client.popup();
    await switchControl(popup, 'protect').click();
    await expectSwitchStatus(popup, 'protect', 'on', 90_000);
    const relayA = await popup.getByTestId('path-relay').getAttribute('data-value');
    expect(relayA).toBeTruthy();

    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');

    // ── The relay's browser goes away mid-session ──
    await volunteerA.close();
    await expectSwitchStatus(popup, 'protect', 'reconnecting', 30_000);
    await popupScreenshot(popup, 'popup-protect-reconnecting');

    // The proxy stays on the companion, which refuses: requests fail instead of going direct.
    const proxy = await client.serviceWorker.evaluate(() => chrome.proxy.settings.get({}));
    expect((proxy.value as chrome.proxy.ProxyConfig).mode).toBe('fixed_servers');
    for (let i = 0; i < 3; i += 1) {
      await expect(
        tab.goto(`${website.url}/?while-reconnecting=${i}`, { timeout: 15_000 }),
      ).rejects.toThrow();
    }
    await expect
      .poll(async () => Number(await popup.getByTestId('protect-blocked').getAttribute('data-value')), {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(3);
    await expectSwitchStatus(popup, 'protect', 'reconnecting');
    await popupScreenshot(popup, 'popup-protect-reconnecting-blocked');

    // ── A new relay appears; the path comes back by itself ──
    const { popup: popupB } = await launchVolunteer(cleanup, 'kill-volunteer-b', {
      signalingUrl: signaling.url,
    });

    await expectSwitchStatus(popup, 'protect', 'on', 30_000);
    const relayB = await popup.getByTestId('path-relay').getAttribute('data-value');
    expect(relayB).toBeTruthy();
    expect(relayB).not.toBe(relayA);
    await tab.goto(`${website.url}/?after`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    await expect(popupB.getByTestId('volunteer-clients')).toHaveAttribute('data-value', '1');

    // Through it all, the website saw the exit and nobody else.
    expect(website.remoteAddresses.length).toBeGreaterThan(0);
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);
  } finally {
    await cleanup.run();
  }
});
