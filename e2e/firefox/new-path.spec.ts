import { expect, test } from '@playwright/test';
import {
  clickSwitch,
  loadGreeting,
  saveFirefoxOptions,
  testIdAttribute,
  waitForSwitchStatus,
  waitForTestIdAttribute,
  webRtcPolicy,
} from '../fixtures/firefox-ui';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import { Cleanup, startTestNetwork } from '../fixtures/network';
import { launchVolunteer } from '../fixtures/roles';

/**
 * New links while protected in Firefox, where the add-on holds pages' WebRTC at `proxy_only` while the path is
 * up, which would keep a new link of ours from connecting too: "New path" and a change of mode must loosen it
 * before the engine makes the new link, then tighten it again (extension/lib/proxy-control.ts).
 */

const EXIT_ADDRESS = '127.0.0.3';

test('Firefox: New path and a change of mode build new links while protected', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    await launchVolunteer(cleanup, 'ff-new-path-volunteer-a', { signalingUrl: signaling.url });
    const client = await launchFirefoxClient(cleanup, 'new-path-client', { signalingUrl: signaling.url });
    const popup = await client.popup();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    const firstRelay = await testIdAttribute(popup, 'path-relay');
    expect(firstRelay).toBeTruthy();
    expect(await webRtcPolicy(popup)).toBe('proxy_only');

    // ── New path, with a second relay to move to (the broker picks the least loaded) ──
    await launchVolunteer(cleanup, 'ff-new-path-volunteer-b', { signalingUrl: signaling.url });
    await popup.locator('[data-testid="protect-new-path"]').click();
    await popup.waitForFunction(
      (relay) => {
        const value = document.querySelector('[data-testid="path-relay"]')?.getAttribute('data-value');
        return value !== undefined && value !== null && value !== '' && value !== relay;
      },
      { timeout: 45_000 },
      firstRelay,
    );
    await waitForSwitchStatus(popup, 'protect', 'on');
    expect(await webRtcPolicy(popup)).toBe('proxy_only');
    const tab = await client.newTab();
    expect(await loadGreeting(tab, `${website.url}/?new-path`)).toBe('Hello through the tunnel');

    // ── Direct mode, saved while protected: a new link straight to the exit ──
    const options = await client.options();
    await saveFirefoxOptions(options, { signalingUrl: signaling.url, routeLoopback: true, mode: 'direct' });
    await waitForTestIdAttribute(popup, 'path-relay', '', 45_000);
    await waitForSwitchStatus(popup, 'protect', 'on');
    expect(await testIdAttribute(popup, 'path-relay')).toBe('');
    expect(await testIdAttribute(popup, 'path-exit')).toBeTruthy();
    expect(await webRtcPolicy(popup)).toBe('proxy_only');
    expect(await loadGreeting(tab, `${website.url}/?direct-mode`)).toBe('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);
  } finally {
    await cleanup.run();
  }
});
