/// <reference types="chrome" />
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { expectSwitchStatus, switchControl } from './fixtures/ui';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { launchClient, launchVolunteer } from './fixtures/roles';
import { FILE_SIZE } from './fixtures/website';

/**
 * The whole path with real parts: a client browser and a volunteer browser (two Chromium profiles with the
 * built extension), a signaling server, an exit node and a website, all on this machine. The exit binds its
 * outgoing sockets to 127.0.0.3, so the website can tell tunnelled connections (127.0.0.3) from direct ones
 * (127.0.0.1): it must see the exit's address only.
 */

const EXIT_ADDRESS = '127.0.0.3';

test('Protect carries a page and a 5 MB file through a volunteer relay and an exit', async () => {
  const cleanup = new Cleanup();
  try {
    // The exit logs with the test's output: when a path fails, its side of the story is the first clue.
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const { popup: volunteerPopup } = await launchVolunteer(cleanup, 'volunteer', {
      signalingUrl: signaling.url,
    });
    const client = await launchClient(cleanup, 'client', { signalingUrl: signaling.url });
    await expect(switchControl(volunteerPopup, 'volunteer')).toHaveAttribute('aria-checked', 'true');

    const clientPopup = await client.popup();
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'on', 90_000);
    await clientPopup.screenshot({ path: join(ARTIFACTS_DIR, 'protect-client-on.png') });

    const proxy = await client.serviceWorker.evaluate(() => chrome.proxy.settings.get({}));
    const config = proxy.value as chrome.proxy.ProxyConfig;
    expect(config.mode).toBe('fixed_servers');
    expect(config.rules?.singleProxy).toMatchObject({ scheme: 'socks5', host: '127.0.0.1' });
    expect(config.rules?.bypassList).toEqual(
      expect.arrayContaining([`127.0.0.1:${signaling.port}`, '<-loopback>']),
    );

    // A tab in the client's profile loads the page and the file through the tunnel.
    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
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

    // The website saw the exit, and only the exit.
    expect(website.remoteAddresses.length).toBeGreaterThan(0);
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);

    // The bytes went through the volunteer's relay.
    await expect
      .poll(
        async () =>
          Number(await volunteerPopup.getByTestId('volunteer-bytes').getAttribute('data-to-clients')),
        {
          timeout: 15_000,
        },
      )
      .toBeGreaterThanOrEqual(FILE_SIZE);
    await expect(volunteerPopup.getByTestId('volunteer-clients')).not.toHaveAttribute('data-value', '0');
    await volunteerPopup.screenshot({ path: join(ARTIFACTS_DIR, 'protect-volunteer-counters.png') });

    // Protect off clears the proxy setting.
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'off');
    await clientPopup.screenshot({ path: join(ARTIFACTS_DIR, 'protect-client-off.png') });
    const cleared = await client.serviceWorker.evaluate(() => chrome.proxy.settings.get({}));
    expect(cleared.levelOfControl).toBe('controllable_by_this_extension');
    expect((cleared.value as chrome.proxy.ProxyConfig).mode).not.toBe('fixed_servers');

    // The witness is not blind: without the tunnel the same website sees the browser's own address.
    const seenBefore = website.remoteAddresses.length;
    await tab.goto(`${website.url}/?direct`);
    expect(website.remoteAddresses.slice(seenBefore)).toContain('127.0.0.1');
  } finally {
    await cleanup.run();
  }
});
