import { expect, test } from '@playwright/test';
import { uninstallNativeHost } from 'underpass-companion';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import {
  clickSwitch,
  expectOnlyFrom,
  loadGreeting,
  protectOn,
  waitForSwitchStatus,
  webRtcPolicy,
} from '../fixtures/firefox-ui';
import { Cleanup, startTestNetwork } from '../fixtures/network';

/**
 * Protect survives a Firefox restart: the add-on installed as it stays for a user (not BiDi's temporary
 * install), Protect on, Firefox quit and started again on the same profile, with a page it opens as it starts
 * (a restored session's tab, loaded before the add-on has even run). Nothing may go direct meanwhile: the
 * website sees the exit and nobody else, from first to last. Protect comes back on by itself, with pages'
 * WebRTC held strict again (Firefox kept the add-on's `proxy_only` across the restart, which the new link
 * could not have been made under, so the add-on loosens it first).
 */

const EXIT_ADDRESS = '127.0.0.3';

test('Firefox: Protect comes back after a restart, and nothing goes direct meanwhile', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const client = await launchFirefoxClient(
      cleanup,
      'restart-client',
      { signalingUrl: signaling.url, mode: 'direct' },
      { permanent: true },
    );
    await protectOn(client);
    const tab = await client.newTab();
    expect(await loadGreeting(tab, `${website.url}/?before-restart`)).toBe('Hello through the tunnel');

    await client.restart({ startupUrl: `${website.url}/?at-startup` });
    // Right after the start, before or after Protect is back: never direct.
    await client
      .newTab()
      .then((early) => early.goto(`${website.url}/?right-after-restart`, { timeout: 15_000 }))
      .catch(() => undefined);
    expectOnlyFrom(website, EXIT_ADDRESS);

    const popup = await client.popup();
    await waitForSwitchStatus(popup, 'protect', 'on', 90_000);
    expect(await webRtcPolicy(popup)).toBe('proxy_only');
    const after = await client.newTab();
    expect(await loadGreeting(after, `${website.url}/?after-restart`)).toBe('Hello through the tunnel');
    expectOnlyFrom(website, EXIT_ADDRESS);
  } finally {
    await cleanup.run();
  }
});

test('Firefox: after a restart without the companion, pages stay blocked until Protect is turned off', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const client = await launchFirefoxClient(
      cleanup,
      'restart-no-companion',
      { signalingUrl: signaling.url, mode: 'direct' },
      { permanent: true },
    );
    await protectOn(client);

    // The companion is uninstalled while the browser is closed.
    const removed = await uninstallNativeHost({ browsers: ['firefox'], homeDir: client.home });
    expect(removed.length).toBeGreaterThan(0);
    await client.restart();
    const popup = await client.popup();
    await waitForSwitchStatus(popup, 'protect', 'error', 60_000);
    await popup.waitForSelector('[data-testid="companion-install"] code');
    await popup.waitForSelector('[data-testid="protect-kill-switch"]', { visible: true });
    const tab = await client.newTab();
    await expect(tab.goto(`${website.url}/?while-blocked`, { timeout: 15_000 })).rejects.toThrow();
    // The website saw nobody: the request failed in Firefox itself.
    expect(website.remoteAddresses).toEqual([]);

    // Off: the browser's own way again, as the user chose.
    await clickSwitch(popup, 'protect');
    await waitForSwitchStatus(popup, 'protect', 'off');
    expect(await loadGreeting(tab, `${website.url}/?protect-off`)).toBe('Hello through the tunnel');
    expect(new Set(website.remoteAddresses).has('127.0.0.1')).toBe(true);
  } finally {
    await cleanup.run();
  }
});
