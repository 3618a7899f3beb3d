import { expect, test } from '@playwright/test';
import {
  firefoxScreenshot,
  clickSwitch,
  loadGreeting,
  testIdAttribute,
  waitForSwitchStatus,
  waitForTestIdAttribute,
} from '../fixtures/firefox-ui';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import { Cleanup, startSignaling, startTestExit } from '../fixtures/network';
import { launchVolunteer } from '../fixtures/roles';
import { startWebsite } from '../fixtures/website';

/**
 * Failover in Firefox: two exits (binding 127.0.0.3 and 127.0.0.4, so the website can tell them apart). The
 * exit the client's path uses is stopped; the other takes over within 5 s without the user doing anything,
 * and new requests leave from it.
 */

test('Firefox: when the exit stops, a second exit takes over within 5 s', async () => {
  const cleanup = new Cleanup();
  try {
    const website = await startWebsite();
    cleanup.push(() => website.close());
    const signaling = await startSignaling(cleanup);
    const exits = [
      await startTestExit(cleanup, { signalingUrl: signaling.url, address: '127.0.0.3', name: 'exit-1' }),
      await startTestExit(cleanup, { signalingUrl: signaling.url, address: '127.0.0.4', name: 'exit-2' }),
    ];
    await launchVolunteer(cleanup, 'ff-failover-volunteer', { signalingUrl: signaling.url });
    const client = await launchFirefoxClient(cleanup, 'failover-client', { signalingUrl: signaling.url });

    const popup = await client.popup();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    const firstExitId = await testIdAttribute(popup, 'path-exit');
    const first = exits.find((exit) => exit.peerId === firstExitId);
    const second = exits.find((exit) => exit.peerId !== firstExitId);
    if (!first || !second) throw new Error(`the path names an unknown exit: ${firstExitId}`);

    const tab = await client.newTab();
    expect(await loadGreeting(tab, `${website.url}/`)).toBe('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses)]).toEqual([first.address]);

    // ── The exit in use stops ──
    await first.stop();
    await waitForTestIdAttribute(popup, 'path-exit', second.peerId, 5_000);
    await waitForSwitchStatus(popup, 'protect', 'on', 1_000);
    await firefoxScreenshot(popup, 'firefox-protect-after-failover');

    const seen = website.remoteAddresses.length;
    expect(await loadGreeting(tab, `${website.url}/?after-failover`)).toBe('Hello through the tunnel');
    expect([...new Set(website.remoteAddresses.slice(seen))]).toEqual([second.address]);
  } finally {
    await cleanup.run();
  }
});
