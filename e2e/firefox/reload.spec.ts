import { expect, test } from '@playwright/test';
import type { Page } from 'puppeteer-core';
import { FIREFOX_EXTENSION_DIR, type FirefoxProfile } from '../fixtures/firefox';
import { launchFirefoxClient } from '../fixtures/firefox-roles';
import {
  addonVersion,
  clickSwitch,
  expectOnlyFrom,
  loadGreeting,
  protectOn,
  waitForSwitchStatus,
  waitingUpdate,
  webRtcPolicy,
} from '../fixtures/firefox-ui';
import { Cleanup, startTestNetwork } from '../fixtures/network';
import { startWebsite, type Website } from '../fixtures/website';
import { packFirefoxAddon } from '../fixtures/xpi';

/**
 * The add-on itself restarted while Firefox runs, with Protect on. The add-on is installed as a store install
 * is (a packed .xpi, installed permanently), and its updates go in the way Firefox installs them.
 *
 * Firefox unloads the running add-on before it starts the next one, and in between there is no
 * `proxy.onRequest` listener of ours: a page's requests then go straight to the website (measured in ESR 153:
 * about 25–270 ms, whether the add-on is updated, reloaded, or turned off and on). So an update waits while
 * Protect is on (extension/lib/update-gate.ts): until the next browser restart, which keeps the kill switch
 * (the restart spec), or until the user turns Protect off. A reload or an off-and-on in about:addons cannot be
 * held: the second test shows what then holds and what does not.
 */

const EXIT_ADDRESS = '127.0.0.3';
/** This machine's own address as the website sees it: a request that went direct. */
const DIRECT_ADDRESS = '127.0.0.1';

test('Firefox: an update waits while Protect is on, goes in at the restart with nothing direct, and at once when Protect is off', async () => {
  test.setTimeout(240_000);
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const client = await launchFirefoxClient(
      cleanup,
      'reload-update',
      { signalingUrl: signaling.url, mode: 'direct' },
      { permanentXpi: await packFirefoxAddon(FIREFOX_EXTENSION_DIR, '1.0.0') },
    );
    const popup = await protectOn(client);
    expect(await addonVersion(popup)).toBe('1.0.0');
    await keepAsking(await client.newTab(), `${website.url}/?asking`);

    // ── An update arrives while Protect is on: Firefox holds it for the add-on, which keeps it waiting ──
    // Firefox never completes this install in this session: the browser closes with it still waiting.
    void client
      .installPermanent(await packFirefoxAddon(FIREFOX_EXTENSION_DIR, '1.0.1'))
      .catch(() => undefined);
    await expect.poll(() => waitingUpdate(popup), { timeout: 30_000 }).toBe('1.0.1');
    expect(await addonVersion(popup)).toBe('1.0.0');
    await waitForSwitchStatus(popup, 'protect', 'on', 1_000);
    expect(await loadGreeting(await client.newTab(), `${website.url}/?update-waiting`)).toBe(
      'Hello through the tunnel',
    );
    expectOnlyFrom(website, EXIT_ADDRESS);

    // ── Firefox restarts: the update goes in before the add-on starts, and Protect comes back on it ──
    await client.restart({ startupUrl: `${website.url}/?at-startup` });
    const afterRestart = await client.popup();
    await waitForSwitchStatus(afterRestart, 'protect', 'on', 90_000);
    expect(await addonVersion(afterRestart)).toBe('1.0.1');
    expect(await webRtcPolicy(afterRestart)).toBe('proxy_only');
    expect(await loadGreeting(await client.newTab(), `${website.url}/?after-restart`)).toBe(
      'Hello through the tunnel',
    );
    expectOnlyFrom(website, EXIT_ADDRESS);

    // ── Another update waits; the user turns Protect off, and it goes in at once ──
    const second = client.installPermanent(await packFirefoxAddon(FIREFOX_EXTENSION_DIR, '1.0.2'));
    await expect.poll(() => waitingUpdate(afterRestart), { timeout: 30_000 }).toBe('1.0.2');
    expect(await addonVersion(afterRestart)).toBe('1.0.1');
    expectOnlyFrom(website, EXIT_ADDRESS);
    await clickSwitch(afterRestart, 'protect');
    // Firefox completes the install once the new version is in place.
    await within(second, 30_000, 'the update waiting for Protect to go off');
    const updated = await reopenedPopup(client);
    expect(await addonVersion(updated)).toBe('1.0.2');
    await waitForSwitchStatus(updated, 'protect', 'off');

    // ── With Protect off an update goes in at once, as Firefox does by itself ──
    await within(
      client.installPermanent(await packFirefoxAddon(FIREFOX_EXTENSION_DIR, '1.0.3')),
      30_000,
      'an update while Protect is off',
    );
    const latest = await reopenedPopup(client);
    expect(await addonVersion(latest)).toBe('1.0.3');
    await waitForSwitchStatus(latest, 'protect', 'off');
  } finally {
    await cleanup.run();
  }
});

test('Firefox: reloaded while Protect is on, the add-on turns Protect back on by itself; the moment it is unloaded goes direct', async () => {
  const cleanup = new Cleanup();
  try {
    const { website, signaling } = await startTestNetwork(cleanup, { address: EXIT_ADDRESS });
    const client = await launchFirefoxClient(
      cleanup,
      'reload-runtime',
      { signalingUrl: signaling.url, mode: 'direct' },
      { permanentXpi: await packFirefoxAddon(FIREFOX_EXTENSION_DIR, '1.0.0') },
    );
    const popup = await protectOn(client);
    await keepAsking(await client.newTab(), `${website.url}/?asking`);
    expectOnlyFrom(website, EXIT_ADDRESS);

    // `runtime.reload()` of an installed add-on is Firefox turning it off and on again, as about:addons does.
    await popup.evaluate(() => {
      const api = (globalThis as unknown as { browser: { runtime: { reload(): void } } }).browser;
      api.runtime.reload();
    });
    const reloaded = await reopenedPopup(client);
    await waitForSwitchStatus(reloaded, 'protect', 'on', 90_000);
    expect(await webRtcPolicy(reloaded)).toBe('proxy_only');
    const directWhenBack = directConnections(website);

    // A site first visited now needs a connection of its own (Firefox may still hold pooled ones to the
    // first site): it comes from the exit, and nothing reaches the first site directly any more.
    const laterSite = await startWebsite();
    cleanup.push(() => laterSite.close());
    expect(await loadGreeting(await client.newTab(), `${laterSite.url}/?after-reload`)).toBe(
      'Hello through the tunnel',
    );
    expectOnlyFrom(laterSite, EXIT_ADDRESS);
    expect(await loadGreeting(await client.newTab(), `${website.url}/?after-reload`)).toBe(
      'Hello through the tunnel',
    );
    expect(directConnections(website)).toBe(directWhenBack);

    // While the add-on was unloaded, Firefox had no listener of ours: the website may have seen this machine,
    // never anyone else. How often it did is recorded, not required (it depends on the page asking at that
    // moment); extension/README.md, Firefox, has the measurements.
    expect([...new Set(website.remoteAddresses)].filter((address) => address !== DIRECT_ADDRESS)).toEqual([
      EXIT_ADDRESS,
    ]);
    test.info().annotations.push({
      type: 'direct while unloaded',
      description: `${directWhenBack} connection(s) reached the website from ${DIRECT_ADDRESS}`,
    });
  } finally {
    await cleanup.run();
  }
});

/**
 * Opens the popup of the add-on that started again. Its pages cannot load while it is unloaded (the attempt
 * throws), so this tries until one loads, as a user reopening the popup would.
 */
async function reopenedPopup(client: FirefoxProfile): Promise<Page> {
  let page: Page | undefined;
  await expect
    .poll(
      async () => {
        page = await client.popup().catch(() => undefined);
        if (!page || (await addonVersion(page).catch(() => undefined)) !== undefined)
          return page !== undefined;
        await page.close();
        page = undefined;
        return false;
      },
      { timeout: 30_000 },
    )
    .toBe(true);
  if (!page) throw new Error('the popup did not open again');
  return page;
}

/** `promise`, or an error naming `what` if it has not settled within `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Has the page in `tab` ask the website for something every 10 ms (failures ignored), so that a moment when
 * requests go out another way is seen by the website. The tab stays in front: Firefox slows timers of
 * background tabs to one a second.
 */
async function keepAsking(tab: Page, url: string): Promise<void> {
  await tab.goto(url);
  await tab.evaluate(() => {
    let n = 0;
    setInterval(() => {
      n += 1;
      fetch(`/?asking=${n}`, { cache: 'no-store' }).catch(() => undefined);
    }, 10);
  });
}

function directConnections(website: Website): number {
  return website.remoteAddresses.filter((address) => address === DIRECT_ADDRESS).length;
}
