import { lookup } from 'node:dns/promises';
import { expect, test } from '@playwright/test';
import {
  clickSwitch,
  firefoxScreenshot,
  loadGreeting,
  testIdAttribute,
  waitForSwitchStatus,
} from '../fixtures/firefox-ui';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import { Cleanup, startTestNetwork } from '../fixtures/network';
import { launchVolunteer } from '../fixtures/roles';
import { FILE_SIZE } from '../fixtures/website';

/**
 * Protect in real Firefox: the add-on's client (its engines in the MV2 background page, the proxy set per request
 * with `proxy.onRequest`, the companion started over native messaging) reaches an exit through a Chromium
 * volunteer's relay. The exit binds its outgoing sockets to 127.0.0.3, so the website can tell tunnelled
 * connections from direct ones (127.0.0.1), and it alone resolves a name: DNS happens at the exit, never in
 * Firefox.
 */

const EXIT_ADDRESS = '127.0.0.3';
const EXIT_ONLY_HOST = 'only-the-exit.test';

test('Firefox: Protect carries a page, a 5 MB file and its DNS through a volunteer relay and an exit', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, {
      address: EXIT_ADDRESS,
      // Only the exit knows this name; this machine's resolver (and so Firefox's) does not.
      lookup: async (host) =>
        host === EXIT_ONLY_HOST
          ? [{ address: '127.0.0.1', family: 4 }]
          : lookup(host, { all: true, verbatim: true }),
    });
    await expect(lookup(EXIT_ONLY_HOST)).rejects.toThrow();
    const { popup: volunteerPopup } = await launchVolunteer(cleanup, 'ff-protect-volunteer', {
      signalingUrl: signaling.url,
    });
    const client = await launchFirefoxClient(cleanup, 'protect-client', { signalingUrl: signaling.url });

    const popup = await client.popup();
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    expect(await testIdAttribute(popup, 'path-relay')).toBeTruthy();
    await firefoxScreenshot(popup, 'firefox-protect-on');

    // A tab loads the page and the file through the tunnel.
    const tab = await client.newTab();
    expect(await loadGreeting(tab, `${website.url}/`)).toBe('Hello through the tunnel');
    const download = await tab.evaluate(async () => {
      const response = await fetch('/file.bin', { cache: 'no-store' });
      const body = await response.arrayBuffer();
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body));
      return {
        status: response.status,
        size: body.byteLength,
        sha256: [...digest].map((byte) => byte.toString(16).padStart(2, '0')).join(''),
      };
    });
    expect(download).toEqual({ status: 200, size: FILE_SIZE, sha256: website.fileSha256 });

    // DNS happens only at the exit: Firefox cannot resolve this name, the exit can.
    expect(await loadGreeting(tab, `http://${EXIT_ONLY_HOST}:${website.port}/`)).toBe(
      'Hello through the tunnel',
    );

    // The website saw the exit, and only the exit.
    expect(website.remoteAddresses.length).toBeGreaterThan(0);
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);

    // The bytes went through the volunteer's relay.
    await expect
      .poll(
        async () =>
          Number(await volunteerPopup.getByTestId('volunteer-bytes').getAttribute('data-to-clients')),
        { timeout: 15_000 },
      )
      .toBeGreaterThanOrEqual(FILE_SIZE);

    // Protect off: the same website sees Firefox's own address again (the witness is not blind).
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'off');
    const seenBefore = website.remoteAddresses.length;
    expect(await loadGreeting(tab, `${website.url}/?direct`)).toBe('Hello through the tunnel');
    expect(website.remoteAddresses.slice(seenBefore)).toContain('127.0.0.1');
    await expect(tab.goto(`http://${EXIT_ONLY_HOST}:${website.port}/`)).rejects.toThrow();
  } finally {
    await cleanup.run();
  }
});
