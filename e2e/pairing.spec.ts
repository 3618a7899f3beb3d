/// <reference types="chrome" />
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { encodePairingCode } from '@underpass/shared/data-port';
import { startCompanion } from '../companion/src/index';
import { EXTENSION_ID } from '../extension/identity';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchProfile } from './fixtures/profile';
import { expectSwitchStatus, pairCompanion, configure, switchControl, switchStateText } from './fixtures/ui';
import { Cleanup, startTestNetwork } from './fixtures/network';
import { launchVolunteer } from './fixtures/roles';

/**
 * Where native messaging cannot work, the companion is started by hand and paired with the extension by
 * its one-time code. The client profile here has NO native host installed: everything Protect needs comes
 * from the code pasted in the options page, and the page still reaches the website through a volunteer
 * relay and an exit, which binds its outgoing sockets to 127.0.0.3 so the website can tell.
 */

const EXIT_ADDRESS = '127.0.0.3';

test('a hand-started companion paired by code carries Protect; bad codes are refused', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });

    // What `underpass-companion serve --extension-id ID` does, in-process: only this extension may connect.
    const companion = await startCompanion({ extensionOrigin: `chrome-extension://${EXTENSION_ID}` });
    let companionRunning = true;
    cleanup.push(async () => {
      if (companionRunning) await companion.close();
    });
    const code = encodePairingCode({
      dataPort: companion.dataPort,
      socksPort: companion.socksPort,
      secret: companion.secret,
    });

    // Not launchClient: this profile has no native-messaging host at all.
    const client = await launchProfile('pairing-client');
    cleanup.push(() => client.close());
    await configure(client, { signalingUrl: signaling.url, routeLoopback: true });

    // ── the options page refuses bad codes, in words, and stores nothing ──
    const options = await client.options();
    await options.setViewportSize({ width: 640, height: 900 });
    await expect(options.locator('main[data-loaded="true"]')).toBeVisible();
    const status = options.getByTestId('pairing-status');
    await expect(status).toHaveAttribute('data-paired', 'false');
    const field = options.getByLabel('Pairing code');
    const error = options.getByRole('alert');

    await field.fill('this is not a pairing code');
    await options.getByRole('button', { name: 'Pair' }).click();
    await expect(error).toBeVisible();
    await expect(error).toContainText('not a pairing code');
    await expect(field).toHaveAttribute('aria-invalid', 'true');
    await options.screenshot({ path: join(ARTIFACTS_DIR, 'pairing-options-bad-code.png'), fullPage: true });

    await field.fill(
      encodePairingCode({ dataPort: 0, socksPort: companion.socksPort, secret: companion.secret }),
    );
    await options.getByRole('button', { name: 'Pair' }).click();
    await expect(error).toContainText('dataPort is not a port number');
    await expect(status).toHaveAttribute('data-paired', 'false');
    const nothingStored = await client.serviceWorker.evaluate(() => chrome.storage.local.get('settings'));
    expect(nothingStored['settings']).not.toHaveProperty('pairing');

    // ── the right code is stored ──
    await pairCompanion(options, code);
    await expect(status).toContainText(`SOCKS port ${companion.socksPort}`);
    await expect(error).toHaveCount(0);
    await expect(options.getByRole('button', { name: 'Forget' })).toBeEnabled();
    await options.screenshot({ path: join(ARTIFACTS_DIR, 'pairing-options-paired.png'), fullPage: true });
    const stored = await client.serviceWorker.evaluate(() => chrome.storage.local.get('settings'));
    expect(stored['settings']).toMatchObject({
      signalingUrl: signaling.url.endsWith('/') ? signaling.url : `${signaling.url}/`,
      routeLoopback: true,
      pairing: { dataPort: companion.dataPort, socksPort: companion.socksPort, secret: companion.secret },
    });

    // ── Protect through the paired companion ──
    await launchVolunteer(cleanup, 'pairing-volunteer', { signalingUrl: signaling.url });

    const clientPopup = await client.popup();
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'on', 90_000);
    await clientPopup.screenshot({ path: join(ARTIFACTS_DIR, 'pairing-client-on.png') });
    expect(companion.stats().tunnel).toBe(true);

    const proxy = await client.serviceWorker.evaluate(() => chrome.proxy.settings.get({}));
    expect((proxy.value as chrome.proxy.ProxyConfig).rules?.singleProxy).toMatchObject({
      scheme: 'socks5',
      host: '127.0.0.1',
      port: companion.socksPort,
    });

    const tab = await client.context.newPage();
    await tab.goto(`${website.url}/`);
    await expect(tab.locator('#greeting')).toHaveText('Hello through the tunnel');
    expect(website.remoteAddresses.length).toBeGreaterThan(0);
    expect([...new Set(website.remoteAddresses)]).toEqual([EXIT_ADDRESS]);
    expect(companion.stats().total).toBeGreaterThan(0);

    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'off');
    const cleared = await client.serviceWorker.evaluate(() => chrome.proxy.settings.get({}));
    expect((cleared.value as chrome.proxy.ProxyConfig).mode).not.toBe('fixed_servers');

    // ── a well-formed code whose secret the running companion does not know is refused by the companion ──
    await pairCompanion(
      options,
      encodePairingCode({
        dataPort: companion.dataPort,
        socksPort: companion.socksPort,
        secret: 'A'.repeat(43),
      }),
    );
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'error', 30_000);
    await expect(switchStateText(clientPopup, 'protect')).toContainText('refused the pairing code');
    expect(companion.stats().tunnel).toBe(false);
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'off');

    // ── a paired companion that is not running: a clear reason, and the proxy is never set ──
    await companion.close();
    companionRunning = false;
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'error', 30_000);
    await expect(switchStateText(clientPopup, 'protect')).toContainText(
      'The companion you paired is not running',
    );
    await expect(switchStateText(clientPopup, 'protect')).toContainText('underpass-companion serve');
    await clientPopup.screenshot({ path: join(ARTIFACTS_DIR, 'pairing-companion-not-running.png') });
    const untouched = await client.serviceWorker.evaluate(() => chrome.proxy.settings.get({}));
    expect((untouched.value as chrome.proxy.ProxyConfig).mode).not.toBe('fixed_servers');
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'off');

    // ── Forget goes back to native messaging, whose error now names the pairing way out ──
    await options.getByRole('button', { name: 'Forget' }).click();
    await expect(status).toHaveAttribute('data-paired', 'false');
    const forgotten = await client.serviceWorker.evaluate(() => chrome.storage.local.get('settings'));
    expect(forgotten['settings']).not.toHaveProperty('pairing');
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'error', 30_000);
    await expect(switchStateText(clientPopup, 'protect')).toContainText('not installed');
    await expect(clientPopup.getByTestId('companion-details')).toContainText('underpass-companion serve', {
      useInnerText: false,
    });
    await switchControl(clientPopup, 'protect').click();
    await expectSwitchStatus(clientPopup, 'protect', 'off');
  } finally {
    await cleanup.run();
  }
});
