import { expect, test } from '@playwright/test';
import {
  clickSwitch,
  firefoxScreenshot,
  loadGreeting,
  testIdAttribute,
  waitForSwitchStatus,
  webRtcPolicy,
} from '../fixtures/firefox-ui';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import { Cleanup, startTestNetwork } from '../fixtures/network';
import { launchVolunteer } from '../fixtures/roles';

/**
 * The kill switch in Firefox. The client is protected through volunteer A; A's browser is closed and no other
 * relay exists yet. Meanwhile the tab's requests must fail, never go direct (Firefox's `proxy.onRequest` keeps
 * sending them to the companion, which refuses): the website sees nobody but the exit. When volunteer B comes,
 * the path comes back through B by itself, a link made under Firefox's WebRTC policy (set once the first path
 * was up), and the page loads again.
 */

const EXIT_ADDRESS = '127.0.0.3';

test('Firefox: while the path is rebuilt nothing goes out directly, then pages load again', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const { profile: volunteerA } = await launchVolunteer(cleanup, 'ff-kill-volunteer-a', {
      signalingUrl: signaling.url,
    });
    const client = await launchFirefoxClient(cleanup, 'kill-client', { signalingUrl: signaling.url });

    const popup = await client.popup();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    // Pages' WebRTC held strict while the path is up (our link is connected by then).
    expect(await webRtcPolicy(popup)).toBe('proxy_only');
    const relayA = await testIdAttribute(popup, 'path-relay');
    expect(relayA).toBeTruthy();
    const tab = await client.newTab();
    expect(await loadGreeting(tab, `${website.url}/`)).toBe('Hello through the tunnel');

    // ── The relay's browser goes away mid-session ──
    await volunteerA.close();
    await waitForSwitchStatus(popup, 'protect', 'reconnecting', 30_000);
    // Looser while the new link is made, so that it can connect (extension/lib/proxy-control.ts).
    expect(await webRtcPolicy(popup)).toBe('disable_non_proxied_udp');
    for (let i = 0; i < 3; i += 1) {
      await expect(
        tab.goto(`${website.url}/?while-reconnecting=${i}`, { timeout: 15_000 }),
      ).rejects.toThrow();
    }
    await expect
      .poll(async () => Number(await testIdAttribute(popup, 'protect-blocked')), { timeout: 10_000 })
      .toBeGreaterThanOrEqual(3);
    await waitForSwitchStatus(popup, 'protect', 'reconnecting', 1_000);
    await firefoxScreenshot(popup, 'firefox-protect-reconnecting-blocked');

    // ── A new relay appears; the path comes back by itself ──
    const { popup: popupB } = await launchVolunteer(cleanup, 'ff-kill-volunteer-b', {
      signalingUrl: signaling.url,
    });
    await waitForSwitchStatus(popup, 'protect', 'on', 30_000);
    const relayB = await testIdAttribute(popup, 'path-relay');
    expect(relayB).toBeTruthy();
    expect(relayB).not.toBe(relayA);
    expect(await webRtcPolicy(popup)).toBe('proxy_only');
    expect(await loadGreeting(tab, `${website.url}/?after`)).toBe('Hello through the tunnel');
    await expect(popupB.getByTestId('volunteer-clients')).toHaveAttribute('data-value', '1');

    // Through it all, the website saw the exit and nobody else.
    expect(website.remoteAddresses.length).toBeGreaterThan(0);
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);
  } finally {
    await cleanup.run();
  }
});
