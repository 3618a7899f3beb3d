/// <reference types="chrome" />
import { join } from 'node:path';
import { expect, test } from '@playwright/test';
import { EXTENSION_ID, EXTENSION_KEY } from '../extension/identity';
import { extensionIdFromKey } from './fixtures/extension-id';
import { ARTIFACTS_DIR } from './fixtures/paths';
import { launchProfile, type Profile } from './fixtures/profile';
import { expectSwitchStatus, saveOptions, switchControl, switchStateText } from './fixtures/ui';

/**
 * What can be checked without the network's other parts: the extension loads with its fixed id, the popup
 * shows both switches, the options page stores its settings, and Protect without a companion says why.
 */

let profile: Profile;

test.beforeAll(async () => {
  profile = await launchProfile('smoke');
});

test.afterAll(async () => {
  await profile?.close();
});

test('the extension id is the one derived from the manifest key', () => {
  expect(extensionIdFromKey(EXTENSION_KEY)).toBe(EXTENSION_ID);
  expect(profile.extensionId).toBe(EXTENSION_ID);
});

test('the popup shows Protect and Volunteer, both off', async () => {
  const popup = await profile.popup();
  for (const name of ['protect', 'volunteer'] as const) {
    await expect(switchControl(popup, name)).toHaveAttribute('aria-checked', 'false');
    await expect(switchStateText(popup, name)).toHaveText('Off');
  }
  await expect(popup.getByTestId('volunteer-bytes')).toHaveAttribute('data-value', '0');
  await popup.screenshot({ path: join(ARTIFACTS_DIR, 'smoke-popup.png') });
  await popup.close();
});

test('the options page saves the signaling URL and the testing option', async () => {
  const options = await profile.options();
  await expect(options.getByTestId('signaling-url')).toHaveValue('ws://127.0.0.1:8600/');
  await expect(options.getByTestId('route-loopback')).not.toBeChecked();

  await options.getByTestId('signaling-url').fill('http://not-a-websocket.example');
  await options.getByTestId('save-options').click();
  await expect(options.getByTestId('options-notice')).toContainText('ws://');

  await saveOptions(options, { signalingUrl: 'wss://signal.example.org:8443/path', routeLoopback: true });
  await options.reload();
  await expect(options.getByTestId('signaling-url')).toHaveValue('wss://signal.example.org:8443/path');
  await expect(options.getByTestId('route-loopback')).toBeChecked();

  const stored = await profile.serviceWorker.evaluate(() => chrome.storage.local.get('settings'));
  expect(stored['settings']).toMatchObject({
    signalingUrl: 'wss://signal.example.org:8443/path',
    routeLoopback: true,
  });

  await saveOptions(options, { signalingUrl: 'ws://127.0.0.1:8600', routeLoopback: false });
  await options.close();
});

test('Protect without the companion installed fails with a reason that says how to install it', async () => {
  const popup = await profile.popup();
  await switchControl(popup, 'protect').click();
  await expectSwitchStatus(popup, 'protect', 'error', 30_000);
  const text = switchStateText(popup, 'protect');
  await expect(text).toContainText('not installed');
  // One line says how, with the exact command; the rest waits behind "More details".
  const install = popup.getByTestId('companion-install');
  await expect(install.locator('code')).toHaveText(
    `npx underpass-companion install --browser chromium --extension-id ${EXTENSION_ID}`,
  );
  await install.getByText('More details').click();
  await expect(popup.getByTestId('companion-details')).toContainText('underpass-companion serve');
  await popup.screenshot({ path: join(ARTIFACTS_DIR, 'smoke-protect-no-companion.png') });

  // The proxy was never touched.
  const proxy = await profile.serviceWorker.evaluate(() => chrome.proxy.settings.get({}));
  expect((proxy.value as chrome.proxy.ProxyConfig).mode).not.toBe('fixed_servers');

  // Turning the switch off clears the error.
  await switchControl(popup, 'protect').click();
  await expectSwitchStatus(popup, 'protect', 'off');
  await popup.close();
});
